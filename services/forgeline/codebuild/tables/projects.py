"""CodeBuild projects: one row per project, its definition kept as the API shapes it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class BuildProject(Base):
    """A build project.

    `document` holds the project as BatchGetProjects returns it (botocore's `Project`
    shape) minus `created`/`lastModified`, which are the timestamp columns. Keeping the
    API shape whole means a new field in the model needs no migration.
    """

    __tablename__ = "build_projects"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    arn: Mapped[str] = mapped_column(String(2048))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Number of the last build started; StartBuild increments it atomically.
    build_counter: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
