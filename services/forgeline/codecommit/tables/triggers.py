"""CodeCommit tables: a repository's trigger configuration and its webhook signing secret."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class RepositoryTriggerConfig(Base):
    """The trigger list PutRepositoryTriggers stored last, replaced as a whole.

    The webhook secret outlives trigger changes (receivers keep verifying) and is stored
    encrypted with the server key; the AWS API never returns it.
    """

    __tablename__ = "repository_trigger_configs"

    repository_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    configuration_id: Mapped[str] = mapped_column(String(36))
    triggers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    webhook_secret_encrypted: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
