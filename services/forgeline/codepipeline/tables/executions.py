"""Pipeline executions and their action executions.

An execution's row holds the engine's state (`state`, its JSON document) and the earliest
moment it must be woken (`wake_at`); the driver rebuilds the state, advances the engine and
stores it back with the row locked. Action executions are rows of their own so
ListActionExecutions can page through them, and so an action waiting on another service (a
build, a deployment, an approval) can be found by what it waits on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class PipelineExecution(Base):
    __tablename__ = "pipeline_executions"
    __table_args__ = (
        Index("ix_pipeline_executions_pipeline_started", "pipeline_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # pipelineExecutionId
    pipeline_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("pipeline_pipelines.id", ondelete="CASCADE")
    )
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    pipeline_name: Mapped[str] = mapped_column(String(100))
    pipeline_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # PipelineExecutionStatus
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    client_request_token: Mapped[str | None] = mapped_column(String(128), nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    wake_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class ActionExecution(Base):
    __tablename__ = "pipeline_action_executions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # actionExecutionId
    execution_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("pipeline_executions.id", ondelete="CASCADE"), index=True
    )
    pipeline_id: Mapped[str] = mapped_column(String(36), index=True)
    stage: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # ActionExecutionStatus
    # What the action runs on another service: a build id, a deployment id (its outcome
    # comes back through that service's hook), or an approval's token.
    external_id: Mapped[str | None] = mapped_column(String(300), nullable=True, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)  # input, output, summary, links
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
