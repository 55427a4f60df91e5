"""The `builds` table: one row per CodeBuild build.

A build row is also the unit of work a worker claims (DESIGN.md principle 2): the lease
columns (`status`, `lease_owner`, ...) say who runs it, while `build_status` and `phases`
are what CodeBuild's API shows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow
from forgeline.core.work.leases import LeaseColumns


class Build(LeaseColumns, Base):
    __tablename__ = "builds"
    __table_args__ = (
        Index("ix_builds_scope_project", "account_id", "region", "project_name", "build_number"),
        Index("ix_builds_queue", "status", "queued_at"),
    )

    id: Mapped[str] = mapped_column(String(300), primary_key=True)  # "<project>:<uuid>"
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    project_name: Mapped[str] = mapped_column(String(255))
    arn: Mapped[str] = mapped_column(Text)
    build_number: Mapped[int] = mapped_column(Integer)
    # CodeBuild's view: IN_PROGRESS, SUCCEEDED, FAILED, FAULT, TIMED_OUT, STOPPED.
    build_status: Mapped[str] = mapped_column(String(16), default="IN_PROGRESS")
    current_phase: Mapped[str] = mapped_column(String(32), default="QUEUED")
    build_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    # Phase records as phases.PhaseRecord dictionaries (see builds.phases_to_json).
    phases: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The request as resolved at StartBuild: source, environment, artifacts, cache, ...
    document: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the run produced: artifacts, exported variables, report ARNs, resolved versions.
    results: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Project concurrentBuildLimit when the build was started (None: unlimited).
    concurrency_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    stop_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    initiator: Mapped[str | None] = mapped_column(Text, default=None)
    batch_id: Mapped[str | None] = mapped_column(String(300), default=None, index=True)
    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    start_time: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    end_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
