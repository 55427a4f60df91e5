"""The work layer against a real database and a real Celery worker.

Leases are exercised directly; jobs go through an embedded worker (threads pool) on the
run's backend: SQLite with the in-memory broker, or Postgres with Redis.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from forgeline.core.db import Base, dispose_engines, get_engine, get_sessionmaker, session_scope
from forgeline.core.settings import Settings
from forgeline.core.work.celery_app import create_celery
from forgeline.core.work.embedded import EmbeddedWorker, start_embedded_worker
from forgeline.core.work.jobs import enqueue, execute_job, ring_doorbell
from forgeline.core.work.leases import (
    WORKER_LOST,
    claim,
    claim_next,
    complete,
    renew,
)
from forgeline.core.work.reaper import reap_expired
from forgeline.core.work.tables import Job, JobStatus
from tests.support import databases
from tests.support.jobs_for_tests import recorded_lines

pytestmark = pytest.mark.timeout(120)

REDIS_DB = 13
LEASE_SECONDS = 3


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def load_job(url: str, job_id: str) -> Job:
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        assert job is not None, f"job {job_id} does not exist"
        return job


def wait_final(url: str, job_id: str, timeout: float = 15.0) -> Job:
    wait_for(
        lambda: load_job(url, job_id).status in JobStatus.FINAL, timeout, f"job {job_id} to end"
    )
    return load_job(url, job_id)


def flush_redis() -> None:
    if databases.backend() == "postgres":
        redis.Redis.from_url(databases.broker_url(REDIS_DB)).flushdb()


def queued_row(url: str, max_attempts: int = 3) -> str:
    """A QUEUED job inserted without a doorbell, so no worker touches it unasked."""
    with session_scope(url) as session:
        job = Job(kind="test.echo", payload={}, status=JobStatus.QUEUED, max_attempts=max_attempts)
        session.add(job)
        session.flush()
        return job.id


@pytest.fixture
def tables(database_url: str) -> str:
    Base.metadata.create_all(get_engine(database_url))
    return database_url


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedWorker]:
    """One embedded worker (and its reaper) for this module, on its own database."""
    data_dir = tmp_path_factory.mktemp("work")
    url = databases.create_database(data_dir)
    Base.metadata.create_all(get_engine(url))
    flush_redis()
    settings = Settings(
        database_url=url,
        broker_url=databases.broker_url(REDIS_DB),
        data_dir=data_dir,
        lease_seconds=LEASE_SECONDS,
        reap_interval_seconds=0.2,
        worker_concurrency=2,
    )
    handle = start_embedded_worker(settings)
    try:
        yield handle
    finally:
        handle.stop()
        flush_redis()
        dispose_engines()
        databases.drop_database(url)


def url_of(worker: EmbeddedWorker) -> str:
    return worker.settings.resolved_database_url


# --- jobs through the embedded worker -------------------------------------------------


def test_enqueued_job_succeeds_with_its_result(worker: EmbeddedWorker) -> None:
    url = url_of(worker)
    with session_scope(url) as session:
        job_id = enqueue(session, "test.echo", {"n": 7})

    job = wait_final(url, job_id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == {"echo": {"n": 7}, "attempt": 1}
    assert job.attempts == 1
    assert job.lease_owner is None and job.lease_expires_at is None
    assert job.last_error is None


def test_doorbell_rings_only_after_commit(worker: EmbeddedWorker) -> None:
    # A doorbell sent before commit would reach a worker that cannot see the row yet,
    # and nothing would ring again: the job would sit in QUEUED.
    url = url_of(worker)
    with session_scope(url) as session:
        job_id = enqueue(session, "test.echo", {"late": True})
        time.sleep(0.5)

    assert wait_final(url, job_id, timeout=5).status == JobStatus.SUCCEEDED


def test_rolled_back_enqueue_leaves_no_job(worker: EmbeddedWorker) -> None:
    url = url_of(worker)
    with pytest.raises(RuntimeError), session_scope(url) as session:
        job_id = enqueue(session, "test.echo", {})
        raise RuntimeError("abort")

    with session_scope(url) as session:
        assert session.get(Job, job_id) is None


def test_duplicate_doorbells_run_the_job_once(worker: EmbeddedWorker, tmp_path: Path) -> None:
    url = url_of(worker)
    runs = tmp_path / "runs.txt"
    with session_scope(url) as session:
        job_id = enqueue(session, "test.count", {"path": str(runs), "seconds": 0.3})
    for _ in range(4):  # duplicates arrive while the job runs on the other task slot
        ring_doorbell(worker.app, job_id)

    job = wait_final(url, job_id)
    for _ in range(2):  # and after it finished
        ring_doorbell(worker.app, job_id)
    with session_scope(url) as session:
        marker = enqueue(session, "test.echo", {})
    wait_final(url, marker)
    # A delivery handled right here, synchronously, is refused just the same.
    outcome = execute_job(job_id, database_url=url, lease_seconds=LEASE_SECONDS)

    assert outcome == "skipped"
    assert job.status == JobStatus.SUCCEEDED
    assert recorded_lines(runs) == ["run 1"]
    assert load_job(url, job_id).attempts == 1


def test_failing_job_is_failed_with_the_error(worker: EmbeddedWorker) -> None:
    url = url_of(worker)
    with session_scope(url) as session:
        job_id = enqueue(session, "test.fail", {"message": "compiler exploded"}, max_attempts=3)

    job = wait_final(url, job_id)
    assert job.status == JobStatus.FAILED
    assert job.last_error == "RuntimeError: compiler exploded"
    assert job.attempts == 1  # an ordinary error is not retried
    assert job.result is None


def test_retryable_error_runs_again_until_it_succeeds(worker: EmbeddedWorker) -> None:
    url = url_of(worker)
    with session_scope(url) as session:
        job_id = enqueue(session, "test.flaky", {"succeed_on_attempt": 3}, max_attempts=3)

    job = wait_final(url, job_id)
    assert job.status == JobStatus.SUCCEEDED
    assert job.result == 3
    assert job.attempts == 3


def test_retryable_error_fails_when_attempts_run_out(worker: EmbeddedWorker) -> None:
    url = url_of(worker)
    with session_scope(url) as session:
        job_id = enqueue(session, "test.flaky", {"succeed_on_attempt": 9}, max_attempts=2)

    job = wait_final(url, job_id)
    assert job.status == JobStatus.FAILED
    assert job.attempts == 2
    assert job.last_error == "RetryableJobError: not yet (attempt 2)"


def test_unknown_kind_and_unserializable_result_fail(worker: EmbeddedWorker) -> None:
    url = url_of(worker)
    with session_scope(url) as session:
        unknown = enqueue(session, "no.such.kind", {})
        not_json = enqueue(session, "test.not_json", {})

    assert wait_final(url, unknown).last_error == "unknown job kind 'no.such.kind'"
    job = wait_final(url, not_json)
    assert job.status == JobStatus.FAILED
    assert job.last_error is not None and job.last_error.startswith("result is not JSON")


def test_embedded_reaper_recovers_a_job_whose_worker_vanished(worker: EmbeddedWorker) -> None:
    url = url_of(worker)
    job_id = queued_row(url)
    with session_scope(url) as session:
        assert claim(session, Job, job_id, "vanished-worker", lease_seconds=0.5) is not None

    # The reaper thread requeues it once the lease runs out and rings its doorbell.
    job = wait_final(url, job_id, timeout=10)
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempts == 2
    assert job.result == {"echo": {}, "attempt": 2}


def test_a_hundred_tiny_jobs_go_through_quickly(worker: EmbeddedWorker) -> None:
    url = url_of(worker)
    started = time.monotonic()
    with session_scope(url) as session:
        job_ids = [enqueue(session, "test.echo", {"i": i}) for i in range(100)]

    def all_done() -> bool:
        with session_scope(url) as session:
            statuses = session.scalars(select(Job.status).where(Job.id.in_(job_ids))).all()
        return len(statuses) == 100 and all(s == JobStatus.SUCCEEDED for s in statuses)

    wait_for(all_done, 30, "100 jobs to succeed")
    elapsed = time.monotonic() - started
    print(f"100 jobs in {elapsed:.2f}s ({databases.backend()}, 2 task slots)")
    assert elapsed < 10


# --- leases, directly -----------------------------------------------------------------


def test_claim_is_exclusive_and_counts_attempts(tables: str) -> None:
    job_id = queued_row(tables)
    with session_scope(tables) as session:
        row = claim(session, Job, job_id, "owner-a", lease_seconds=30)
        assert row is not None
        assert (row.status, row.lease_owner, row.attempts) == ("RUNNING", "owner-a", 1)
        assert row.lease_expires_at is not None
    with session_scope(tables) as session:
        assert claim(session, Job, job_id, "owner-b", lease_seconds=30) is None
    assert load_job(tables, job_id).lease_owner == "owner-a"


def test_renew_and_complete_belong_to_the_lease_owner(tables: str) -> None:
    job_id = queued_row(tables)
    with session_scope(tables) as session:
        first = claim(session, Job, job_id, "owner-a", lease_seconds=5)
        assert first is not None
        first_expiry = first.lease_expires_at
        assert first_expiry is not None

    with session_scope(tables) as session:
        assert renew(session, Job, job_id, "owner-b", lease_seconds=60) is False
        assert complete(session, Job, job_id, "owner-b", JobStatus.SUCCEEDED) is False
    job = load_job(tables, job_id)
    assert (job.status, job.lease_expires_at) == (JobStatus.RUNNING, first_expiry)

    with session_scope(tables) as session:
        assert renew(session, Job, job_id, "owner-a", lease_seconds=60) is True
    renewed = load_job(tables, job_id).lease_expires_at
    assert renewed is not None and renewed > first_expiry

    with session_scope(tables) as session:
        assert complete(session, Job, job_id, "owner-a", JobStatus.FAILED, "gave up") is True
        # Once released, the lease cannot be renewed or completed again.
        assert renew(session, Job, job_id, "owner-a", lease_seconds=60) is False
        assert complete(session, Job, job_id, "owner-a", JobStatus.SUCCEEDED) is False
    job = load_job(tables, job_id)
    assert (job.status, job.last_error, job.lease_owner) == (JobStatus.FAILED, "gave up", None)


def test_expired_lease_can_be_taken_over_and_the_old_owner_is_locked_out(tables: str) -> None:
    job_id = queued_row(tables)
    start = dt.datetime.now(dt.UTC)
    with session_scope(tables) as session:
        assert claim(session, Job, job_id, "owner-a", lease_seconds=1, now=start) is not None
    with session_scope(tables) as session:
        # Not expired yet: no take-over.
        assert claim(session, Job, job_id, "owner-b", 30, take_expired=True, now=start) is None
    with session_scope(tables) as session:
        later = start + dt.timedelta(seconds=2)
        taken = claim(session, Job, job_id, "owner-b", 30, take_expired=True, now=later)
        assert taken is not None and taken.attempts == 2

    with session_scope(tables) as session:
        assert renew(session, Job, job_id, "owner-a", lease_seconds=30) is False
        assert complete(session, Job, job_id, "owner-a", JobStatus.SUCCEEDED) is False
    assert load_job(tables, job_id).lease_owner == "owner-b"


def test_claim_next_takes_the_longest_waiting_row(tables: str) -> None:
    base = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    ids = [queued_row(tables) for _ in range(3)]
    with session_scope(tables) as session:
        for offset, job_id in zip((2, 0, 1), ids, strict=True):
            session.get(Job, job_id).updated_at = base + dt.timedelta(seconds=offset)  # type: ignore[union-attr]

    claimed = []
    for _ in range(4):
        with session_scope(tables) as session:
            row = claim_next(session, Job, "owner", lease_seconds=30)
            claimed.append(row.id if row else None)
    assert claimed == [ids[1], ids[2], ids[0], None]


def test_concurrent_claim_next_hands_each_row_to_exactly_one_claimer(tables: str) -> None:
    ids = {queued_row(tables) for _ in range(40)}
    claims: dict[str, list[str]] = {}
    sessions = get_sessionmaker(tables)
    barrier = threading.Barrier(4)

    def claimer(name: str) -> None:
        mine = claims.setdefault(name, [])
        barrier.wait()
        while True:
            with sessions.begin() as session:
                row = claim_next(session, Job, name, lease_seconds=30)
                if row is None:
                    return
                mine.append(row.id)

    threads = [threading.Thread(target=claimer, args=(f"claimer-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    everything = [job_id for rows in claims.values() for job_id in rows]
    assert sorted(everything) == sorted(ids)  # all claimed, none twice
    with session_scope(tables) as session:
        owners = dict(session.execute(select(Job.id, Job.lease_owner)).tuples().all())
    for name, rows in claims.items():
        assert all(owners[job_id] == name for job_id in rows)


def test_reaper_requeues_or_fails_expired_leases_and_re_rings_stale_jobs(tables: str) -> None:
    now = dt.datetime.now(dt.UTC)
    retry_id = queued_row(tables, max_attempts=3)
    last_try_id = queued_row(tables, max_attempts=1)
    live_id = queued_row(tables, max_attempts=1)
    waiting_id = queued_row(tables)
    with session_scope(tables) as session:
        for job_id in (retry_id, last_try_id):
            assert claim(session, Job, job_id, "dead-worker", lease_seconds=1, now=now)
        assert claim(session, Job, live_id, "live-worker", lease_seconds=600, now=now)

    app = create_celery(Settings(database_url=tables, broker_url=databases.broker_url(REDIS_DB)))
    later = now + dt.timedelta(seconds=120)
    counts = reap_expired(get_sessionmaker(tables), now=later, app=app, redispatch_after=60)

    assert (counts.requeued, counts.failed, counts.redispatched) == (1, 1, 1)
    retry = load_job(tables, retry_id)
    assert (retry.status, retry.lease_owner, retry.attempts) == (JobStatus.QUEUED, None, 1)
    assert retry.last_error == f"{WORKER_LOST} (attempt 1)"
    last_try = load_job(tables, last_try_id)
    assert (last_try.status, last_try.last_error) == (JobStatus.FAILED, WORKER_LOST)
    assert load_job(tables, live_id).lease_owner == "live-worker"
    assert load_job(tables, waiting_id).updated_at == later

    # The requeued job (rung again just now) is not re-rung as stale a second later.
    again = reap_expired(get_sessionmaker(tables), now=later + dt.timedelta(seconds=1), app=app)
    assert (again.requeued, again.failed, again.redispatched) == (0, 0, 0)
