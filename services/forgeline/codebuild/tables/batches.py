"""Tables for batch builds and for webhooks of build projects."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class BuildBatch(Base):
    """One batch build: its request, its build groups and its phases.

    `groups` holds one dict per build task: identifier, dependsOn, ignoreFailure, the
    StartBuild overrides of the task (`overrides`), its state (`status`: PENDING,
    SKIPPED, IN_PROGRESS or the build's final status), the current build id and the
    ids of earlier attempts (`priorBuildIds`, after RetryBuildBatch).
    """

    __tablename__ = "build_batches"
    __table_args__ = (
        Index("ix_build_batches_scope_start", "account_id", "region", "start_time"),
        Index("ix_build_batches_scope_project", "account_id", "region", "project_name"),
    )

    id: Mapped[str] = mapped_column(String(300), primary_key=True)  # "<project>:<uuid>"
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    project_name: Mapped[str] = mapped_column(String(255))
    arn: Mapped[str] = mapped_column(Text)
    batch_number: Mapped[int] = mapped_column(Integer)
    # botocore StatusType: IN_PROGRESS, SUCCEEDED, FAILED, STOPPED, ...
    status: Mapped[str] = mapped_column(String(16), default="IN_PROGRESS")
    current_phase: Mapped[str] = mapped_column(String(32), default="SUBMITTED")
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    fast_fail: Mapped[bool] = mapped_column(Boolean, default=False)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Phase records: phaseType, phaseStatus, startTime/endTime (ISO), contexts.
    phases: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The StartBuildBatch request as given, plus who made it (principalArn).
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the batch shows: source, environment, artifacts, ... (BuildBatch members).
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    groups: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    initiator: Mapped[str | None] = mapped_column(Text, default=None)
    resolved_source_version: Mapped[str | None] = mapped_column(String(255), default=None)
    start_time: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    end_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class BuildWebhook(Base):
    """The webhook of a build project (at most one), started by repository events."""

    __tablename__ = "build_webhooks"
    __table_args__ = (Index("ix_build_webhooks_scope", "account_id", "region"),)

    project_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    # What CreateWebhook/UpdateWebhook set: branchFilter, filterGroups, buildType, ...
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    payload_url: Mapped[str] = mapped_column(Text)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    secret_modified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
