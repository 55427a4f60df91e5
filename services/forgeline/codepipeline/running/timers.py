"""Feeding executions their due timers (action timeouts, a manual approval's seven days),
and polling S3 sources for changes (s3_polling.py): a watcher thread beside each worker,
as CodeDeploy's deployments have."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import select

from forgeline.codepipeline.engine.events import Tick
from forgeline.codepipeline.engine.state import FINAL_STATUSES
from forgeline.codepipeline.running import driver, s3_polling
from forgeline.codepipeline.tables.executions import PipelineExecution
from forgeline.core.db import session_scope, utcnow
from forgeline.core.settings import get_settings

logger = logging.getLogger(__name__)

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


class TimerWatch:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="codepipeline-timers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        settings = get_settings()
        next_poll = time.monotonic() + settings.codepipeline_s3_poll_seconds
        while not self._stop.wait(INTERVAL_SECONDS):
            try:
                tick_due()
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + settings.codepipeline_s3_poll_seconds
                    s3_polling.poll_once(settings)
            except Exception:
                logger.exception("pipeline timers failed; retrying next interval")


_watch: TimerWatch | None = None
_watch_lock = threading.Lock()


def start_watching(*_: Any) -> None:
    global _watch
    with _watch_lock:
        if _watch is None:
            _watch = TimerWatch()
            _watch.start()


def stop_watching(*_: Any) -> None:
    global _watch
    with _watch_lock:
        if _watch is not None:
            _watch.stop()
            _watch = None


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    # A separate Celery worker process (the production shape) watches too.
    start_watching()


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    stop_watching()
