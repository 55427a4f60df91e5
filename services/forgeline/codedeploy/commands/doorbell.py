"""Wakes the PollHostCommand calls waiting for a host when a command of it becomes ready.

Only a doorbell: the host_commands table is the truth, and a woken poll looks there. A
ring carries a number derived from the host's identity (account, region, host identifier)
on a fan-out channel of its own (core/events/fanout.py: in-process, or Redis pub/sub between
processes), so it wakes the polls of that host only, not every agent nor the event readers.
A lost ring costs a delay, never a command: waiting polls also look every few seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator

from forgeline.core.events.fanout import Fanout, get_fanout
from forgeline.core.settings import Settings, get_settings

CHANNEL = "forgeline:codedeploy-commands"


def host_key(account_id: str, region: str, host_identifier: str) -> int:
    """A positive 63-bit number naming one host (a fan-out message is an integer)."""
    digest = hashlib.sha256(f"{account_id}\0{region}\0{host_identifier}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class HostDoorbell:
    """Waiters listen for their host's key; a ring through the fan-out wakes them."""

    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout
        self._lock = threading.Lock()
        self._waiters: dict[int, set[threading.Event]] = {}
        fanout.subscribe(self._wake)

    def ring(self, key: int) -> None:
        """Tell every process's waiters of this host to look (call after the commit)."""
        self.fanout.notify(key)

    @contextlib.contextmanager
    def listening(self, key: int) -> Iterator[threading.Event]:
        """An event set by the next ring for `key`. Enter it before looking at the table,
        so a ring landing between the look and the wait is not slept through."""
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                waiting = self._waiters.get(key)
                if waiting is not None:
                    waiting.discard(event)
                    if not waiting:
                        del self._waiters[key]

    def _wake(self, key: int) -> None:
        with self._lock:
            events = list(self._waiters.get(key, ()))
        for event in events:
            event.set()

    def wake_everyone(self) -> None:
        with self._lock:
            events = [event for waiting in self._waiters.values() for event in waiting]
        for event in events:
            event.set()


_lock = threading.Lock()
_doorbells: dict[int, HostDoorbell] = {}


# Set once this process's server begins to stop: waiting polls answer at once.
_stopping = threading.Event()


def stopping() -> bool:
    return _stopping.is_set()


def wake_everyone() -> None:
    """The manifest's on_server_stopping: end every wait of this process now."""
    _stopping.set()
    with _lock:
        doorbells = list(_doorbells.values())
    for doorbell in doorbells:
        doorbell.wake_everyone()


def get_doorbell(settings: Settings | None = None) -> HostDoorbell:
    """The process-wide doorbell on the configured fan-out (remade if it was closed)."""
    fanout = get_fanout(settings or get_settings(), CHANNEL)
    with _lock:
        doorbell = _doorbells.get(id(fanout))
        if doorbell is None or doorbell.fanout is not fanout:
            doorbell = HostDoorbell(fanout)
            _doorbells[id(fanout)] = doorbell
        return doorbell
