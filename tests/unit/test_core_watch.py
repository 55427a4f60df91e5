"""The watcher beside a worker: its step runs every interval, survives a failing step,
and a slot runs one watch however often it is started."""

from __future__ import annotations

import threading

from forgeline.core.work.watch import PeriodicWatch, WatchSlot


def test_a_failing_step_does_not_end_the_watch() -> None:
    calls: list[int] = []
    enough = threading.Event()

    def step() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first step fails")
        if len(calls) >= 3:
            enough.set()

    watch = PeriodicWatch("test-watch", 0.01, step)
    watch.start()
    assert enough.wait(5)
    watch.stop()
    settled = len(calls)
    assert settled >= 3
    assert not watch._thread.is_alive()


def test_a_slot_starts_one_watch() -> None:
    made: list[PeriodicWatch] = []

    def make() -> PeriodicWatch:
        made.append(PeriodicWatch("slot-watch", 60, lambda: None))
        return made[-1]

    slot = WatchSlot()
    slot.start(make)
    slot.start(make)
    assert len(made) == 1
    slot.stop()
    slot.start(make)
    assert len(made) == 2
    slot.stop()
