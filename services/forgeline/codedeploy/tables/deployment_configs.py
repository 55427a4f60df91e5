"""Custom deployment configurations (the predefined CodeDeployDefault.* ones are data in
codedeploy/configs.py, not rows)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class DeploymentConfig(Base):
    __tablename__ = "deploy_configs"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # deploymentConfigId
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    compute_platform: Mapped[str] = mapped_column(String(16))
    # The model's MinimumHealthyHosts, TrafficRoutingConfig and ZonalConfig shapes.
    minimum_healthy_hosts: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    traffic_routing_config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    zonal_config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
