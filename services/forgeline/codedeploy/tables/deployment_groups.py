"""CodeDeploy deployment groups: one row per group, its settings kept as the API names them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class DeploymentGroup(Base):
    """A deployment group of an application.

    `document` holds every member of the group other than its name, config and role, as
    the model names them (ec2TagFilters, onPremisesTagSet, deploymentStyle,
    alarmConfiguration, …), validated and completed by group_rules.normalize_group, so a
    new member in the model needs no migration. The last deployments are written by the
    deployment driver.
    """

    __tablename__ = "deploy_groups"
    __table_args__ = (
        UniqueConstraint("application_id", "name"),
        # DeleteDeploymentConfig asks whether any group of the account uses a config.
        Index("ix_deploy_groups_scope_config", "account_id", "region", "deployment_config_name"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # deploymentGroupId
    application_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("deploy_applications.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    deployment_config_name: Mapped[str] = mapped_column(String(100))
    service_role_arn: Mapped[str] = mapped_column(Text)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    target_revision: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    last_successful_deployment: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    last_attempted_deployment: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
