"""Storage and queries of log groups, streams and events (tables in tables.py).

Everything here takes an open session, so callers choose the transaction. Reads are range
scans of the events' primary key (stream, timestamp, sequence); a position in a stream is
a `Cursor`: the gap just after the event with that key. Reading forward from a cursor
returns the events after it, reading backward the events up to and including it, so one
cursor serves as both CloudWatch's forward and backward token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import case, delete, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.core.db import session_scope
from forgeline.logs.tables import LogEvent, LogGroup, LogStream

# CloudWatch's limit on one event: 256 KiB including 26 bytes of overhead per event.
MAX_EVENT_BYTES = 256 * 1024 - 26

# Larger than any sequence number a stream will reach: the cursor after every event of
# a millisecond.
MAX_SEQUENCE = 2**62
MAX_TIMESTAMP = 2**62


@dataclasses.dataclass(frozen=True, order=True)
class Cursor:
    """The gap after the event keyed (timestamp_ms, sequence) in one stream."""

    timestamp_ms: int
    sequence: int

    @classmethod
    def at_time(cls, timestamp_ms: int) -> Cursor:
        """The gap before the first event at or after `timestamp_ms` (sequences start at 1)."""
        return cls(timestamp_ms, 0)

    @classmethod
    def before_time(cls, timestamp_ms: int) -> Cursor:
        """The gap after the last event before `timestamp_ms`."""
        return cls(timestamp_ms - 1, MAX_SEQUENCE)


START = Cursor(0, 0)
END = Cursor(MAX_TIMESTAMP, MAX_SEQUENCE)


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    stream_id: int
    timestamp_ms: int
    sequence: int
    ingestion_ms: int
    message: str

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.timestamp_ms, self.sequence)

    @property
    def cursor_before(self) -> Cursor:
        """The gap just before this event: its predecessor's key is at most this."""
        return Cursor(self.timestamp_ms, self.sequence - 1)


# -- ARNs ------------------------------------------------------------------------------------
def group_arn(region: str, account_id: str, name: str) -> str:
    """`logGroupArn`: the group itself (DescribeLogGroups' `arn` adds `:*`)."""
    return f"arn:aws:logs:{region}:{account_id}:log-group:{name}"


def stream_arn(region: str, account_id: str, group: str, stream: str) -> str:
    return f"arn:aws:logs:{region}:{account_id}:log-group:{group}:log-stream:{stream}"


# -- groups ----------------------------------------------------------------------------------
def find_group(session: Session, account_id: str, region: str, name: str) -> LogGroup | None:
    return session.scalars(
        select(LogGroup).where(
            LogGroup.account_id == account_id, LogGroup.region == region, LogGroup.name == name
        )
    ).one_or_none()


class AlreadyExists(Exception):
    """A group or stream of that name exists already."""


def create_group(
    session: Session,
    account_id: str,
    region: str,
    name: str,
    *,
    log_group_class: str = "STANDARD",
    kms_key_id: str | None = None,
    deletion_protection: bool = False,
) -> LogGroup:
    """Insert a new group; raises AlreadyExists if the name is taken."""
    group = LogGroup(
        account_id=account_id,
        region=region,
        name=name,
        log_group_class=log_group_class,
        kms_key_id=kms_key_id,
        deletion_protection=deletion_protection,
    )
    try:
        # A savepoint, so a lost race leaves the caller's transaction usable (Postgres
        # aborts the whole transaction on a failed insert otherwise).
        with session.begin_nested():
            session.add(group)
    except IntegrityError:
        raise AlreadyExists(name) from None
    return group


def ensure_group(session: Session, account_id: str, region: str, name: str) -> LogGroup:
    group = find_group(session, account_id, region, name)
    if group is not None:
        return group
    try:
        return create_group(session, account_id, region, name)
    except AlreadyExists:
        group = find_group(session, account_id, region, name)
        if group is None:  # created and deleted again in between: give up loudly
            raise
        return group


def list_groups(
    session: Session, account_id: str, region: str, prefix: str | None = None
) -> list[LogGroup]:
    query = select(LogGroup).where(LogGroup.account_id == account_id, LogGroup.region == region)
    if prefix:
        query = query.where(LogGroup.name.startswith(prefix, autoescape=True))
    return list(session.scalars(query.order_by(LogGroup.name)))


def stored_bytes_of_groups(session: Session, group_ids: Iterable[int]) -> dict[int, int]:
    ids = list(group_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(LogStream.group_id, func.coalesce(func.sum(LogStream.stored_bytes), 0))
        .where(LogStream.group_id.in_(ids))
        .group_by(LogStream.group_id)
    )
    totals = {group_id: int(total) for group_id, total in rows}
    return {group_id: totals.get(group_id, 0) for group_id in ids}


