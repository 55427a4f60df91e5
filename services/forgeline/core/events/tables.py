"""Tables of the event stream: the append-only `events` log and each consumer's cursor."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow

# SQLite only auto-assigns ids to a column declared exactly INTEGER PRIMARY KEY.
SequenceId = BigInteger().with_variant(Integer(), "sqlite")
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class Event(Base):
    """One published state change; `id` is the cursor consumers read after."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_account_region_id", "account_id", "region", "id"),
        # AUTOINCREMENT stops SQLite from reusing the ids of deleted rows, which would
        # put old cursor positions ahead of new events once the log is pruned.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(SequenceId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(128))
    detail_type: Mapped[str] = mapped_column(String(128))
    resources: Mapped[list[str]] = mapped_column(JsonDocument)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    time: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class EventCursor(Base):
    """The last event id a named consumer has acknowledged."""

    __tablename__ = "event_cursors"

    consumer_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
