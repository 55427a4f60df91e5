"""Tables of SSM Parameter Store: parameters and their versions.

Every value is stored encrypted with the server key (forgeline.core.auth.crypto), whatever
its type: a plain String parameter costs one cheap decryption to read, and no code path
can leave a SecureString in the clear by mistake.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class SsmParameter(Base):
    """A parameter's identity and the number of its current version."""

    __tablename__ = "ssm_parameters"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(2048))
    version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SsmParameterVersion(Base):
    """One version of a parameter, complete: PutParameter replaces every attribute."""

    __tablename__ = "ssm_parameter_versions"

    parameter_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ssm_parameters.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    value_encrypted: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    allowed_pattern: Mapped[str | None] = mapped_column(Text, nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    tier: Mapped[str] = mapped_column(String(32))
    data_type: Mapped[str] = mapped_column(String(128))
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    modified_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    modified_by: Mapped[str] = mapped_column(String(2048))