def delete_group(session: Session, group: LogGroup) -> None:
    """Delete the group, its streams and their events."""
    # Lock the group row first, as writers do (take_group_timestamp), so a delete and a
    # writer queue instead of deadlocking on each other's rows.
    session.execute(
        update(LogGroup)
        .where(LogGroup.id == group.id)
        .values(last_stamp_ms=LogGroup.last_stamp_ms)
        .execution_options(synchronize_session=False)
    )
    stream_ids = select(LogStream.id).where(LogStream.group_id == group.id)
    # Explicit deletes rather than relying on ON DELETE CASCADE alone: the outcome must
    # not depend on whether a connection enforces foreign keys.
    session.execute(delete(LogEvent).where(LogEvent.stream_id.in_(stream_ids)))
    session.execute(delete(LogStream).where(LogStream.group_id == group.id))
    session.execute(delete(LogGroup).where(LogGroup.id == group.id))


# -- streams ---------------------------------------------------------------------------------
def find_stream(session: Session, group: LogGroup, name: str) -> LogStream | None:
    return session.scalars(
        select(LogStream).where(LogStream.group_id == group.id, LogStream.name == name)
    ).one_or_none()


def create_stream(session: Session, group: LogGroup, name: str) -> LogStream:
    """Insert a new stream; raises AlreadyExists if the name is taken in the group."""
    stream = LogStream(
        group_id=group.id, account_id=group.account_id, region=group.region, name=name
    )
    try:
        with session.begin_nested():
            session.add(stream)
    except IntegrityError:
        raise AlreadyExists(name) from None
    return stream


def ensure_stream(session: Session, group: LogGroup, name: str) -> LogStream:
    stream = find_stream(session, group, name)
    if stream is not None:
        return stream
    try:
        return create_stream(session, group, name)
    except AlreadyExists:
        stream = find_stream(session, group, name)
        if stream is None:
            raise
        return stream


def list_streams(
    session: Session, group: LogGroup, *, prefix: str | None = None
) -> list[LogStream]:
    """The group's streams (those with the name prefix), by name."""
    query = select(LogStream).where(LogStream.group_id == group.id)
    if prefix:
        query = query.where(LogStream.name.startswith(prefix, autoescape=True))
    return list(session.scalars(query.order_by(LogStream.name)))


def delete_stream(session: Session, stream: LogStream) -> None:
    session.execute(delete(LogEvent).where(LogEvent.stream_id == stream.id))
    session.execute(delete(LogStream).where(LogStream.id == stream.id))


