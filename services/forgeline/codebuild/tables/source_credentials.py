"""CodeBuild source credentials and resource policies.

Source credentials: one per (account, region, server type), as in AWS. The token is
kept encrypted with the server key (forgeline.core.auth.crypto) and is never returned
by the API.

Resource policies: one JSON policy document per project or report group ARN.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class SourceCredential(Base):
    __tablename__ = "build_source_credentials"
    __table_args__ = (UniqueConstraint("account_id", "region", "server_type"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    region: Mapped[str] = mapped_column(String(32))
    arn: Mapped[str] = mapped_column(String(2048))
    server_type: Mapped[str] = mapped_column(String(32))
    auth_type: Mapped[str] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(256), nullable=True)
    token_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ResourcePolicy(Base):
    __tablename__ = "build_resource_policies"

    resource_arn: Mapped[str] = mapped_column(String(2048), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12), index=True)
    region: Mapped[str] = mapped_column(String(32))
    policy: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
