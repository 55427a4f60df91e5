"""Buildspec semantics, one test per rule, in real builds: Docker containers from the
busybox image (and the host-process runner for the rules that do not depend on the image),
through boto3 over HTTP."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.builds import (
    build_server,
    context_of,
    create_project,
    output_lines,
    phase_statuses,
    phases_of,
    run_build,
)


@pytest.fixture(scope="module", params=[pytest.param("docker", marks=pytest.mark.docker), "host"])
def server(request: Any, tmp_path_factory: Any) -> Any:
    if request.param == "docker":
        request.getfixturevalue("tiny_image")
    yield from build_server(tmp_path_factory, request.param)


@pytest.fixture(scope="module")
def codebuild(server: Any) -> Any:
    return server.client("codebuild")


def test_version_02_keeps_one_shell_session_across_commands_and_phases(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
phases:
  install:
    commands:
      - mkdir -p deep/er && cd deep
      - export CARRIED=exported
      - PLAIN=unexported
  build:
    commands:
      - cd er
      - echo "cwd=$(basename $(pwd)) carried=$CARRIED plain=$PLAIN"
      - sh -c 'echo "child sees ${CARRIED:-nothing} ${PLAIN:-nothing}"'
""",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED", phase_statuses(build)
    lines = output_lines(server, build)
    assert "cwd=er carried=exported plain=unexported" in lines
    assert "child sees exported nothing" in lines


def test_version_01_runs_each_command_in_a_fresh_shell(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.1
phases:
  build:
    commands:
      - mkdir -p sub && cd sub && export LOST=yes
      - echo "cwd=$(basename $(pwd)) lost=${LOST:-unset}"
""",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED"
    assert "cwd=src lost=unset" in output_lines(server, build)


def test_env_variables_are_literal_and_follow_aws_precedence(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
env:
  variables:
    LITERAL: "$HOME and $(echo no)"
    FROM_SPEC: spec
    OVERRIDDEN_BY_PROJECT: spec
    OVERRIDDEN_BY_START: spec
phases:
  build:
    commands:
      - echo "literal=$LITERAL"
      - echo "spec=$FROM_SPEC project=$OVERRIDDEN_BY_PROJECT start=$OVERRIDDEN_BY_START"
""",
        environment={
            "type": "LINUX_CONTAINER",
            "image": "forgeline/tiny:latest",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [
                {"name": "OVERRIDDEN_BY_PROJECT", "value": "project"},
                {"name": "OVERRIDDEN_BY_START", "value": "project"},
            ],
        },
    )
    build = run_build(
        codebuild,
        project,
        environmentVariablesOverride=[{"name": "OVERRIDDEN_BY_START", "value": "start"}],
    )
    lines = output_lines(server, build)
    assert "literal=$HOME and $(echo no)" in lines
    assert "spec=spec project=project start=start" in lines


def test_built_in_codebuild_variables(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
phases:
  build:
    commands:
      - echo "id=$CODEBUILD_BUILD_ID"
      - echo "arn=$CODEBUILD_BUILD_ARN"
      - echo "number=$CODEBUILD_BUILD_NUMBER image=$CODEBUILD_BUILD_IMAGE"
      - echo "src=$CODEBUILD_SRC_DIR pwd=$(pwd)"
      - echo "region=$AWS_REGION/$AWS_DEFAULT_REGION initiator=$CODEBUILD_INITIATOR"
      - echo "log=$CODEBUILD_LOG_PATH start=$CODEBUILD_START_TIME"
""",
    )
    build = run_build(codebuild, project)
    lines = output_lines(server, build)
    assert f"id={build['id']}" in lines
    assert f"arn={build['arn']}" in lines
    assert f"number={build['buildNumber']} image=forgeline/tiny:latest" in lines
    src_line = next(line for line in lines if line.startswith("src="))
    src, pwd = src_line[4:].split(" pwd=")
    assert src == pwd and src.endswith("/src")
    assert "region=us-east-1/us-east-1 initiator=" in next(
        line for line in lines if line.startswith("region=")
    )
    log_line = next(line for line in lines if line.startswith("log="))
    assert log_line.startswith(f"log={build['logs']['streamName']} start=")
    assert int(log_line.rsplit("start=", 1)[1]) > 1_600_000_000_000


def test_exported_variables_are_returned_with_their_final_values(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
env:
  variables:
    FROM_ENV: initial
  exported-variables:
    - FROM_ENV
    - MADE_IN_BUILD
    - NEVER_SET
phases:
  build:
    commands:
      - export MADE_IN_BUILD="value with 'quotes' and spaces"
  post_build:
    commands:
      - FROM_ENV=changed
""",
    )
    build = run_build(codebuild, project)
    exported = {v["name"]: v["value"] for v in build["exportedEnvironmentVariables"]}
    assert exported == {
        "FROM_ENV": "changed",
        "MADE_IN_BUILD": "value with 'quotes' and spaces",
        "NEVER_SET": "",
    }


