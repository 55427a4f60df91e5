"""Publishing state changes to the event stream and reading them back with cursors.

`publish()` appends an event inside the caller's transaction, so the event exists if and
only if the state change that caused it commits, and rings the fan-out after the commit.
An `EventReader` delivers events after its consumer's acknowledged cursor: at least once,
in id order, never skipping one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from forgeline.core.db import is_postgres, on_commit, pending_on_commit, session_scope, utcnow
from forgeline.core.events.fanout import Fanout, get_fanout
from forgeline.core.events.tables import Event, EventCursor

# Readers normally wake on the fan-out; this slow poll only covers lost notifications.
POLL_FALLBACK_SECONDS = 1.0
MAX_READ_LIMIT = 1000

# One fixed key for the lock that serializes publishers on Postgres (see publish()).
PUBLISH_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"forgeline.events.publish").digest()[:8], "big", signed=True
)

_NOTICE_KEY = "forgeline.events.notice"


class EventFields(Protocol):
    """What to_eventbridge() needs: a StoredEvent or an `events` row."""

    event_id: str
    account_id: str
    region: str
    source: str
    detail_type: str
    resources: Any
    detail: Any
    time: dt.datetime


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    """An event as read from the stream; `id` is its position (the cursor)."""

    id: int
    event_id: str
    account_id: str
    region: str
    source: str
    detail_type: str
    resources: tuple[str, ...]
    detail: dict[str, Any]
    time: dt.datetime

    @classmethod
    def from_row(cls, row: Event) -> StoredEvent:
        return cls(
            id=row.id,
            event_id=row.event_id,
            account_id=row.account_id,
            region=row.region,
            source=row.source,
            detail_type=row.detail_type,
            resources=tuple(row.resources),
            detail=row.detail,
            time=row.time,
        )


def format_event_time(value: dt.datetime) -> str:
    """EventBridge's time format: UTC, whole seconds, 'Z' suffix."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_eventbridge(stored_event: EventFields) -> dict[str, Any]:
    """The event in the shape EventBridge delivers it."""
    return {
        "version": "0",
        "id": stored_event.event_id,
        "detail-type": stored_event.detail_type,
        "source": stored_event.source,
        "account": stored_event.account_id,
        "time": format_event_time(stored_event.time),
        "region": stored_event.region,
        "resources": list(stored_event.resources),
        "detail": json.loads(json.dumps(stored_event.detail)),
    }


def publish(
    session: Session,
    *,
    account_id: str,
    region: str,
    source: str,
    detail_type: str,
    detail: Mapping[str, Any],
    resources: Iterable[str] = (),
    fanout: Fanout | None = None,
) -> dict[str, Any]:
    """Append an event in `session`'s transaction; returns it in EventBridge's shape.

    The fan-out (default: the process-wide one) is notified only once the transaction
    commits. On Postgres, call this as the last step before commit: it holds a lock that
    other publishers wait on until this transaction ends.
    """
    if not isinstance(detail, Mapping):
        raise TypeError("event detail must be a mapping")
    if isinstance(resources, str):
        raise TypeError("event resources must be a list of ARNs, not a single string")
    if is_postgres(session):
        # Postgres hands out sequence ids at insert time but transactions commit in any
        # order, so id 5 can become visible before id 4 and a reader already past 5 would
        # never see 4. Holding a transaction-scoped lock from before the insert until
        # commit makes publishing transactions take ids and commit one after another, so
        # ids become visible in order. It costs publishers concurrency, which we accept:
        # the alternative, readers holding back behind in-flight transaction ids, puts
        # the complexity on every reader. SQLite needs nothing: its BEGIN IMMEDIATE
        # (forgeline.core.db) already lets only one writer in at a time.
        session.execute(select(func.pg_advisory_xact_lock(PUBLISH_LOCK_KEY)))
    row = Event(
        event_id=str(uuid.uuid4()),
        account_id=account_id,
        region=region,
        source=source,
        detail_type=detail_type,
        resources=[str(arn) for arn in resources],
        # A JSON round trip copies the caller's dict and fails here, not at flush, on
        # values JSON cannot hold.
        detail=json.loads(json.dumps(dict(detail))),
        time=utcnow(),
    )
    session.add(row)
    session.flush()
    _notify_after_commit(session, row.id, fanout)
    return to_eventbridge(row)


