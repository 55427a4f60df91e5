"""Build scheduling: which queued build runs next, and where.

Each worker process has a fixed number of build slots (`build_slots`). The doorbell task
claims the longest-waiting queued builds (FIFO by queue time) while slots are free, honouring
each project's concurrentBuildLimit, and runs each in a slot thread under a renewed lease.
When a build ends its slot claims the next one, so a queue drains without further doorbells.

A build claimed a second time after its worker vanished is not run again if it had already
started: it ends FAILED with a context saying the worker was lost (and its container is
removed). One that had not started simply runs.

Each slot composes the build's engine (engine.py) from this process's runner, the
workspace steps and the database reporter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from forgeline.codebuild import builds, scheduler_doorbell
from forgeline.codebuild.build_reporter import DatabaseReporter
from forgeline.codebuild.build_steps import BuildSnapshot, WorkspaceSteps, build_deadline
from forgeline.codebuild.engine import BuildRun
from forgeline.codebuild.phases import FAILED, QUEUED, TIMED_OUT, PhaseContext, phase_from_json
from forgeline.codebuild.runners import choose_runner
from forgeline.codebuild.runners.select import close_runners
from forgeline.codebuild.tables.builds import Build
from forgeline.core.db import get_sessionmaker, is_postgres, utcnow
from forgeline.core.settings import Settings, builds_root, get_settings
from forgeline.core.work import celery_app
from forgeline.core.work.jobs import Heartbeat
from forgeline.core.work.leases import QUEUED as LEASE_QUEUED
from forgeline.core.work.leases import RUNNING as LEASE_RUNNING
from forgeline.core.work.leases import SUCCEEDED as LEASE_DONE
from forgeline.core.work.leases import claim, complete, new_owner
from forgeline.core.work.reaper import Reapable, reap_expired, register_reapable

logger = logging.getLogger(__name__)

# How often a worker looks for containers of builds that ended without their worker.
ORPHAN_SWEEP_SECONDS = 30.0
# How often a worker with a free build slot looks at the queue besides its doorbells.
QUEUE_POLL_SECONDS = 0.5
# The smallest queuedTimeoutInMinutes CodeBuild accepts.
MIN_QUEUED_TIMEOUT_MINUTES = 5
WORKER_LOST_MESSAGE = (
    "Build worker lost: the worker running this build stopped answering before the build "
    "ended (lease expired)."
)


def end_lost_build(session: Session, build: Build) -> None:
    """End a build whose worker vanished (a second claim found it started, or the reaper
    gave up on it, in the reaper's transaction)."""
    if not build.build_complete:
        builds.end_without_runner(
            session, build, FAILED, utcnow(), PhaseContext("BUILD_WORKER_LOST", WORKER_LOST_MESSAGE)
        )


register_reapable(
    Reapable(Build, scheduler_doorbell.ring, on_failed=end_lost_build)  # type: ignore[arg-type]
)


# Claims of queued builds are serialized on Postgres: a claim counts its project's running
# builds, and two dispatchers claiming at once would each count without the other's
# uncommitted claim and start more builds than concurrentBuildLimit allows. SQLite's
# BEGIN IMMEDIATE already lets one writer in at a time.
CLAIM_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"forgeline.codebuild.claim").digest()[:8], "big", signed=True
)


