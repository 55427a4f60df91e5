"""Pipelines and every version of their declaration.

The latest declaration lives on the pipeline row (what runs); each version stays in
`pipeline_versions` so GetPipeline can answer for an earlier one, and so an execution
keeps running the version it started with after an UpdatePipeline.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class Pipeline(Base):
    __tablename__ = "pipeline_pipelines"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    # The PipelineDeclaration as stored (defaults filled in, `version` included).
    declaration: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Stage name -> {reason, lastChangedBy, lastChangedAt}: inbound transitions disabled.
    disabled_transitions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Which execution holds each stage and which wait for it (the execution mode's lanes).
    lanes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PipelineVersion(Base):
    __tablename__ = "pipeline_versions"

    pipeline_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("pipeline_pipelines.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    declaration: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
