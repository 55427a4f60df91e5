"""The Celery application: a doorbell that tells workers which row to look at.

No result backend: a job's outcome lives in its row. Messages are acknowledged only
after the task ran (acks_late) and one at a time (prefetch 1), so a worker that dies
holds back as little as possible; the lease reaper covers the rest.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from celery import Celery
from celery.signals import worker_init

from forgeline.core import manifest
from forgeline.core.settings import Settings, get_settings

logger = logging.getLogger(__name__)

# Modules every worker imports to register its tasks and job kinds: the core's own, then
# those each service's manifest declares.
CORE_TASK_MODULES: list[str] = [
    "forgeline.core.work.jobs",
    "forgeline.core.work.reaper",
    # Webhook deliveries: any service with triggers queues them.
    "forgeline.core.webhooks",
]

RUN_JOB_TASK = "forgeline.run_job"
REAP_TASK = "forgeline.reap_expired"


class ForgelineCelery(Celery):
    """A Celery app that remembers the settings (database, lease length) it was built from."""

    forgeline_settings: Settings


def task_modules(settings: Settings | None = None) -> list[str]:
    extra = (settings or get_settings()).extra_task_modules
    names = CORE_TASK_MODULES + manifest.task_modules()
    names += [name.strip() for name in extra.split(",") if name.strip()]
    return list(dict.fromkeys(names))


@worker_init.connect
def _subscribe_listeners(**_: Any) -> None:
    # A worker ends builds and changes repositories too: it needs the same listeners as
    # a server process (lifecycle.start subscribes them there).
    manifest.subscribe_listeners()


def _transport_options(broker_url: str) -> dict[str, Any]:
    if broker_url.startswith("memory://"):
        # kombu's in-memory transport polls; its default of about once a second
        # would add up to a second of latency to every job.
        return {"polling_interval": 0.005}
    return {}


def create_celery(settings: Settings) -> ForgelineCelery:
    app = ForgelineCelery("forgeline", include=task_modules(settings), set_as_current=False)
    app.forgeline_settings = settings
    app.conf.update(
        broker_url=settings.broker_url,
        broker_transport_options=_transport_options(settings.broker_url),
        broker_connection_retry_on_startup=True,
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.broker_queue,
        task_serializer="json",
        accept_content=["json"],
        enable_utc=True,
        timezone="UTC",
        worker_hijack_root_logger=False,
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
        beat_schedule={
            "reap-expired-leases": {
                "task": REAP_TASK,
                "schedule": settings.reap_interval_seconds,
                # Without a worker, stale reap requests must not pile up in the queue.
                "options": {"expires": max(settings.reap_interval_seconds * 2, 1.0)},
            }
        },
    )
    return app


def settings_of(app: Celery) -> Settings:
    return getattr(app, "forgeline_settings", None) or get_settings()


app = create_celery(get_settings())
# Celery's thread pool runs tasks with the process's default app.
app.set_default()

# The app this process rings doorbells on: `app` unless an embedded worker or a test
# installed one built from other settings.
_active: Celery = app


def active_app() -> Celery:
    return _active


def activate(new_app: Celery) -> Celery:
    """Make `new_app` the one `enqueue` uses by default; returns the previous one."""
    global _active
    previous, _active = _active, new_app
    return previous


def install(worker_app: Celery) -> Celery:
    """Make `worker_app` both Celery's default app (which pool threads run tasks with)
    and the active one; returns the previously active app."""
    worker_app.set_default()
    return activate(worker_app)


def app_for(settings: Settings) -> ForgelineCelery:
    """The module app when `settings` are this process's own, else a new app."""
    return app if settings == get_settings() else create_celery(settings)


def run_worker(settings: Settings | None = None, concurrency: int | None = None) -> None:
    """Run a worker in the foreground until it is stopped (`forgeline worker`)."""
    settings = settings or get_settings()
    worker_app = app_for(settings)
    install(worker_app)
    worker = worker_app.Worker(
        # Threads, not forked processes: jobs mostly wait on containers, git and the
        # network, and the embedded worker runs the same pool.
        pool="threads",
        concurrency=concurrency or settings.worker_concurrency,
        hostname=f"forgeline-{os.getpid()}@{socket.gethostname()}",
        loglevel=settings.log_level,
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
    )
    worker.start()
    if worker.exitcode:
        raise SystemExit(worker.exitcode)


def run_beat(settings: Settings | None = None) -> None:
    """Run the periodic scheduler (the lease reaper) in the foreground (`forgeline beat`)."""
    settings = settings or get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    beat_app = app_for(settings)
    beat_app.Beat(loglevel=settings.log_level).run()
