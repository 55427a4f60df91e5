"""A build's limits as the steps check them: the build directory's disk use, and the
memory and process limits of its container.

Docker cannot cap a bind mount's size, so the directory is measured (`directory_bytes`)
and the engine fails a build that goes past FORGELINE_BUILD_DISK_LIMIT_BYTES. Memory
and process limits are the container's (its cgroup); whether the build hit one is read
from the cgroup's own counters (`oom_kill`, and `max` for forks refused at the process
limit) by a wrapper around each phase command (`counting_argv`), using only shell
builtins so it still works when no process can be started. The counters are compared
after each phase (`limit_failure`), so the phase that hit a limit fails saying so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

DISK_LIMIT_EXCEEDED = "BUILD_DISK_LIMIT_EXCEEDED"
OUT_OF_MEMORY = "BUILD_OUT_OF_MEMORY"
PROCESS_LIMIT_EXCEEDED = "BUILD_PROCESS_LIMIT_EXCEEDED"

DISK_SETTING = "FORGELINE_BUILD_DISK_LIMIT_BYTES"
PIDS_SETTING = "FORGELINE_BUILD_PIDS_LIMIT"

# Where a container sees its own cgroup's counters (cgroup v2, then v1), and the one
# counter read from each: processes the OOM killer ended, forks refused at pids.max.
# (memory.events has a `max` line too, counting memory pressure: it is not read.)
OOM_KILLS = "oom_kill"
FORKS_REFUSED = "max"
_COUNTERS = {
    "/sys/fs/cgroup/memory.events": OOM_KILLS,
    "/sys/fs/cgroup/memory/memory.oom_control": OOM_KILLS,
    "/sys/fs/cgroup/pids.events": FORKS_REFUSED,
    "/sys/fs/cgroup/pids/pids.events": FORKS_REFUSED,
}

# Runs the phase command, then copies the counters to the file named by $1. Builtins only
# (read, echo, test): after a fork bomb there may be no process left to start.
_COUNTING_SCRIPT = (
    'counters=$1; shift; "$@"; status=$?; '
    f"for file in {' '.join(_COUNTERS)}; do "
    '[ -r "$file" ] || continue; '
    'while read -r key value; do echo "$file $key $value"; done < "$file"; '
    'done > "$counters" 2>/dev/null; '
    "exit $status"
)


# ---------------------------------------------------------------- disk


def directory_bytes(root: Path) -> int:
    """Bytes of disk the tree under ROOT occupies (allocated blocks; links not followed,
    a file with several hard links counted once). Entries that vanish meanwhile or cannot
    be read are left out."""
    total = 0
    seen: set[tuple[int, int]] = set()
    pending = [str(root)]
    while pending:
        directory = pending.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    pending.append(entry.path)
                elif info.st_nlink > 1:
                    key = (info.st_dev, info.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                total += info.st_blocks * 512
    return total


def disk_message(used: int, limit: int) -> str:
    return (
        f"The build directory (sources, outputs and cache) exceeded {limit} bytes: it held "
        f"{used} bytes. This server caps it with {DISK_SETTING}."
    )


# ---------------------------------------------------------------- memory and processes


def counting_argv(argv: Sequence[str], counters_path: str) -> list[str]:
    """ARGV wrapped so that, once it exits, the container's limit counters are written to
    COUNTERS_PATH (a path as the command sees it); the exit status is ARGV's."""
    return ["sh", "-c", _COUNTING_SCRIPT, "forgeline-limits", counters_path, *argv]


def read_counters(path: Path) -> dict[str, int]:
    """The counters a wrapped command wrote (empty when it wrote none)."""
    try:
        return parse_counters(path.read_text(errors="replace"))
    except OSError:
        return {}


def parse_counters(text: str) -> dict[str, int]:
    """The counters that matter among the wrapper's `<file> <key> <value>` lines."""
    counters: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        path, key, value = parts
        if _COUNTERS.get(path) == key:
            counters[key] = counters.get(key, 0) + int(value)
    return counters


def limit_failure(
    before: Mapping[str, int],
    after: Mapping[str, int],
    *,
    memory_bytes: int | None,
    compute_type: str,
    pids_limit: int,
) -> tuple[str, str] | None:
    """(code, message) when the counters grew from BEFORE to AFTER: a process was killed
    for want of memory, or a fork was refused at the process limit."""
    if after.get(OOM_KILLS, 0) > before.get(OOM_KILLS, 0):
        size = f" of {memory_bytes} bytes" if memory_bytes else ""
        return OUT_OF_MEMORY, (
            f"The build ran out of memory: the kernel's out-of-memory killer ended a process "
            f"at the container's memory limit{size} (computeType {compute_type}). Use a "
            "larger computeType, or make the build use less memory."
        )
    if after.get(FORKS_REFUSED, 0) > before.get(FORKS_REFUSED, 0):
        limit = f"{pids_limit} processes" if pids_limit > 0 else "its process limit"
        return PROCESS_LIMIT_EXCEEDED, (
            f"The build reached its limit of {limit} running at once, and starting more "
            f"failed (a fork bomb ends here). This server sets the limit with {PIDS_SETTING}."
        )
    return None


def unenforced_note(not_enforced: Sequence[str]) -> str | None:
    """The build log's line saying which limits the runner cannot hold the build to."""
    if not not_enforced:
        return None
    return (
        f"This runner does not enforce {', '.join(not_enforced)}; only the build timeout and "
        f"the build directory's disk cap ({DISK_SETTING}) hold here."
    )
