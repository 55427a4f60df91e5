"""Background jobs: a row in `jobs`, a registered function, and a doorbell message.

`enqueue` inserts the row and rings the doorbell once the transaction commits; the
message carries only the job id. The worker claims the row, runs the function while a
heartbeat thread renews the lease, then completes the row. A message for a row that is
already claimed or finished finds nothing to claim and does nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

from celery import Celery, shared_task
from sqlalchemy.orm import Session, sessionmaker

from forgeline.core.db import get_sessionmaker, on_commit
from forgeline.core.work import celery_app
from forgeline.core.work.leases import claim, complete, new_owner, renew
from forgeline.core.work.tables import Job, JobStatus, new_job_id

logger = logging.getLogger(__name__)

Outcome = Literal["skipped", "succeeded", "failed", "requeued", "lost"]
_OUTCOMES: dict[str, Outcome] = {
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.FAILED: "failed",
    JobStatus.QUEUED: "requeued",
}


class RetryableJobError(Exception):
    """Raise from a job function to have it run again while attempts remain."""


class LeaseLost(RuntimeError):
    """The job's lease was taken away; its result would be discarded."""


class Heartbeat:
    """Renews a claimed job's lease from a background thread while the job runs.

    Other leased tables (builds) use it too, through `model`.

    Job functions receive it; calling it between steps raises `LeaseLost` once another
    worker may own the job, so long jobs can stop early instead of working for nothing.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        job_id: str,
        owner: str,
        lease_seconds: float,
        attempt: int,
        model: type[Any] = Job,
    ) -> None:
        self.job_id = job_id
        self._model = model
        self.attempt = attempt
        self._sessions = sessions
        self._owner = owner
        self._lease_seconds = lease_seconds
        self._stopped = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{job_id[:8]}", daemon=True
        )

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def __call__(self) -> None:
        if self.lost:
            raise LeaseLost(f"job {self.job_id} is no longer leased by this worker")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        interval = self._lease_seconds / 3
        while not self._stopped.wait(interval):
            try:
                with self._sessions.begin() as session:
                    held = renew(
                        session, self._model, self.job_id, self._owner, self._lease_seconds
                    )
            except Exception:
                # A failed renewal is not a lost lease yet; the next beat tries again.
                logger.warning("could not renew the lease of job %s", self.job_id, exc_info=True)
                continue
            if not held:
                logger.warning("job %s lost its lease", self.job_id)
                self._lost.set()
                return


JobFunction = Callable[[dict[str, Any], Heartbeat], Any]

_kinds: dict[str, JobFunction] = {}


def job_kind(name: str) -> Callable[[JobFunction], JobFunction]:
    """Register a function `(payload, heartbeat) -> JSON-able result` as job kind `name`."""

    def register(function: JobFunction) -> JobFunction:
        existing = _kinds.get(name)
        # The same function seen again (its module re-imported) is not a conflict.
        if existing is not None and _identity(existing) != _identity(function):
            raise ValueError(f"job kind {name!r} is already registered")
        _kinds[name] = function
        return function

    return register


def _identity(function: JobFunction) -> tuple[str, str]:
    return function.__module__, function.__qualname__


def registered_kinds() -> list[str]:
    return sorted(_kinds)


# Doorbells wait in session.info until the transaction that wrote their rows commits.
def ring_doorbell(app: Celery, job_id: str) -> None:
    """Tell a worker to look at this job now (safe to repeat)."""
    app.send_task(celery_app.RUN_JOB_TASK, args=[job_id], queue=app.conf.task_default_queue)


def ring_after_commit(session: Session, job_id: str, app: Celery | None = None) -> None:
    """Ring once the job's row is committed (before, a worker could not see it). A failed
    ring is logged; the reaper re-rings jobs left waiting."""
    target = app or celery_app.active_app()
    on_commit(session, lambda: ring_doorbell(target, job_id))


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    max_attempts: int = 3,
    *,
    app: Celery | None = None,
) -> str:
    """Insert a QUEUED job; its doorbell rings when `session` commits. Returns the job id."""
    job = Job(
        id=new_job_id(),
        kind=kind,
        payload=payload or {},
        status=JobStatus.QUEUED,
        attempts=0,
        max_attempts=max_attempts,
    )
    session.add(job)
    session.flush()
    ring_after_commit(session, job.id, app)
    return job.id


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _call(
    function: JobFunction, payload: dict[str, Any], heartbeat: Heartbeat, can_retry: bool
) -> tuple[str, str | None, Any]:
    """Run a job function; returns (status, error, result)."""
    try:
        result = function(payload, heartbeat)
    except RetryableJobError as exc:
        return (JobStatus.QUEUED if can_retry else JobStatus.FAILED), _describe(exc), None
    except Exception as exc:
        logger.info("job %s failed", heartbeat.job_id, exc_info=True)
        return JobStatus.FAILED, _describe(exc), None
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        return JobStatus.FAILED, f"result is not JSON: {exc}", None
    return JobStatus.SUCCEEDED, None, result


def execute_job(
    job_id: str,
    *,
    database_url: str,
    lease_seconds: float,
    app: Celery | None = None,
) -> Outcome:
    """Claim the job, run its function under a heartbeat, and record the outcome."""
    sessions = get_sessionmaker(database_url)
    owner = new_owner()
    with sessions.begin() as session:
        job = claim(session, Job, job_id, owner, lease_seconds)
        if job is None:
            return "skipped"
        kind, payload, attempt, max_attempts = job.kind, job.payload, job.attempts, job.max_attempts

    status: str
    error: str | None
    result: Any
    function = _kinds.get(kind)
    if function is None:
        status, error, result = JobStatus.FAILED, f"unknown job kind {kind!r}", None
    else:
        heartbeat = Heartbeat(sessions, job_id, owner, lease_seconds, attempt)
        heartbeat.start()
        try:
            status, error, result = _call(function, payload, heartbeat, attempt < max_attempts)
        finally:
            heartbeat.stop()

    with sessions.begin() as session:
        values = {"result": result} if status == JobStatus.SUCCEEDED else {}
        done = complete(session, Job, job_id, owner, status, error, values=values)
        if done and status == JobStatus.QUEUED:
            ring_after_commit(session, job_id, app)
    if not done:
        logger.warning("job %s finished after losing its lease; outcome dropped", job_id)
        return "lost"
    return _OUTCOMES[status]


@shared_task(name=celery_app.RUN_JOB_TASK, bind=True, ignore_result=True)
def run_job(self: Any, job_id: str) -> str:
    settings = celery_app.settings_of(self.app)
    return execute_job(
        job_id,
        database_url=settings.resolved_database_url,
        lease_seconds=settings.lease_seconds,
        app=self.app,
    )
