"""The build doorbell: after a transaction that queued a build commits, tell a worker to
look at the build queue. The message carries nothing; the `builds` table is the queue."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from forgeline.core.work import celery_app

logger = logging.getLogger(__name__)

DISPATCH_TASK = "forgeline.codebuild.dispatch"
_PENDING = "forgeline.build_doorbell"


def ring(app: Celery | None = None, _row_id: Any = None) -> None:
    target = app or celery_app.active_app()
    target.send_task(DISPATCH_TASK, queue=target.conf.task_default_queue)


def ring_after_commit(session: Session) -> None:
    session.info[_PENDING] = True


@event.listens_for(Session, "after_commit")
def _ring_pending(session: Session) -> None:
    if session.in_nested_transaction() or not session.info.pop(_PENDING, False):
        return
    try:
        ring()
    except Exception:
        # The build is committed; the reaper re-rings builds left waiting.
        logger.warning("could not ring the build doorbell", exc_info=True)


@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    # Only the outermost transaction: a rolled-back savepoint leaves the build to commit.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
