"""A build's limits end its own build, never the worker: a fork bomb stops at the process
limit, a memory hog is killed at the computeType's memory, a build directory past its
disk cap fails the build; each with a phase context saying which, and the next build on
the same server succeeds. Beside them, the measuring itself (no Docker): the directory
walk and the wrapper that reads the container's counters.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.codebuild import build_limits
from tests.support.builds import (
    TINY_IMAGE,
    build_server,
    context_of,
    create_project,
    phase_statuses,
    phases_of,
    run_build,
)
from tests.support.server import ForgelineServer

PIDS_LIMIT = 64
DISK_LIMIT = 5_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any, tiny_image: str) -> Iterator[ForgelineServer]:
    yield from build_server(
        tmp_path_factory,
        "docker",
        FORGELINE_BUILD_PIDS_LIMIT=str(PIDS_LIMIT),
        FORGELINE_BUILD_DISK_LIMIT_BYTES=str(DISK_LIMIT),
    )


def buildspec(*commands: str) -> str:
    lines = "".join(f"      - {command}\n" for command in commands)
    return f"version: 0.2\nphases:\n  build:\n    commands:\n{lines}"


def assert_next_build_succeeds(codebuild: Any) -> None:
    project = create_project(codebuild, buildspec("echo still here"))
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED", phase_statuses(build)


@pytest.mark.docker
def test_a_fork_bomb_ends_its_own_build(server: ForgelineServer) -> None:
    codebuild = server.client("codebuild")
    project = create_project(codebuild, buildspec("'bomb() { bomb | bomb & }; bomb'", "sleep 3"))
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED", phase_statuses(build)
    assert phases_of(build)["BUILD"]["phaseStatus"] == "FAILED"
    context = context_of(build, "BUILD")
    assert context.startswith(f"{build_limits.PROCESS_LIMIT_EXCEEDED}: "), context
    assert f"{PIDS_LIMIT} processes" in context and "FORGELINE_BUILD_PIDS_LIMIT" in context
    assert_next_build_succeeds(codebuild)


@pytest.mark.docker
def test_a_memory_hog_is_killed_at_the_compute_types_memory(server: ForgelineServer) -> None:
    codebuild = server.client("codebuild")
    # Lambda compute's smallest size has 1 GB; the hog asks for half as much again.
    project = create_project(
        codebuild,
        buildspec("dd if=/dev/zero of=/dev/null bs=1500M count=1", "echo survived"),
        environment={
            "type": "LINUX_LAMBDA_CONTAINER",
            "image": TINY_IMAGE,
            "computeType": "BUILD_LAMBDA_1GB",
        },
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED", phase_statuses(build)
    context = context_of(build, "BUILD")
    assert context.startswith(f"{build_limits.OUT_OF_MEMORY}: "), context
    assert "ran out of memory" in context and "BUILD_LAMBDA_1GB" in context
    assert_next_build_succeeds(codebuild)


@pytest.mark.docker
def test_a_build_directory_past_its_cap_fails_the_build(server: ForgelineServer) -> None:
    codebuild = server.client("codebuild")
    project = create_project(
        codebuild, buildspec("dd if=/dev/zero of=big bs=1M count=20", "sleep 60")
    )
    started = time.monotonic()
    build = run_build(codebuild, project)
    # The watcher stopped the build: it did not wait for the sleep.
    assert time.monotonic() - started < 45
    assert build["buildStatus"] == "FAILED", phase_statuses(build)
    assert [phase for phase, _ in phase_statuses(build)][-3:] == [
        "BUILD",
        "FINALIZING",
        "COMPLETED",
    ]
    context = context_of(build, "BUILD")
    assert context.startswith(f"{build_limits.DISK_LIMIT_EXCEEDED}: "), context
    assert f"exceeded {DISK_LIMIT} bytes" in context
    assert "FORGELINE_BUILD_DISK_LIMIT_BYTES" in context
    assert_next_build_succeeds(codebuild)


# ---------------------------------------------------------------- measuring, without Docker


@pytest.mark.no_db
def test_directory_bytes_counts_allocated_blocks_once(tmp_path: Path) -> None:
    (tmp_path / "src" / "deep").mkdir(parents=True)
    data = tmp_path / "src" / "deep" / "data.bin"
    data.write_bytes(os.urandom(1024 * 1024))
    empty = build_limits.directory_bytes(tmp_path) - data.stat().st_blocks * 512
    # A hard link is the same blocks; a symbolic link is not followed out of the tree.
    os.link(data, tmp_path / "src" / "again.bin")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.bin"
    outside.write_bytes(os.urandom(1024 * 1024))
    (tmp_path / "src" / "link").symlink_to(outside)
    # A sparse file occupies (nearly) nothing, whatever size it claims.
    with open(tmp_path / "sparse", "wb") as sparse:
        sparse.truncate(10 * 1024**3)
    used = build_limits.directory_bytes(tmp_path)
    assert 1024 * 1024 <= used - empty < 1024 * 1024 + 64 * 1024
    assert build_limits.directory_bytes(tmp_path / "missing") == 0


@pytest.mark.no_db
def test_the_counting_wrapper_keeps_the_exit_status(tmp_path: Path) -> None:
    counters = tmp_path / "limits-build"
    argv = build_limits.counting_argv(["sh", "-c", "echo out; exit 3"], str(counters))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (3, "out\n")
    assert counters.exists()  # empty where this machine shows no cgroup counters
    assert all(value >= 0 for value in build_limits.read_counters(counters).values())
    assert build_limits.read_counters(tmp_path / "none") == {}