def test_finally_runs_after_a_failed_command_and_the_phase_fails(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
phases:
  build:
    commands:
      - echo first
      - exit 3
      - echo never
    finally:
      - echo "finally ran succeeding=$CODEBUILD_BUILD_SUCCEEDING"
""",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED"
    lines = output_lines(server, build)
    assert "first" in lines and "never" not in lines
    assert "finally ran succeeding=0" in lines
    assert context_of(build, "BUILD") == (
        "COMMAND_EXECUTION_ERROR: Error while executing command: exit 3. Reason: exit status 3"
    )


def test_a_failing_finally_command_fails_a_phase_whose_commands_succeeded(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
phases:
  build:
    commands:
      - "true"
    finally:
      - "false"
""",
    )
    build = run_build(codebuild, project)
    assert phases_of(build)["BUILD"]["phaseStatus"] == "FAILED"
    assert "Error while executing command: false. Reason: exit status 1" in context_of(
        build, "BUILD"
    )


def test_failure_in_install_skips_to_finalizing(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
phases:
  install:
    commands:
      - exit 2
  build:
    commands:
      - echo must-not-run
""",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED"
    assert [p for p, _ in phase_statuses(build)] == [
        "SUBMITTED",
        "QUEUED",
        "PROVISIONING",
        "DOWNLOAD_SOURCE",
        "INSTALL",
        "FINALIZING",
        "COMPLETED",
    ]
    assert "must-not-run" not in output_lines(server, build)


def test_failure_in_build_still_runs_post_build_and_upload(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
phases:
  build:
    commands:
      - exit 1
  post_build:
    commands:
      - echo "post_build succeeding=$CODEBUILD_BUILD_SUCCEEDING"
""",
    )
    build = run_build(codebuild, project)
    assert phase_statuses(build)[-5:] == [
        ("BUILD", "FAILED"),
        ("POST_BUILD", "SUCCEEDED"),
        ("UPLOAD_ARTIFACTS", "SUCCEEDED"),
        ("FINALIZING", "SUCCEEDED"),
        ("COMPLETED", None),
    ]
    assert build["buildStatus"] == "FAILED"
    assert "post_build succeeding=0" in output_lines(server, build)


def test_on_failure_continue_goes_on_to_the_next_phase(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
phases:
  pre_build:
    on-failure: CONTINUE
    commands:
      - exit 4
  build:
    commands:
      - echo "build ran"
""",
    )
    build = run_build(codebuild, project)
    assert phases_of(build)["PRE_BUILD"]["phaseStatus"] == "FAILED"
    assert phases_of(build)["BUILD"]["phaseStatus"] == "SUCCEEDED"
    assert build["buildStatus"] == "FAILED"
    assert "build ran" in output_lines(server, build)


def test_a_broken_buildspec_fails_download_source_with_its_line(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
phases:
  build:
    commands:
      - echo fine
    bogus-key: 1
""",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED"
    context = context_of(build, "DOWNLOAD_SOURCE")
    assert context.startswith("YAML_FILE_ERROR: ")
    assert "line 6" in context


def test_each_phase_record_has_times_and_durations(server, codebuild):
    project = create_project(
        codebuild, "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 1\n"
    )
    build = run_build(codebuild, project)
    for phase in build["phases"][:-1]:
        assert phase["startTime"] <= phase["endTime"]
        assert phase["durationInSeconds"] >= 0
    assert phases_of(build)["BUILD"]["durationInSeconds"] >= 1
    assert build["endTime"] >= build["startTime"]
    assert build["currentPhase"] == "COMPLETED"


def test_commands_that_call_exit_or_exec_end_only_themselves(server, codebuild):
    project = create_project(
        codebuild,
        """version: 0.2
phases:
  build:
    commands:
      - (exit 0)
      - exec true
      - echo "still here"
""",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED"
    assert "still here" in output_lines(server, build)


def test_background_processes_are_killed_when_the_build_ends(server, codebuild, tmp_path):
    marker = tmp_path / "alive"
    project = create_project(
        codebuild,
        f"""version: 0.2
phases:
  build:
    commands:
      - (sleep 3; echo late > {marker}) > /dev/null 2>&1 &
      - setsid sh -c 'sleep 3; echo late >> {marker}' > /dev/null 2>&1 &
      - echo started
""",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED"
    if server.env["FORGELINE_BUILD_RUNNER"] == "docker":
        # The container, and every process in it, is gone shortly after the build ends.
        import docker

        engine = docker.from_env()
        label = f"org.forgeline.build-id={build['id']}"
        deadline = time.monotonic() + 10
        while engine.containers.list(all=True, filters={"label": label}):
            assert time.monotonic() < deadline, "the build's container was not removed"
            time.sleep(0.2)
    else:
        time.sleep(4)
        assert not marker.exists()


def test_binary_and_long_output_is_stored_safely(server, codebuild):
    project = create_project(
        codebuild,
        r"""version: 0.2
phases:
  build:
    commands:
      - printf 'bin:\001\377\376end\n'
      - i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done
""",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED"
    lines = output_lines(server, build)
    binary = next(line for line in lines if line.startswith("bin:"))
    assert binary.endswith("end") and "\ufffd" in binary
    assert "line 2999" in lines
