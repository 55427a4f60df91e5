"""Feeding executions their due timers (action timeouts, a manual approval's seven days),
and polling S3 sources for changes (s3_polling.py): a watcher thread beside each worker,
as CodeDeploy's deployments have."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import select

from forgeline.codepipeline.engine.events import Tick
from forgeline.codepipeline.engine.state import FINAL_STATUSES
from forgeline.codepipeline.running import driver, s3_polling
from forgeline.codepipeline.tables.executions import PipelineExecution
from forgeline.core.db import session_scope, utcnow
from forgeline.core.settings import get_settings
from forgeline.core.work.watch import PeriodicWatch, WatchSlot

INTERVAL_SECONDS = 1.0
BATCH = 100


def tick_due(now: dt.datetime | None = None) -> int:
    """Feed a Tick to every execution whose earliest timer is due; returns how many."""
    moment = now or utcnow()
    with session_scope(readonly=True) as session:
        due = session.scalars(
            select(PipelineExecution.id)
            .where(
                PipelineExecution.wake_at <= moment,
                PipelineExecution.status.not_in(FINAL_STATUSES),
            )
            .order_by(PipelineExecution.wake_at)
            .limit(BATCH)
        ).all()
    for execution_id in due:
        with session_scope() as session:
            execution = driver.lock(session, execution_id)
            if execution is not None and execution.wake_at and execution.wake_at <= moment:
                driver.apply(session, execution, Tick(), now=moment)
    return len(due)


def _watch_step() -> Callable[[], None]:
    settings = get_settings()
    next_poll = time.monotonic() + settings.codepipeline_s3_poll_seconds

    def step() -> None:
        nonlocal next_poll
        tick_due()
        if time.monotonic() >= next_poll:
            next_poll = time.monotonic() + settings.codepipeline_s3_poll_seconds
            s3_polling.poll_once(settings)

    return step


_slot = WatchSlot()


def start_watching(*_: Any) -> None:
    _slot.start(lambda: PeriodicWatch("codepipeline-timers", INTERVAL_SECONDS, _watch_step()))


def stop_watching(*_: Any) -> None:
    _slot.stop()


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    # A separate Celery worker process (the production shape) watches too.
    start_watching()


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    stop_watching()
