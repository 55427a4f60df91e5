"""Accounts and their access keys."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow

KEY_ACTIVE = "Active"
KEY_INACTIVE = "Inactive"


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("length(id) = 12", name="id_length"),)

    id: Mapped[str] = mapped_column(String(12), primary_key=True)  # 12 digits, like AWS
    name: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccessKey(Base):
    __tablename__ = "access_keys"
    __table_args__ = (
        CheckConstraint(f"status IN ('{KEY_ACTIVE}', '{KEY_INACTIVE}')", name="status"),
    )

    access_key_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    # Fernet token of the secret access key; the plaintext is never stored.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    principal_arn: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(8), default=KEY_ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
