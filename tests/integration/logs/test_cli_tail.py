"""`forgeline logs tail`: a real build's log through the server's Logs API, followed
until the build ends, with the build's outcome as the exit status."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from tests.support.builds import (
    build_server,
    create_project,
    log_lines,
    run_build,
    wait_for_build,
)
from tests.support.server import FORGELINE

SPEC = """version: 0.2
phases:
  build:
    commands:
      - echo first line
      - sleep 2
      - echo second line
      - {last}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any, tiny_image: str) -> Any:
    yield from build_server(tmp_path_factory, "docker")


def _tail(server: Any, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*FORGELINE, "logs", "tail", *args, "--endpoint-url", server.url]
        + ["--credentials-file", str(server.credentials_file), "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_follow_prints_the_whole_log_and_exits_0_when_the_build_succeeds(server: Any) -> None:
    codebuild = server.client("codebuild")
    project = create_project(codebuild, SPEC.format(last="echo done"))
    build_id = codebuild.start_build(projectName=project)["build"]["id"]
    follower = _tail(server, build_id, "--follow")
    # Started while the build runs: the first line shows before the build ends.
    deadline = time.monotonic() + 60
    seen: list[str] = []
    assert follower.stdout is not None
    while "first line" not in seen:
        assert time.monotonic() < deadline, "the first line never showed"
        seen.append(follower.stdout.readline().rstrip("\n"))
    assert codebuild.batch_get_builds(ids=[build_id])["builds"][0]["buildStatus"] == "IN_PROGRESS"
    # The rest through the same buffered reader (communicate() would skip what it holds).
    out = follower.stdout.read()
    assert follower.wait(timeout=90) == 0, follower.stderr.read() if follower.stderr else ""
    build = wait_for_build(codebuild, build_id)
    assert build["buildStatus"] == "SUCCEEDED"
    printed = seen + out.splitlines()
    assert printed == log_lines(server, build)
    assert printed.index("second line") > printed.index("first line")

    # Without --follow, a finished build's log is printed as it is.
    again = _tail(server, build_id)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert out.splitlines() == printed


def test_follow_exits_1_when_the_build_fails(server: Any) -> None:
    codebuild = server.client("codebuild")
    project = create_project(codebuild, SPEC.format(last="exit 3"))
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED"
    follower = _tail(server, build["id"], "--follow")
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 1
    assert err == f"error: build {build['id']} ended FAILED\n"
    assert "second line" in out.splitlines()


def test_a_build_that_does_not_exist_is_one_line(server: Any) -> None:
    project = create_project(server.client("codebuild"), "version: 0.2")
    missing = f"{project}:00000000-0000-4000-8000-000000000000"
    tail = _tail(server, missing)
    out, err = tail.communicate(timeout=60)
    assert (tail.returncode, out) == (1, "")
    assert err == f"error: build {missing} does not exist\n"