class _CommitNotice:
    """The one fan-out notification a transaction owes once it commits: the highest event
    id it wrote (readers fetch everything up to it)."""

    def __init__(self, fanout: Fanout | None) -> None:
        self.highest = 0
        self.fanout = fanout

    def __call__(self) -> None:
        # The commit has happened; a missed notice only delays readers until they poll.
        (self.fanout or get_fanout()).notify(self.highest)


def _notify_after_commit(session: Session, event_id: int, fanout: Fanout | None) -> None:
    notice = pending_on_commit(session, _NOTICE_KEY)
    if not isinstance(notice, _CommitNotice):
        notice = _CommitNotice(fanout)
        on_commit(session, notice, key=_NOTICE_KEY)
    notice.highest = max(notice.highest, event_id)
    notice.fanout = notice.fanout or fanout


class EventReader:
    """Reads the stream for one named consumer, resuming after its acknowledged cursor.

    Delivery is at least once: `read()` moves this reader's position forward, but only
    `ack()` moves the stored cursor, so a new reader of the same consumer name starts again
    after the last acknowledged event. Not thread-safe: one reader per thread.
    """

    def __init__(
        self, consumer_name: str, url: str | None = None, *, fanout: Fanout | None = None
    ) -> None:
        if not consumer_name:
            raise ValueError("consumer name must not be empty")
        self.consumer_name = consumer_name
        self.url = url
        self._fanout = fanout
        self._position: int | None = None

    @property
    def fanout(self) -> Fanout:
        if self._fanout is None:
            self._fanout = get_fanout()
        return self._fanout

    @property
    def position(self) -> int:
        """Id of the last event this reader delivered (or the cursor it started from)."""
        if self._position is None:
            self._position = self.committed_cursor()
        return self._position

    def committed_cursor(self) -> int:
        """The consumer's acknowledged cursor in the database (0 before the first ack)."""
        with session_scope(self.url) as session:
            stored = session.get(EventCursor, self.consumer_name)
            return stored.last_id if stored is not None else 0

    def read(
        self,
        limit: int = 100,
        wait_seconds: float = 0.0,
        account_id: str | None = None,
        source: str | None = None,
        detail_type: str | None = None,
        region: str | None = None,
    ) -> list[StoredEvent]:
        """Up to `limit` matching events after this reader's position, oldest first.

        With `wait_seconds`, blocks until a matching event arrives or the time runs out.
        """
        if not 1 <= limit <= MAX_READ_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_READ_LIMIT}")
        deadline = time.monotonic() + max(wait_seconds, 0.0)
        while True:
            # Read the generation before the table: a commit landing in between then
            # makes wait() return at once instead of sleeping through it.
            generation = self.fanout.generation
            events = self._fetch(limit, account_id, source, detail_type, region)
            if events:
                self._position = events[-1].id
                return events
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self.fanout.wait(generation, min(remaining, POLL_FALLBACK_SECONDS))

    def ack(self, last_id: int) -> None:
        """Store `last_id` as the consumer's cursor; it never moves backwards."""
        if last_id < 0:
            raise ValueError("event id must not be negative")
        with session_scope(self.url) as session:
            session.execute(_upsert_cursor(session, self.consumer_name, last_id))
        if self._position is not None and last_id > self._position:
            self._position = last_id

    def rewind(self) -> None:
        """Go back to the acknowledged cursor, to deliver unacknowledged events again."""
        self._position = None

    def _fetch(
        self,
        limit: int,
        account_id: str | None,
        source: str | None,
        detail_type: str | None,
        region: str | None,
    ) -> list[StoredEvent]:
        query = select(Event).where(Event.id > self.position)
        if account_id is not None:
            query = query.where(Event.account_id == account_id)
        if region is not None:
            query = query.where(Event.region == region)
        if source is not None:
            query = query.where(Event.source == source)
        if detail_type is not None:
            query = query.where(Event.detail_type == detail_type)
        with session_scope(self.url) as session:
            rows = session.scalars(query.order_by(Event.id).limit(limit))
            return [StoredEvent.from_row(row) for row in rows]


def _upsert_cursor(session: Session, consumer_name: str, last_id: int) -> Any:
    insert = postgresql.insert if is_postgres(session) else sqlite.insert
    statement = insert(EventCursor).values(
        consumer_name=consumer_name, last_id=last_id, updated_at=utcnow()
    )
    return statement.on_conflict_do_update(
        index_elements=[EventCursor.consumer_name],
        set_={
            "last_id": case(
                (statement.excluded.last_id > EventCursor.last_id, statement.excluded.last_id),
                else_=EventCursor.last_id,
            ),
            "updated_at": statement.excluded.updated_at,
        },
    )
