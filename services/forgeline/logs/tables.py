"""Tables of build logs, in CloudWatch Logs' shape: groups hold streams, streams hold events.

Groups and streams carry the account and region; an event belongs to one stream by its
integer key, which keeps the event table (by far the largest) narrow. Events are keyed by
(stream, timestamp, sequence): the order CloudWatch returns them in, so every read is a
range scan of the primary key. The sequence number is handed out per stream by
`LogStream.next_sequence` and breaks ties between events of the same millisecond.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow

# SQLite only auto-assigns ids to a column declared exactly INTEGER PRIMARY KEY.
SequenceId = BigInteger().with_variant(Integer(), "sqlite")


class LogGroup(Base):
    __tablename__ = "log_groups"
    __table_args__ = (
        UniqueConstraint("account_id", "region", "name"),
        # Ids are never reused, so a writer holding a deleted group's id cannot write
        # into a newer group that happened to get the same number.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(SequenceId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(512))
    log_group_class: Mapped[str] = mapped_column(String(32), default="STANDARD")
    kms_key_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    deletion_protection: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The newest timestamp a live writer gave events of this group. Writers take it
    # under the row's lock, so their events commit in timestamp order (see
    # logstore.take_group_timestamp).
    last_stamp_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class LogStream(Base):
    __tablename__ = "log_streams"
    __table_args__ = (
        UniqueConstraint("group_id", "name"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(SequenceId, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(
        SequenceId, ForeignKey("log_groups.id", ondelete="CASCADE")
    )
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The sequence number the next event gets; also the upload sequence token.
    next_sequence: Mapped[int] = mapped_column(BigInteger, default=1)
    first_event_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_event_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_ingestion_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class LogEvent(Base):
    __tablename__ = "log_events"
    # Clustered by the primary key on SQLite too: a stream's events sit together on disk.
    __table_args__ = ({"sqlite_with_rowid": False},)

    stream_id: Mapped[int] = mapped_column(
        SequenceId, ForeignKey("log_streams.id", ondelete="CASCADE"), primary_key=True
    )
    timestamp_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ingestion_ms: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text)
