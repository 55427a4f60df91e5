"""Job kinds the work-layer tests run; workers load them via FORGELINE_EXTRA_TASK_MODULES.

Side effects go to a file named in the payload, so they are visible across processes
and survive a killed worker.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from forgeline.core.work.jobs import Heartbeat, RetryableJobError, job_kind


def _record(path: str, line: str) -> None:
    with Path(path).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def recorded_lines(path: str | Path) -> list[str]:
    path = Path(path)
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@job_kind("test.echo")
def echo(payload: dict[str, Any], heartbeat: Heartbeat) -> dict[str, Any]:
    return {"echo": payload, "attempt": heartbeat.attempt}


@job_kind("test.fail")
def fail(payload: dict[str, Any], heartbeat: Heartbeat) -> None:
    raise RuntimeError(payload.get("message", "boom"))


@job_kind("test.count")
def count(payload: dict[str, Any], heartbeat: Heartbeat) -> int:
    """Records one line per run, then takes a while so duplicates overlap the run."""
    _record(payload["path"], f"run {heartbeat.attempt}")
    time.sleep(payload.get("seconds", 0))
    return len(recorded_lines(payload["path"]))


@job_kind("test.flaky")
def flaky(payload: dict[str, Any], heartbeat: Heartbeat) -> int:
    if heartbeat.attempt < payload["succeed_on_attempt"]:
        raise RetryableJobError(f"not yet (attempt {heartbeat.attempt})")
    return heartbeat.attempt


@job_kind("test.not_json")
def not_json(payload: dict[str, Any], heartbeat: Heartbeat) -> object:
    return object()


@job_kind("test.slow")
def slow(payload: dict[str, Any], heartbeat: Heartbeat) -> dict[str, int]:
    """Records `attempt:step` before each step, so a test sees how far each attempt got."""
    steps = payload.get("steps", 3)
    for step in range(steps):
        _record(payload["path"], f"{heartbeat.attempt}:{step}")
        heartbeat()
        time.sleep(payload.get("step_seconds", 1.0))
    return {"steps": steps, "attempt": heartbeat.attempt}
