"""The generic `jobs` table: one row per unit of background work."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow
from forgeline.core.work.leases import FAILED, QUEUED, RUNNING, SUCCEEDED, LeaseColumns


class JobStatus:
    QUEUED = QUEUED
    RUNNING = RUNNING
    SUCCEEDED = SUCCEEDED
    FAILED = FAILED
    FINAL = (SUCCEEDED, FAILED)


def new_job_id() -> str:
    return str(uuid.uuid4())


class Job(LeaseColumns, Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_job_id)
    kind: Mapped[str] = mapped_column(String(200), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[Any | None] = mapped_column(JSON, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
