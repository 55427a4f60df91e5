"""The build doorbell: after a transaction that queued a build commits, tell a worker to
look at the build queue. The message carries nothing; the `builds` table is the queue."""

from __future__ import annotations

from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from forgeline.core.db import on_commit
from forgeline.core.work import celery_app

DISPATCH_TASK = "forgeline.codebuild.dispatch"
_PENDING = "forgeline.build_doorbell"


def ring(app: Celery | None = None, _row_id: Any = None) -> None:
    target = app or celery_app.active_app()
    target.send_task(DISPATCH_TASK, queue=target.conf.task_default_queue)


def ring_after_commit(session: Session) -> None:
    """Ring once the transaction that queued builds commits (one ring per commit). A failed
    ring is logged; the reaper re-rings builds left waiting."""
    on_commit(session, ring, key=_PENDING)