def _claim_next(session: Session, owner: str, lease_seconds: float) -> Build | None:
    """Claim the longest-waiting queued build whose project has a free concurrency slot."""
    if is_postgres(session):
        session.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK_KEY)))
    running = aliased(Build)
    running_count = (
        select(func.count())
        .select_from(running)
        .where(
            running.account_id == Build.account_id,
            running.region == Build.region,
            running.project_name == Build.project_name,
            running.status == LEASE_RUNNING,
        )
        .scalar_subquery()
    )
    candidate = session.scalars(
        select(Build.id)
        .where(
            Build.status == LEASE_QUEUED,
            or_(Build.concurrency_limit.is_(None), running_count < Build.concurrency_limit),
        )
        .order_by(Build.queued_at, Build.build_number)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if candidate is None:
        return None
    return claim(session, Build, candidate, owner, lease_seconds)


def _expire_queued(session: Session, settings: Settings, now: dt.datetime) -> None:
    """Builds that waited longer than their queuedTimeoutInMinutes end TIMED_OUT.

    Rows are read without locks and each expired one is taken with a conditional UPDATE,
    so this never hides queued builds from a concurrent claim.
    """
    shortest = dt.timedelta(seconds=MIN_QUEUED_TIMEOUT_MINUTES * settings.build_minute_seconds)
    waiting = session.execute(
        select(Build.id, Build.queued_at, Build.document).where(
            Build.status == LEASE_QUEUED,
            Build.current_phase == QUEUED,
            Build.queued_at <= now - shortest,
        )
    ).all()
    for build_id, queued_at, document in waiting:
        minutes = document.get("queuedTimeoutInMinutes", 480)
        deadline = queued_at + dt.timedelta(seconds=minutes * settings.build_minute_seconds)
        if now < deadline:
            continue
        build = claim(session, Build, build_id, "queued-timeout", 0.0, to_status=LEASE_DONE)
        if build is None:
            continue  # claimed by a worker in the meantime
        builds.end_without_runner(
            session,
            build,
            TIMED_OUT,
            now,
            PhaseContext(
                "BUILD_TIMED_OUT", f"Build has timed out in the queue after {minutes} minutes."
            ),
        )


class BuildSlots:
    """The build slots of this worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.capacity = settings.build_slots
        self._busy = 0
        self._lock = threading.Lock()
        self._runs: dict[str, BuildRun] = {}  # build id -> its run, while it runs
        self._threads: list[threading.Thread] = []
        self._closing = False
        self._watching = False

    @property
    def busy(self) -> int:
        return self._busy

    def _reserve(self) -> bool:
        with self._lock:
            if self._closing or self._busy >= self.capacity:
                return False
            self._busy += 1
            return True

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1

    def dispatch(self) -> int:
        """Start as many queued builds as there are free slots; returns how many started."""
        sessions = get_sessionmaker(self.settings.resolved_database_url)
        with sessions.begin() as session:
            _expire_queued(session, self.settings, utcnow())
        started = 0
        while self._reserve():
            owner = new_owner()
            try:
                with sessions.begin() as session:
                    build = _claim_next(session, owner, self.settings.lease_seconds)
                    claimed = None if build is None else (build.id, build.attempts)
            except Exception:
                self._release()
                raise
            if claimed is None:
                self._release()
                break
            thread = threading.Thread(
                target=self._run,
                args=(claimed[0], owner, claimed[1]),
                name=f"build-{claimed[0][-8:]}",
                daemon=True,
            )
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
            started += 1
        return started

    def watch_queue(self, interval: float = QUEUE_POLL_SECONDS) -> None:
        """Look at the queue every `interval` while a slot is free, in a daemon thread.

        Doorbells are the fast path; a broker can deliver one late (Redis consumers have
        been seen a second or more behind) or lose it, and a free slot should not wait
        for the reaper's re-ring.
        """
        with self._lock:
            if self._watching:
                return
            self._watching = True
        threading.Thread(
            target=self._watch_queue, args=(interval,), name="build-queue-watch", daemon=True
        ).start()

    def _watch_queue(self, interval: float) -> None:
        sessions = get_sessionmaker(self.settings.resolved_database_url)
        next_sweep = time.monotonic() + ORPHAN_SWEEP_SECONDS
        while not self._closing:
            time.sleep(interval)
            if self._closing:
                return
            try:
                self._look_at_queue(sessions)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + ORPHAN_SWEEP_SECONDS
                    self._sweep_orphan_containers(sessions)
            except Exception:
                logger.warning("could not look at the build queue", exc_info=True)

    def _sweep_orphan_containers(self, sessions: Any) -> None:
        """Remove containers of builds that ended elsewhere (their worker died, the reaper
        ended them). Containers of builds this database does not know are left alone:
        another deployment may share the Docker engine."""
        runner = choose_runner(self.settings)
        candidates = runner.container_build_ids()
        if not candidates:
            return
        with sessions() as session:
            ended = session.scalars(
                select(Build.id).where(Build.id.in_(candidates), Build.build_complete.is_(True))
            ).all()
        for build_id in ended:
            if build_id not in self._runs:
                runner.remove_build_container(build_id)

    def _look_at_queue(self, sessions: Any) -> None:
        with sessions() as session:
            # A build whose worker vanished: the reaper's periodic run would find it too,
            # but a reap request can expire in a slow broker before a worker takes it.
            lost = session.scalar(
                select(Build.id)
                .where(Build.status == LEASE_RUNNING, Build.lease_expires_at < utcnow())
                .limit(1)
            )
            waiting = None
            if self._busy < self.capacity:
                waiting = session.scalar(
                    select(Build.id).where(Build.status == LEASE_QUEUED).limit(1)
                )
        if lost is not None:
            reap_expired(sessions, app=celery_app.active_app(), redispatch_after=None)
        if waiting is not None or lost is not None:
            self.dispatch()

    def shutdown(self, timeout: float = 15.0) -> None:
        """Take no more builds; end the running ones (FAULT, saying why) and wait for them."""
        with self._lock:
            self._closing = True
            runs = list(self._runs.values())
            threads = list(self._threads)
        for run in runs:
            run.abort("The worker running this build shut down before the build ended.")
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, build_id: str, owner: str, attempt: int) -> None:
        sessions = get_sessionmaker(self.settings.resolved_database_url)
        heartbeat = Heartbeat(
            sessions, build_id, owner, self.settings.lease_seconds, attempt, model=Build
        )
        heartbeat.start()
        try:
            run = compose_run(self.settings, build_id, lambda: heartbeat.lost)
            if run is not None:
                with self._lock:
                    self._runs[build_id] = run
                run.run()
        except Exception:
            logger.exception("build %s failed in the engine", build_id)
            with sessions.begin() as session:
                build = session.get(Build, build_id)
                if build is not None and not build.build_complete:
                    builds.end_without_runner(
                        session,
                        build,
                        "FAULT",
                        utcnow(),
                        PhaseContext(
                            "CLIENT_ERROR",
                            "Forgeline could not run this build: an internal error ended it.",
                        ),
                    )
        finally:
            with self._lock:
                self._runs.pop(build_id, None)
            heartbeat.stop()
            with sessions.begin() as session:
                complete(session, Build, build_id, owner, LEASE_DONE)
            self._release()
        try:
            self.dispatch()  # the freed slot takes the next queued build
        except Exception:
            logger.exception("could not dispatch the next build")


def compose_run(
    settings: Settings, build_id: str, lease_lost: Callable[[], bool]
) -> BuildRun | None:
    """The engine for a claimed build: this process's runner, the workspace steps and the
    database reporter. None when there is nothing to run: the build already ended, or a
    previous claim started it (it then ends FAILED here, and what it left is removed)."""
    sessions = get_sessionmaker(settings.resolved_database_url)
    runner = choose_runner(settings)
    with sessions.begin() as session:
        build = session.get(Build, build_id)
        if build is None or build.build_complete:
            return None
        if lost_before(build):
            end_lost_build(session, build)
            runner.remove_build_container(build_id)
            shutil.rmtree(builds_root(settings) / build.uuid, ignore_errors=True)
            return None
        snapshot = BuildSnapshot(build)
        phases = [phase_from_json(data) for data in build.phases]
    return BuildRun(
        build_id,
        phases,
        WorkspaceSteps(settings, snapshot, sessions),
        runner,
        DatabaseReporter(sessions, build_id),
        deadline=build_deadline(settings, snapshot),
        lease_lost=lease_lost,
    )


_slots: dict[str, BuildSlots] = {}
_slots_lock = threading.Lock()


def slots_for(settings: Settings) -> BuildSlots:
    key = settings.resolved_database_url
    with _slots_lock:
        if key not in _slots:
            _slots[key] = BuildSlots(settings)
        return _slots[key]


def running_here(settings: Settings) -> int:
    return slots_for(settings).busy


def shutdown_all(timeout: float = 15.0) -> None:
    with _slots_lock:
        slots = list(_slots.values())
    for entry in slots:
        entry.shutdown(timeout)
    close_runners()


def start_watching(settings: Settings) -> None:
    """Have this process's build slots watch the queue (a worker calls it when it starts)."""
    slots_for(settings).watch_queue()


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)
    start_watching(celery_app.settings_of(app) if app is not None else get_settings())


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    shutdown_all()


@shared_task(name=scheduler_doorbell.DISPATCH_TASK, bind=True, ignore_result=True)
def dispatch_task(self: Any) -> int:
    return slots_for(celery_app.settings_of(self.app)).dispatch()


def lost_before(build: Build) -> bool:
    """True when a previous claim already started this build (it must not run twice)."""
    return build.attempts > 1 and build.current_phase != QUEUED
