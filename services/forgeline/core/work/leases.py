"""Claim, renew and complete rows of any table that carries the lease columns.

Why leases: a worker that dies cannot report it, so its hold on a row has to run out by
itself. A lease is a claim with an expiry: the owner renews it while it works, only the
owner may complete the row, and the reaper hands rows whose lease ran out to another
worker or fails them. A lost message, a duplicate delivery or a killed worker then cannot
lose work, and two workers never hold the same row at once.

Every function works inside the caller's session and transaction; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import ColumnElement, Integer, String, Text, and_, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from forgeline.core.db import UTCDateTime, utcnow

QUEUED = "QUEUED"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"

WORKER_LOST = "worker lost: lease expired"

ReapAction = Literal["requeue", "fail"]


class LeaseColumns:
    """Mixin for tables whose rows workers claim; the table also needs an `id` key."""

    status: Mapped[str] = mapped_column(String(32), index=True, default=QUEUED)
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


Row = TypeVar("Row", bound=LeaseColumns)


class LeaseState(Protocol):
    """What `reap_decision` reads from a row."""

    status: str
    lease_expires_at: dt.datetime | None
    attempts: int
    max_attempts: int


def new_owner() -> str:
    """A lease owner id unique to one claim: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _claimed_values(
    model: type[Row], owner: str, lease_seconds: float, to_status: str, now: dt.datetime
) -> dict[str, Any]:
    return {
        "status": to_status,
        "lease_owner": owner,
        "lease_expires_at": now + dt.timedelta(seconds=lease_seconds),
        "attempts": model.attempts + 1,
        "updated_at": now,
    }


def claim(
    session: Session,
    model: type[Row],
    row_id: Any,
    owner: str,
    lease_seconds: float,
    from_statuses: Sequence[str] = (QUEUED,),
    to_status: str = RUNNING,
    *,
    take_expired: bool = False,
    now: dt.datetime | None = None,
) -> Row | None:
    """Claim one row in a single conditional UPDATE … RETURNING; None if it is not claimable.

    With `take_expired`, a row still in `to_status` whose lease ran out (and that has
    attempts left) can be taken over without waiting for the reaper.
    """
    now = now or utcnow()
    claimable: ColumnElement[bool] = model.status.in_(from_statuses)
    if take_expired:
        claimable = or_(
            claimable,
            and_(
                model.status == to_status,
                model.lease_expires_at < now,
                model.attempts < model.max_attempts,
            ),
        )
    statement = (
        update(model)
        .where(model.id == row_id, claimable)  # type: ignore[attr-defined]
        .values(_claimed_values(model, owner, lease_seconds, to_status, now))
        .returning(model)
    )
    return session.scalars(statement, execution_options={"populate_existing": True}).first()


def claim_next(
    session: Session,
    model: type[Row],
    owner: str,
    lease_seconds: float,
    from_statuses: Sequence[str] = (QUEUED,),
    to_status: str = RUNNING,
    *,
    where: Sequence[ColumnElement[bool]] = (),
    now: dt.datetime | None = None,
) -> Row | None:
    """Claim the longest-waiting claimable row matching `where`, or return None.

    On Postgres the candidate is picked with FOR UPDATE SKIP LOCKED, so concurrent
    claimers skip each other's rows instead of queueing on them. SQLite serializes
    writers (BEGIN IMMEDIATE), so the same conditional UPDATE is enough there; its
    compiler leaves the locking clause out.
    """
    now = now or utcnow()
    id_column = model.id  # type: ignore[attr-defined]
    candidate = (
        select(id_column)
        .where(model.status.in_(from_statuses), *where)
        .order_by(model.updated_at, id_column)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(model)
        .where(id_column == candidate, model.status.in_(from_statuses))
        .values(_claimed_values(model, owner, lease_seconds, to_status, now))
        .returning(model)
    )
    return session.scalars(statement, execution_options={"populate_existing": True}).first()


def renew(
    session: Session,
    model: type[Row],
    row_id: Any,
    owner: str,
    lease_seconds: float,
    *,
    now: dt.datetime | None = None,
) -> bool:
    """Extend the lease; False when `owner` no longer holds it (reaped or taken over)."""
    now = now or utcnow()
    statement = (
        update(model)
        .where(model.id == row_id, model.lease_owner == owner)  # type: ignore[attr-defined]
        .values(lease_expires_at=now + dt.timedelta(seconds=lease_seconds), updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount == 1  # type: ignore[attr-defined]


def complete(
    session: Session,
    model: type[Row],
    row_id: Any,
    owner: str,
    status: str,
    error: str | None = None,
    *,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """Set the row's final (or requeued) status and release the lease; only its owner may.

    `values` sets further columns in the same UPDATE (a job's result, for one).
    """
    statement = (
        update(model)
        .where(model.id == row_id, model.lease_owner == owner)  # type: ignore[attr-defined]
        .values(
            status=status,
            lease_owner=None,
            lease_expires_at=None,
            last_error=error,
            updated_at=utcnow(),
            **(values or {}),
        )
        .execution_options(synchronize_session=False)
    )
    return session.execute(statement).rowcount == 1  # type: ignore[attr-defined]


def reap_decision(
    row: LeaseState, now: dt.datetime, running_status: str = RUNNING
) -> ReapAction | None:
    """What the reaper does with a row: requeue it, fail it, or leave it alone."""
    if row.status != running_status or row.lease_expires_at is None:
        return None
    if row.lease_expires_at >= now:
        return None
    return "requeue" if row.attempts < row.max_attempts else "fail"
