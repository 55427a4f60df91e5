"""On-premises instances: the hosts an agent deploys to, registered by IAM identity."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class OnPremisesInstance(Base):
    """A registered (or deregistered) on-premises instance.

    A deregistered instance keeps its row with `deregistered_at` set, as AWS keeps showing
    it; registering the same name again reuses the row. Exactly one of `iam_user_arn` and
    `iam_session_arn` is set: the identity whose access keys the instance's agent signs with.
    """

    __tablename__ = "deploy_onprem_instances"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    iam_user_arn: Mapped[str | None] = mapped_column(String(1011), nullable=True, index=True)
    iam_session_arn: Mapped[str | None] = mapped_column(String(1011), nullable=True, index=True)
    instance_arn: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    deregistered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    tags: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)  # [{Key, Value}]

    @property
    def host_identifier(self) -> str:
        """The HostIdentifier the instance's agent polls with."""
        return self.iam_session_arn or self.iam_user_arn or ""

    @property
    def registered(self) -> bool:
        return self.deregistered_at is None
