"""Acceptance: a worker process killed mid-job loses no work and leaves nothing RUNNING.

Real worker and beat processes (`python -m forgeline.core.work …`) on the run's database
(Postgres, or an SQLite file shared between processes) and Redis as the broker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from forgeline.core.db import Base, get_engine, get_sessionmaker, session_scope, utcnow
from forgeline.core.settings import Settings
from forgeline.core.work.celery_app import create_celery
from forgeline.core.work.jobs import enqueue
from forgeline.core.work.leases import WORKER_LOST
from forgeline.core.work.reaper import reap_expired
from forgeline.core.work.tables import Job, JobStatus
from tests.support import databases
from tests.support.jobs_for_tests import recorded_lines
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.timeout(120)

LEASE_SECONDS = 3
REAP_INTERVAL = 0.5
MARGIN = 3.0  # process start-up, one reap interval, scheduling noise
# Separate Redis databases per backend, so the two passes can run side by side.
REDIS_DB = {"postgres": 14, "sqlite": 15}[databases.backend()]
BROKER_URL = f"{databases.REDIS_URL}/{REDIS_DB}"


@pytest.fixture
def broker() -> Iterator[str]:
    client = redis.Redis.from_url(BROKER_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        if databases.backend() == "postgres":
            raise
        pytest.skip("the multi-process test needs Redis as its broker")
    client.flushdb()
    try:
        yield BROKER_URL
    finally:
        client.flushdb()


class Processes:
    """Starts `python -m forgeline.core.work <command>` in its own process group."""

    def __init__(self, database_url: str, broker_url: str, tmp_path: Path) -> None:
        self.env = os.environ | {
            "FORGELINE_DATABASE_URL": database_url,
            "FORGELINE_BROKER_URL": broker_url,
            "FORGELINE_LEASE_SECONDS": str(LEASE_SECONDS),
            "FORGELINE_REAP_INTERVAL_SECONDS": str(REAP_INTERVAL),
            "FORGELINE_EXTRA_TASK_MODULES": "tests.support.jobs_for_tests",
            "FORGELINE_DATA_DIR": str(tmp_path / "data"),
            "FORGELINE_LOG_LEVEL": "INFO",
        }
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, command: str) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"{command}-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "forgeline.core.work", command],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
        )
        log.close()
        self.started.append(process)
        return process

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def kill_all(self) -> None:
        for process in self.started:
            self.kill(process)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.tmp_path.glob("*.log"))
        )


@pytest.fixture
def processes(database_url: str, broker: str, tmp_path: Path) -> Iterator[Processes]:
    Base.metadata.create_all(get_engine(database_url))
    running = Processes(database_url, broker, tmp_path)
    try:
        yield running
    finally:
        running.kill_all()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, logs: Processes) -> float:
    """Wait until `predicate` holds; returns the time it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs.logs()}")
        time.sleep(0.05)
    return time.monotonic() - started


def load_job(url: str, job_id: str) -> Job:
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def expired_running_rows(url: str) -> int:
    with session_scope(url) as session:
        return session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.status == JobStatus.RUNNING, Job.lease_expires_at < utcnow())
        )


def enqueue_slow_job(url: str, broker_url: str, progress: Path, max_attempts: int) -> str:
    app = create_celery(Settings(database_url=url, broker_url=broker_url))
    payload = {"path": str(progress), "steps": 4, "step_seconds": 1.0}
    with session_scope(url) as session:
        return enqueue(session, "test.slow", payload, max_attempts=max_attempts, app=app)


def start_and_kill_first_worker(
    processes: Processes, url: str, broker_url: str, progress: Path, max_attempts: int
) -> tuple[str, float]:
    """Run the slow job on a first worker and SIGKILL that worker mid-job."""
    first = processes.start("worker")
    job_id = enqueue_slow_job(url, broker_url, progress, max_attempts)
    wait_for(
        lambda: (
            load_job(url, job_id).status == JobStatus.RUNNING and bool(recorded_lines(progress))
        ),
        30,
        "the first worker to start the job",
        processes,
    )
    processes.kill(first)
    return job_id, time.monotonic()


def test_killed_worker_job_is_finished_by_another_worker(
    processes: Processes, database_url: str, broker: str, tmp_path: Path
) -> None:
    progress = tmp_path / "progress.txt"
    job_id, killed_at = start_and_kill_first_worker(
        processes, database_url, broker, progress, max_attempts=3
    )
    processes.start("worker")
    processes.start("beat")  # the reaper runs as beat's periodic task on the new worker

    def recovered() -> bool:
        job = load_job(database_url, job_id)
        return job.attempts >= 2 or job.status != JobStatus.RUNNING

    wait_for(
        recovered, LEASE_SECONDS + MARGIN, "the job to be taken from the dead worker", processes
    )
    assert time.monotonic() - killed_at <= LEASE_SECONDS + MARGIN + 0.5

    # The second run lasts 4 s, longer than the 3 s lease: only heartbeats keep it.
    wait_for(
        lambda: load_job(database_url, job_id).status in JobStatus.FINAL,
        15,
        "the second worker to finish the job",
        processes,
    )
    job = load_job(database_url, job_id)
    assert job.status == JobStatus.SUCCEEDED, job.last_error
    assert job.attempts == 2  # no reap while the second worker held the lease
    assert job.result == {"steps": 4, "attempt": 2}
    lines = recorded_lines(progress)
    first_run = [line for line in lines if line.startswith("1:")]
    assert 1 <= len(first_run) < 4  # the first worker died part-way
    assert [line for line in lines if line.startswith("2:")] == ["2:0", "2:1", "2:2", "2:3"]
    assert expired_running_rows(database_url) == 0


def test_killed_worker_job_on_its_last_attempt_fails_as_worker_lost(
    processes: Processes, database_url: str, broker: str, tmp_path: Path
) -> None:
    progress = tmp_path / "progress.txt"
    job_id, killed_at = start_and_kill_first_worker(
        processes, database_url, broker, progress, max_attempts=1
    )
    processes.start("worker")
    app = create_celery(Settings(database_url=database_url, broker_url=broker))
    sessions = get_sessionmaker(database_url)

    def reaped() -> bool:
        reap_expired(sessions, app=app)
        return load_job(database_url, job_id).status != JobStatus.RUNNING

    wait_for(reaped, LEASE_SECONDS + MARGIN, "the reaper to fail the job", processes)
    assert time.monotonic() - killed_at <= LEASE_SECONDS + MARGIN + 0.5

    job = load_job(database_url, job_id)
    assert (job.status, job.last_error, job.attempts) == (JobStatus.FAILED, WORKER_LOST, 1)
    assert job.lease_owner is None
    time.sleep(1.0)  # a second worker is up: it must not run the failed job again
    assert not [line for line in recorded_lines(progress) if not line.startswith("1:")]
    assert load_job(database_url, job_id).status == JobStatus.FAILED
    assert expired_running_rows(database_url) == 0
