"""Tables of Secrets Manager: secrets and their versions, values encrypted with the
server key (forgeline.core.auth.crypto)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class Secret(Base):
    """A Secrets Manager secret; its values live in SecretVersion rows."""

    __tablename__ = "secrets"
    __table_args__ = (
        UniqueConstraint("account_id", "region", "name"),
        Index("ix_secrets_arn", "arn"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(512))
    arn: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    kms_key_id: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    accessed_on: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set while the secret is scheduled for deletion (DeleteSecret with a recovery window).
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deletion_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SecretVersion(Base):
    """One value of a secret and the staging labels (AWSCURRENT, ...) attached to it."""

    __tablename__ = "secret_versions"

    secret_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True
    )
    version_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "string" or "binary": binary values are base64 text before encryption.
    value_kind: Mapped[str] = mapped_column(String(8))
    value_encrypted: Mapped[str] = mapped_column(Text)
    stages: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    accessed_on: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
