"""Controlling builds: StopBuild, timeouts, queueing and concurrency limits, listing,
retrying and deleting, events, and the AWS CLI — real builds in Docker containers."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import pytest

from forgeline.core.events import EventReader, to_eventbridge
from tests.support.builds import (
    build_server,
    context_of,
    create_project,
    log_lines,
    phase_statuses,
    phases_of,
    run_build,
    wait_for_build,
)
from tests.support.errors import code_of

LOG_CAP = 200_000
SLEEPER = "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep {seconds}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any, tiny_image: str) -> Any:
    yield from build_server(
        tmp_path_factory,
        "docker",
        FORGELINE_BUILD_SLOTS="2",
        FORGELINE_BUILD_LOG_MAX_BYTES=str(LOG_CAP),
    )


@pytest.fixture(scope="module")
def codebuild(server: Any) -> Any:
    return server.client("codebuild")


def wait_for_phase(codebuild: Any, build_id: str, phase: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while codebuild.batch_get_builds(ids=[build_id])["builds"][0]["currentPhase"] != phase:
        assert time.monotonic() < deadline, f"build never reached {phase}"
        time.sleep(0.05)


def test_stop_build_stops_a_running_build_within_five_seconds(codebuild):
    project = create_project(codebuild, SLEEPER.format(seconds=120))
    build = codebuild.start_build(projectName=project)["build"]
    wait_for_phase(codebuild, build["id"], "BUILD")
    asked = time.monotonic()
    stopping = codebuild.stop_build(id=build["id"])["build"]
    assert stopping["id"] == build["id"]
    done = wait_for_build(codebuild, build["id"], timeout=30)
    assert time.monotonic() - asked < 5
    assert done["buildStatus"] == "STOPPED"
    assert phases_of(done)["BUILD"]["phaseStatus"] == "STOPPED"
    assert phase_statuses(done)[-2:] == [("FINALIZING", "SUCCEEDED"), ("COMPLETED", None)]


def test_stop_build_of_a_finished_build_leaves_it_alone(codebuild):
    project = create_project(codebuild, SLEEPER.format(seconds=0))
    build = run_build(codebuild, project)
    again = codebuild.stop_build(id=build["id"])["build"]
    assert again["buildStatus"] == "SUCCEEDED"


def test_a_build_past_its_timeout_ends_timed_out(codebuild):
    # Build minutes last one second on this server: timeoutInMinutes=5 is five seconds.
    project = create_project(codebuild, SLEEPER.format(seconds=60), timeoutInMinutes=5)
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "TIMED_OUT"
    assert phases_of(build)["BUILD"]["phaseStatus"] == "TIMED_OUT"
    assert "BUILD_TIMED_OUT" in context_of(build, "BUILD")
    assert (build["endTime"] - build["startTime"]).total_seconds() < 15


def test_concurrent_build_limit_queues_builds_and_starts_them_in_order(codebuild):
    project = create_project(codebuild, SLEEPER.format(seconds=1), concurrentBuildLimit=1)
    ids = [codebuild.start_build(projectName=project)["build"]["id"] for _ in range(3)]
    builds = [wait_for_build(codebuild, build_id) for build_id in ids]
    assert all(b["buildStatus"] == "SUCCEEDED" for b in builds)
    build_phases = [phases_of(b)["BUILD"] for b in builds]
    for earlier, later in zip(build_phases, build_phases[1:], strict=False):
        # One at a time, in the order they were started.
        assert earlier["endTime"] <= later["startTime"]


def test_queued_timeout_ends_a_waiting_build(codebuild):
    project = create_project(
        codebuild, SLEEPER.format(seconds=12), concurrentBuildLimit=1, queuedTimeoutInMinutes=5
    )
    first = codebuild.start_build(projectName=project)["build"]
    waiting = codebuild.start_build(projectName=project)["build"]
    done = wait_for_build(codebuild, waiting["id"])
    assert done["buildStatus"] == "TIMED_OUT"
    assert phases_of(done)["QUEUED"]["phaseStatus"] == "TIMED_OUT"
    assert "PROVISIONING" not in phases_of(done)
    codebuild.stop_build(id=first["id"])


def test_list_retry_and_delete_builds(codebuild):
    project = create_project(codebuild, SLEEPER.format(seconds=0))
    first = run_build(codebuild, project)
    retried = codebuild.retry_build(id=first["id"])["build"]
    second = wait_for_build(codebuild, retried["id"])
    assert second["buildNumber"] == first["buildNumber"] + 1
    assert second["buildStatus"] == "SUCCEEDED"
    listed = codebuild.list_builds_for_project(projectName=project)["ids"]
    assert listed == [second["id"], first["id"]]
    ascending = codebuild.list_builds_for_project(projectName=project, sortOrder="ASCENDING")
    assert ascending["ids"] == [first["id"], second["id"]]
    assert second["id"] in codebuild.list_builds()["ids"]
    by_arn = codebuild.batch_get_builds(ids=[first["arn"], "nope:missing"])
    assert [b["id"] for b in by_arn["builds"]] == [first["id"]]
    assert by_arn["buildsNotFound"] == ["nope:missing"]
    deleted = codebuild.batch_delete_builds(ids=[first["id"], f"{project}:missing"])
    assert deleted["buildsDeleted"] == [first["id"]]
    assert deleted["buildsNotDeleted"] == [
        {"id": f"{project}:missing", "statusCode": "BUILD_NOT_FOUND"}
    ]
    assert codebuild.list_builds_for_project(projectName=project)["ids"] == [second["id"]]


def test_build_errors_use_the_model_codes(codebuild):
    assert code_of(codebuild.start_build, projectName="no-such-project") == (
        "ResourceNotFoundException"
    )
    assert code_of(codebuild.stop_build, id="no-such:build") == "ResourceNotFoundException"
    assert code_of(codebuild.retry_build, id="no-such:build") == "ResourceNotFoundException"
    assert code_of(codebuild.list_builds_for_project, projectName="nope") == (
        "ResourceNotFoundException"
    )
    assert code_of(codebuild.batch_get_builds, ids=[f"x:{i}" for i in range(101)]) == (
        "InvalidInputException"
    )


def test_an_unknown_image_fails_provisioning_clearly(codebuild):
    project = create_project(
        codebuild, SLEEPER.format(seconds=0), image="forgeline/does-not-exist:1"
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED"
    assert phases_of(build)["PROVISIONING"]["phaseStatus"] == "FAILED"
    assert "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE" in context_of(build, "PROVISIONING")
    assert "forgeline/does-not-exist:1" in context_of(build, "PROVISIONING")


def test_start_build_idempotency_token(codebuild):
    project = create_project(codebuild, SLEEPER.format(seconds=0))
    first = codebuild.start_build(projectName=project, idempotencyToken="tok-1")["build"]
    again = codebuild.start_build(projectName=project, idempotencyToken="tok-1")["build"]
    assert again["id"] == first["id"]
    assert (
        code_of(
            codebuild.start_build,
            projectName=project,
            idempotencyToken="tok-1",
            sourceVersion="other",
        )
        == "InvalidInputException"
    )
    wait_for_build(codebuild, first["id"])


def test_state_and_phase_change_events_are_published(server, codebuild):
    project = create_project(codebuild, SLEEPER.format(seconds=0))
    build = run_build(codebuild, project)
    reader = EventReader(f"test-{build['id']}", server.database_url)
    events = []
    while batch := reader.read(limit=1000, source="aws.codebuild"):
        events += [to_eventbridge(e) for e in batch if build["arn"] in e.resources]
    states = [
        e["detail"]["build-status"] for e in events if e["detail-type"].endswith("State Change")
    ]
    assert states == ["IN_PROGRESS", "SUCCEEDED"]
    completed = [
        e["detail"]["completed-phase"] for e in events if e["detail-type"].endswith("Phase Change")
    ]
    assert completed[:3] == ["QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE"]
    assert completed[-1] == "FINALIZING"
    assert all(e["source"] == "aws.codebuild" for e in events)


def test_the_aws_cli_starts_and_reads_builds(server, codebuild):
    project = create_project(codebuild, SLEEPER.format(seconds=0))
    env = dict(os.environ)
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(server.credentials_file),
        AWS_PROFILE="forgeline",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE="/dev/null",
    )
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)

    def aws(*args: str) -> Any:
        result = subprocess.run(
            ["aws", "--endpoint-url", server.url, "codebuild", *args, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    started = aws("start-build", "--project-name", project)["build"]
    wait_for_build(codebuild, started["id"])
    got = aws("batch-get-builds", "--ids", started["id"])["builds"][0]
    assert got["buildStatus"] == "SUCCEEDED"
    assert aws("list-builds-for-project", "--project-name", project)["ids"] == [started["id"]]


def test_endless_output_is_truncated_and_the_build_goes_on(server, codebuild):
    # About 2 MB of output against a 200 kB log cap: the log says it was cut, the build
    # carries on to its next command, and the server keeps answering.
    project = create_project(
        codebuild,
        """version: 0.2
phases:
  build:
    commands:
      - yes 'a fairly long line of build output that goes on and on' | head -n 40000
      - echo after-the-flood
""",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED"
    lines = log_lines(server, build)
    truncated = [line for line in lines if line.startswith("[Forgeline] Log truncated")]
    assert len(truncated) == 1
    assert sum(len(line) + 1 for line in lines) < LOG_CAP + 1024 * 1024
    assert "after-the-flood" not in lines  # build output past the cap is dropped
    assert any("Phase complete: BUILD State: SUCCEEDED" in line for line in lines)
