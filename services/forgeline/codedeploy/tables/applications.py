"""CodeDeploy applications and the revisions registered (or deployed) for them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class Application(Base):
    __tablename__ = "deploy_applications"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # applicationId
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    compute_platform: Mapped[str] = mapped_column(String(16))  # Server | Lambda | ECS
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    github_account_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    linked_to_github: Mapped[bool] = mapped_column(Boolean, default=False)


class ApplicationRevision(Base):
    """One revision location of an application.

    `revision_key` is the revision's identity (revision_rules.revision_key): the same
    location registered twice is one row. `revision` keeps the RevisionLocation as
    registered; `deployment_groups` the names of the groups it was deployed to.
    """

    __tablename__ = "deploy_revisions"
    __table_args__ = (UniqueConstraint("application_id", "revision_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    application_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("deploy_applications.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    revision_key: Mapped[str] = mapped_column(String(64))
    revision: Mapped[dict[str, Any]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deployment_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
