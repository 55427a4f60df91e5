"""CodeCommit tables: comments on compared commits and pull requests, and their reactions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class Comment(Base):
    """One comment. A reply copies its thread's context (commits, location, pull request)
    from the comment it answers, so listing groups replies with their thread for free."""

    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_repository_after", "repository_id", "after_commit_id"),
        Index("ix_comments_pull_request", "account_id", "region", "pull_request_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    repository_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("repositories.id", ondelete="CASCADE")
    )
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    pull_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    before_commit_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    after_commit_id: Mapped[str] = mapped_column(String(40))
    before_blob_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    after_blob_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    file_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    file_position: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    relative_file_version: Mapped[str | None] = mapped_column(String(6), nullable=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(36), nullable=True)
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    author_arn: Mapped[str] = mapped_column(String(2048))
    client_request_token: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommentReaction(Base):
    """A user's one reaction to a comment (CodeCommit allows one per user per comment)."""

    __tablename__ = "comment_reactions"

    comment_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("comments.id", ondelete="CASCADE"), primary_key=True
    )
    user_arn: Mapped[str] = mapped_column(String(2048), primary_key=True)
    reaction: Mapped[str] = mapped_column(String(32))  # short code without colons
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
