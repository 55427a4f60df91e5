"""The build limits the steps check (the build directory's disk cap, the container's memory
and process counters) and who may run privileged builds, without disk or processes."""

from __future__ import annotations

import pytest

from forgeline.codebuild import build_limits, privileges
from forgeline.codebuild.generated import errors


def test_disk_message_names_the_limit_and_the_setting() -> None:
    message = build_limits.disk_message(20_000_000, 5_000_000)
    assert "exceeded 5000000 bytes" in message
    assert "FORGELINE_BUILD_DISK_LIMIT_BYTES" in message


def test_parse_counters_takes_cgroup_v1_and_v2_lines() -> None:
    v1 = (
        "/sys/fs/cgroup/memory/memory.oom_control oom_kill_disable 0\n"
        "/sys/fs/cgroup/memory/memory.oom_control oom_kill 2\n"
        "/sys/fs/cgroup/pids/pids.events max 7\n"
    )
    assert build_limits.parse_counters(v1) == {"oom_kill": 2, "max": 7}
    # cgroup v2's memory.events counts memory pressure as `max`: not refused forks.
    v2 = (
        "/sys/fs/cgroup/memory.events max 40\n"
        "/sys/fs/cgroup/memory.events oom_kill 1\n"
        "/sys/fs/cgroup/pids.events max 0\n"
    )
    assert build_limits.parse_counters(v2) == {"oom_kill": 1, "max": 0}
    assert build_limits.parse_counters("") == {}


def test_limit_failure_says_what_ran_out() -> None:
    sizes = {"memory_bytes": 1024**3, "compute_type": "BUILD_LAMBDA_1GB", "pids_limit": 64}
    assert build_limits.limit_failure({}, {"oom_kill": 0, "max": 0}, **sizes) is None
    code, message = build_limits.limit_failure({}, {"oom_kill": 1}, **sizes) or ("", "")
    assert code == build_limits.OUT_OF_MEMORY
    assert "ran out of memory" in message and "BUILD_LAMBDA_1GB" in message
    code, message = build_limits.limit_failure({"max": 3}, {"max": 9}, **sizes) or ("", "")
    assert code == build_limits.PROCESS_LIMIT_EXCEEDED
    assert "64 processes" in message and "FORGELINE_BUILD_PIDS_LIMIT" in message
    # Counters that did not grow since the last phase mean nothing new.
    assert build_limits.limit_failure({"oom_kill": 1}, {"oom_kill": 1}, **sizes) is None


def test_unenforced_note_is_one_line_or_nothing() -> None:
    assert build_limits.unenforced_note(()) is None
    note = build_limits.unenforced_note(("the memory limit", "the CPU limit"))
    assert note is not None and "\n" not in note
    assert "does not enforce the memory limit, the CPU limit" in note


def test_privileged_builds_follow_the_setting() -> None:
    assert not privileges.privileged_allowed("", "111122223333")
    assert privileges.privileged_allowed("*", "111122223333")
    assert privileges.privileged_allowed(" 444455556666 , 111122223333", "111122223333")
    assert not privileges.privileged_allowed("444455556666", "111122223333")
    privileges.check("111122223333", False, setting="")  # not privileged: nothing to allow
    with pytest.raises(errors.InvalidInputException) as refused:
        privileges.check("111122223333", True, setting="444455556666")
    assert "account 111122223333" in refused.value.message
    assert "FORGELINE_BUILD_PRIVILEGED" in refused.value.message
