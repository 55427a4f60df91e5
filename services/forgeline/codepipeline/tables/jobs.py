"""Custom action types, and the jobs their workers poll for.

A custom action (owner Custom) runs as a job: the action's attempt queues one, a job
worker takes it with PollForJobs (which hands it a nonce), acknowledges it, and answers
with PutJobSuccessResult or PutJobFailureResult. A continuation token re-queues the same
action as a new job carrying the token.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class CustomActionType(Base):
    __tablename__ = "pipeline_custom_action_types"
    __table_args__ = (UniqueConstraint("account_id", "region", "category", "provider", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(35))
    version: Mapped[str] = mapped_column(String(9))
    # settings, configurationProperties, inputArtifactDetails, outputArtifactDetails.
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A deleted type stays, so pipelines that use it keep their meaning; it is no longer
    # listed, polled for, or usable in a new declaration.
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PipelineJob(Base):
    __tablename__ = "pipeline_jobs"
    __table_args__ = (
        Index("ix_pipeline_jobs_type_status", "account_id", "region", "type_key", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    type_key: Mapped[str] = mapped_column(String(100))  # category/owner/provider/version
    action_execution_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(16))  # JobStatus
    nonce: Mapped[str | None] = mapped_column(String(50), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # JobData as the workers see it
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
