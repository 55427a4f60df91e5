"""A watcher thread beside a worker: a step called every interval until the worker stops.

Services use it for work that is due by the clock rather than by a message (deployment
and pipeline timers, sources that poll). A step that fails is logged and tried again the
next interval; one watcher per process, started and stopped by the manifests' worker
hooks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class PeriodicWatch:
    def __init__(self, name: str, interval_seconds: float, step: Callable[[], None]) -> None:
        self.name = name
        self.interval_seconds = interval_seconds
        self._step = step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            try:
                self._step()
            except Exception:
                logger.exception("%s failed; retrying next interval", self.name)


class WatchSlot:
    """At most one running watch per process: starting twice starts one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watch: PeriodicWatch | None = None

    def start(self, make: Callable[[], PeriodicWatch]) -> None:
        with self._lock:
            if self._watch is None:
                self._watch = make()
                self._watch.start()

    def stop(self) -> None:
        with self._lock:
            if self._watch is not None:
                self._watch.stop()
                self._watch = None
