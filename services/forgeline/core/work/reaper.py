"""The lease reaper: hands work whose worker vanished to another worker, or fails it.

It also re-rings the doorbell of rows that have waited in QUEUED for a long time, which
covers a message lost between commit and publish or dropped by the broker.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from celery import Celery, shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.core.db import get_sessionmaker, utcnow
from forgeline.core.settings import Settings
from forgeline.core.work import celery_app
from forgeline.core.work.jobs import ring_doorbell
from forgeline.core.work.leases import (
    FAILED,
    QUEUED,
    RUNNING,
    WORKER_LOST,
    LeaseColumns,
    reap_decision,
)
from forgeline.core.work.tables import Job

logger = logging.getLogger(__name__)

Doorbell = Callable[[Celery, Any], None]


@dataclasses.dataclass(frozen=True)
class Reapable:
    """A leased table the reaper watches; `doorbell` is None for tables workers poll."""

    model: type[LeaseColumns]
    doorbell: Doorbell | None
    running_status: str = RUNNING
    queued_status: str = QUEUED
    failed_status: str = FAILED
    # Called for each row the reaper fails, in the same transaction: a service records
    # what the loss means for its own resource (a build ends FAILED, say).
    on_failed: Callable[[Session, Any], None] | None = None


@dataclasses.dataclass
class ReapCounts:
    requeued: int = 0
    failed: int = 0
    redispatched: int = 0


_reapables: list[Reapable] = []


def register_reapable(reapable: Reapable) -> None:
    if all(existing.model is not reapable.model for existing in _reapables):
        _reapables.append(reapable)


register_reapable(Reapable(Job, ring_doorbell))


def _reap_table(
    session: Session,
    reapable: Reapable,
    now: dt.datetime,
    counts: ReapCounts,
    batch: int,
    redispatch_after: float | None,
) -> list[Any]:
    """Apply the reap decisions to one table; returns the ids whose doorbell must ring."""
    model: Any = reapable.model
    expired = session.scalars(
        select(model)
        .where(model.status == reapable.running_status, model.lease_expires_at < now)
        .order_by(model.lease_expires_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    to_ring = []
    for row in expired:
        action = reap_decision(row, now, reapable.running_status)
        if action is None:
            continue
        row.lease_owner = None
        row.lease_expires_at = None
        row.updated_at = now
        if action == "requeue":
            row.status = reapable.queued_status
            row.last_error = f"{WORKER_LOST} (attempt {row.attempts})"
            counts.requeued += 1
            to_ring.append(row.id)
        else:
            row.status = reapable.failed_status
            row.last_error = WORKER_LOST
            counts.failed += 1
            if reapable.on_failed is not None:
                reapable.on_failed(session, row)
    if reapable.doorbell is not None and redispatch_after is not None:
        waiting = session.scalars(
            select(model)
            .where(
                model.status == reapable.queued_status,
                model.updated_at < now - dt.timedelta(seconds=redispatch_after),
            )
            .order_by(model.updated_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        for row in waiting:
            row.updated_at = now  # re-ring each waiting row at most once per period
            counts.redispatched += 1
            to_ring.append(row.id)
    return to_ring if reapable.doorbell is not None else []


def reap_expired(
    session_factory: Callable[[], Session],
    now: dt.datetime | None = None,
    *,
    app: Celery | None = None,
    batch: int = 500,
    redispatch_after: float | None = 60.0,
) -> ReapCounts:
    """Requeue or fail rows whose lease expired; re-ring rows left QUEUED too long."""
    now = now or utcnow()
    app = app or celery_app.active_app()
    counts = ReapCounts()
    for reapable in list(_reapables):
        with session_factory() as session, session.begin():
            to_ring = _reap_table(session, reapable, now, counts, batch, redispatch_after)
        for row_id in to_ring:
            try:
                reapable.doorbell(app, row_id)  # type: ignore[misc]
            except Exception:
                logger.warning("could not ring the doorbell for %s", row_id, exc_info=True)
    if counts.requeued or counts.failed or counts.redispatched:
        logger.info("reaped leases: %s", dataclasses.asdict(counts))
    return counts


def redispatch_after(settings: Settings) -> float:
    """How long a job may wait in QUEUED before its doorbell is rung again."""
    return max(60.0, settings.lease_seconds * 2.0)


@shared_task(name=celery_app.REAP_TASK, bind=True, ignore_result=True)
def reap_task(self: Any) -> dict[str, int]:
    settings = celery_app.settings_of(self.app)
    sessions = get_sessionmaker(settings.resolved_database_url)
    counts = reap_expired(sessions, app=self.app, redispatch_after=redispatch_after(settings))
    return dataclasses.asdict(counts)
