"""CodeCommit tables: git credentials.

HTTPS git credentials work like AWS's service-specific credentials: a generated user
name (`<user>-at-<account>`) and password for one IAM-style user. Only a salted scrypt
hash of the password is kept; the password is shown once, when it is created.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow

CREDENTIAL_ACTIVE = "Active"
CREDENTIAL_INACTIVE = "Inactive"


class GitCredential(Base):
    __tablename__ = "git_credentials"
    __table_args__ = (
        CheckConstraint(
            f"status IN ('{CREDENTIAL_ACTIVE}', '{CREDENTIAL_INACTIVE}')", name="status"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        String(12), ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    user_name: Mapped[str] = mapped_column(String(64))
    service_user_name: Mapped[str] = mapped_column(String(200), unique=True)
    # "scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>": the parameters travel with the hash.
    password_hash: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(8), default=CREDENTIAL_ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
