"""The worker and the lease reaper as threads of the one-process embedded server."""

from __future__ import annotations

import logging
import os
import socket
import threading

from celery import Celery

from forgeline.core.db import get_sessionmaker
from forgeline.core.settings import Settings
from forgeline.core.work import celery_app
from forgeline.core.work.reaper import reap_expired, redispatch_after

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 30.0


class EmbeddedWorker:
    """Handle on a running embedded worker; `stop()` shuts it down gracefully."""

    def __init__(self, app: Celery, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._controller = app.WorkController(
            pool="threads",
            concurrency=settings.worker_concurrency,
            hostname=f"forgeline-embedded-{os.getpid()}@{socket.gethostname()}",
            loglevel=settings.log_level,
            ready_callback=lambda _consumer: self._ready.set(),
            without_mingle=True,
            without_gossip=True,
            without_heartbeat=True,
        )
        self._worker_thread = threading.Thread(
            target=self._controller.start, name="forgeline-worker", daemon=True
        )
        self._reaper_thread = threading.Thread(
            target=self._reap_forever, name="forgeline-reaper", daemon=True
        )
        self._previous_app: Celery | None = None

    def start(self) -> None:
        self._previous_app = celery_app.install(self.app)
        self._worker_thread.start()
        if not self._ready.wait(READY_TIMEOUT_SECONDS):
            self.stop()
            raise RuntimeError("the embedded worker did not start consuming in time")
        self._reaper_thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop reaping, let running jobs finish, then stop consuming."""
        self._stopping.set()
        if self._reaper_thread.is_alive():
            self._reaper_thread.join(timeout)
        if self._worker_thread.is_alive():
            self._controller.stop(in_sighandler=False)
            self._worker_thread.join(timeout)
        if self._previous_app is not None:
            celery_app.install(self._previous_app)
            self._previous_app = None

    def _reap_forever(self) -> None:
        sessions = get_sessionmaker(self.settings.resolved_database_url)
        wait_limit = redispatch_after(self.settings)
        while not self._stopping.wait(self.settings.reap_interval_seconds):
            try:
                reap_expired(sessions, app=self.app, redispatch_after=wait_limit)
            except Exception:
                logger.exception("the lease reaper failed; retrying next interval")


def start_embedded_worker(settings: Settings) -> EmbeddedWorker:
    """Start a threaded Celery worker and the reaper in this process, on `settings`."""
    handle = EmbeddedWorker(celery_app.app_for(settings), settings)
    handle.start()
    return handle
