"""CodeCommit tables: pull requests, their revisions, approvals and rules, and rule templates.

A pull request belongs to one repository (rows go when the repository goes). Its
approvals and override are kept per revision: a revision ends when the source branch
moves, which is how AWS resets approvals on new commits.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class PullRequestCounter(Base):
    """The last pull request id handed out in an account and region (ids are 1, 2, 3...)."""

    __tablename__ = "pull_request_counters"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)


class PullRequest(Base):
    __tablename__ = "pull_requests"
    __table_args__ = (
        UniqueConstraint("account_id", "region", "pull_request_id"),
        Index("ix_pull_requests_repository_status", "repository_id", "status"),
    )

    key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    pull_request_id: Mapped[str] = mapped_column(String(20))
    repository_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("repositories.id", ondelete="CASCADE")
    )
    title: Mapped[str] = mapped_column(String(150))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # OPEN | CLOSED
    author_arn: Mapped[str] = mapped_column(String(2048))
    client_request_token: Mapped[str | None] = mapped_column(String(256), nullable=True)
    source_reference: Mapped[str] = mapped_column(String(512))  # refs/heads/feature
    destination_reference: Mapped[str] = mapped_column(String(512))
    source_commit: Mapped[str] = mapped_column(String(40))
    destination_commit: Mapped[str] = mapped_column(String(40))
    merge_base: Mapped[str | None] = mapped_column(String(40), nullable=True)
    revision_id: Mapped[str] = mapped_column(String(64))
    is_merged: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_by: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    merge_commit_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    merge_option: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_activity_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PullRequestRevision(Base):
    """One state of the source branch; approvals and the override apply to one revision."""

    __tablename__ = "pull_request_revisions"

    pull_request_key: Mapped[int] = mapped_column(
        Integer, ForeignKey("pull_requests.key", ondelete="CASCADE"), primary_key=True
    )
    revision_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_commit: Mapped[str] = mapped_column(String(40))
    destination_commit: Mapped[str] = mapped_column(String(40))
    overridden_by: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PullRequestApproval(Base):
    """An APPROVE by one principal on one revision (a REVOKE deletes the row)."""

    __tablename__ = "pull_request_approvals"

    pull_request_key: Mapped[int] = mapped_column(
        Integer, ForeignKey("pull_requests.key", ondelete="CASCADE"), primary_key=True
    )
    revision_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_arn: Mapped[str] = mapped_column(String(1024), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PullRequestApprovalRule(Base):
    __tablename__ = "pull_request_approval_rules"
    __table_args__ = (UniqueConstraint("pull_request_key", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    pull_request_key: Mapped[int] = mapped_column(
        Integer, ForeignKey("pull_requests.key", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    last_modified_user: Mapped[str] = mapped_column(String(2048))
    # Set when a template made the rule; a snapshot, so renaming or deleting the
    # template leaves the rule as it was created.
    template_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    template_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PullRequestEvent(Base):
    """The history DescribePullRequestEvents answers from, oldest first."""

    __tablename__ = "pull_request_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pull_request_key: Mapped[int] = mapped_column(
        Integer, ForeignKey("pull_requests.key", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(64))
    actor_arn: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    event_date: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The event's metadata member, keyed by its model name (pullRequestCreatedEventMetadata...).
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class ApprovalRuleTemplate(Base):
    __tablename__ = "approval_rule_templates"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    last_modified_user: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApprovalRuleTemplateAssociation(Base):
    __tablename__ = "approval_rule_template_associations"

    template_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("approval_rule_templates.id", ondelete="CASCADE"), primary_key=True
    )
    repository_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