# -- events ----------------------------------------------------------------------------------
def take_group_timestamp(session: Session, group_id: int, now_ms: int) -> int | None:
    """The timestamp for a live writer's next batch in the group; None if the group is gone.

    It is never older than the last one handed out in the group, and it is taken under
    the group row's lock, held until the batch commits. So the group's live events commit
    in timestamp order, and a reader that has seen an event of time T has seen every
    live event before T: polling from the newest timestamp seen, as `aws logs tail
    --follow` does, misses nothing even with several builds writing at once (whatever
    the clocks of the machines they run on).
    """
    last = LogGroup.last_stamp_ms
    return session.execute(
        update(LogGroup)
        .where(LogGroup.id == group_id)
        .values(last_stamp_ms=case((last > now_ms, last), else_=now_ms))
        .returning(LogGroup.last_stamp_ms)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()


def append_events(
    session: Session,
    stream_id: int,
    events: Sequence[tuple[int, str]],
    ingestion_ms: int,
) -> int | None:
    """Store (timestamp_ms, message) events in order; return the first sequence number.

    Returns None when the stream no longer exists. The stream row is updated first: that
    hands out the sequence numbers atomically (concurrent writers to one stream queue on
    the row) and keeps its first/last event times and size current.
    """
    if not events:
        return None
    count = len(events)
    earliest = min(timestamp for timestamp, _ in events)
    latest = max(timestamp for timestamp, _ in events)
    size = sum(len(message.encode("utf-8")) for _, message in events)
    first_event = LogStream.first_event_ms
    last_event = LogStream.last_event_ms
    next_sequence = session.execute(
        update(LogStream)
        .where(LogStream.id == stream_id)
        .values(
            next_sequence=LogStream.next_sequence + count,
            first_event_ms=case(
                (first_event.is_(None), earliest),
                (first_event > earliest, earliest),
                else_=first_event,
            ),
            last_event_ms=case(
                (last_event.is_(None), latest),
                (last_event < latest, latest),
                else_=last_event,
            ),
            last_ingestion_ms=ingestion_ms,
            stored_bytes=LogStream.stored_bytes + size,
        )
        .returning(LogStream.next_sequence)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if next_sequence is None:
        return None
    first = next_sequence - count
    # Core insert of plain rows: several times faster than going through ORM objects.
    session.execute(
        insert(LogEvent.metadata.tables[LogEvent.__tablename__]),
        [
            {
                "stream_id": stream_id,
                "timestamp_ms": timestamp,
                "sequence": first + index,
                "ingestion_ms": ingestion_ms,
                "message": message,
            }
            for index, (timestamp, message) in enumerate(events)
        ],
    )
    return first


# Columns rather than ORM objects: reads return up to 10,000 events per call.
_EVENT_COLUMNS = (
    LogEvent.stream_id,
    LogEvent.timestamp_ms,
    LogEvent.sequence,
    LogEvent.ingestion_ms,
    LogEvent.message,
)


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(*row)


def read_stream(
    session: Session,
    stream_id: int,
    *,
    after: Cursor,
    until: Cursor,
    forward: bool,
    limit: int,
) -> list[StoredEvent]:
    """Events of one stream with after < key <= until, in ascending order.

    Forward: the first `limit` of them; backward: the last `limit` of them.
    """
    key = tuple_(LogEvent.timestamp_ms, LogEvent.sequence)
    query = select(*_EVENT_COLUMNS).where(
        LogEvent.stream_id == stream_id,
        # The plain column bounds let every backend use the index for the range.
        LogEvent.timestamp_ms >= after.timestamp_ms,
        LogEvent.timestamp_ms <= until.timestamp_ms,
        key > tuple_(after.timestamp_ms, after.sequence),
        key <= tuple_(until.timestamp_ms, until.sequence),
    )
    if forward:
        query = query.order_by(LogEvent.timestamp_ms, LogEvent.sequence)
    else:
        query = query.order_by(LogEvent.timestamp_ms.desc(), LogEvent.sequence.desc())
    rows = [_stored(row) for row in session.execute(query.limit(limit))]
    return rows if forward else rows[::-1]


@dataclasses.dataclass(frozen=True, order=True)
class GroupCursor:
    """A position in the time-ordered merge of several streams."""

    timestamp_ms: int
    stream_id: int
    sequence: int


def scan_group(
    session: Session,
    group_id: int,
    *,
    names: Sequence[str] | None,
    prefix: str | None,
    after: GroupCursor,
    end_ms: int | None,
    limit: int,
) -> list[tuple[StoredEvent, str]]:
    """Up to `limit` (event, stream name) pairs of the group's streams (all, those named,
    or those with the prefix) after `after`, ordered by (time, stream, sequence); with
    `end_ms`, only events before that time.

    One statement, so one snapshot: the streams are chosen in the same view of the
    database as their events are read in.
    """
    streams = select(LogStream.id).where(
        LogStream.group_id == group_id,
        # Only streams that can hold events in the window: on a group of many finished
        # builds, a recent window touches few streams.
        LogStream.last_event_ms >= after.timestamp_ms,
    )
    if names is not None:
        streams = streams.where(LogStream.name.in_(list(names)))
    if prefix:
        streams = streams.where(LogStream.name.startswith(prefix, autoescape=True))
    if end_ms is not None:
        streams = streams.where(LogStream.first_event_ms < end_ms)
    query = (
        select(*_EVENT_COLUMNS, LogStream.name)
        .join(LogStream, LogStream.id == LogEvent.stream_id)
        .where(
            LogEvent.stream_id.in_(streams.scalar_subquery()),
            # The plain column bound lets the index serve the range.
            LogEvent.timestamp_ms >= after.timestamp_ms,
            tuple_(LogEvent.timestamp_ms, LogEvent.stream_id, LogEvent.sequence)
            > tuple_(after.timestamp_ms, after.stream_id, after.sequence),
        )
    )
    if end_ms is not None:
        query = query.where(LogEvent.timestamp_ms < end_ms)
    query = query.order_by(LogEvent.timestamp_ms, LogEvent.stream_id, LogEvent.sequence)
    return [(StoredEvent(*row[:5]), row[5]) for row in session.execute(query.limit(limit))]


def iter_messages(
    stream_id: int, *, database_url: str | None = None, page_size: int = 5000
) -> Iterator[str]:
    """Every message of a stream in order, read in pages, each page its own short read
    transaction (a long export never holds one open)."""
    cursor = START
    while True:
        with session_scope(database_url, readonly=True) as session:
            page = read_stream(
                session, stream_id, after=cursor, until=END, forward=True, limit=page_size
            )
        for event in page:
            yield event.message
        if len(page) < page_size:
            return
        cursor = page[-1].cursor
