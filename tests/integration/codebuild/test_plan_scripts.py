"""Buildspec -> plan compilation, with the generated phase scripts run by real /bin/sh and bash."""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from forgeline.codebuild.buildspec import parse_buildspec
from forgeline.codebuild.plan import BuildPlan, compile_plan, evaluate_phase, read_status

# Files and processes, but no database: run once, not on every backend's pass.
pytestmark = pytest.mark.no_db

SHELLS = ["/bin/sh", "/bin/bash"]


@dataclass
class PhaseRun:
    exit_code: int
    stdout: str
    status: dict[int, int]
    status_text: str


MARKER = "[Container] "


def own_output(stdout: str) -> str:
    """What the commands printed, without the scripts' `Running command` lines."""
    return "".join(line for line in stdout.splitlines(keepends=True) if not line.startswith(MARKER))


class Runner:
    """Runs a plan's phase scripts the way a runner does: one process per phase, shared state."""

    def __init__(self, tmp_path: Path, shell: str) -> None:
        self.shell = shell
        self.src = tmp_path / "src"
        self.src.mkdir()
        (self.src / "sub dir").mkdir()
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.scripts = tmp_path / "scripts"
        self.scripts.mkdir()
        self.markers: dict[str, list[str]] = {}

    def run(self, plan: BuildPlan, env: dict[str, str] | None = None) -> dict[str, PhaseRun]:
        base_env = {"PATH": os.environ["PATH"], "HOME": str(self.src)}
        runs = {}
        for phase in plan.phases:
            script = self.scripts / f"{phase.name}.sh"
            script.write_text(phase.script)
            done = subprocess.run(
                [self.shell, str(script), str(self.state)],
                cwd=self.src,
                env={**base_env, **(env or {})},
                capture_output=True,
                text=True,
                timeout=30,
            )
            status_text = (self.state / phase.status_file).read_text()
            runs[phase.name] = PhaseRun(
                done.returncode, own_output(done.stdout), read_status(status_text), status_text
            )
            self.markers[phase.name] = [
                line for line in done.stdout.splitlines() if line.startswith(MARKER)
            ]
        return runs


@pytest.fixture(params=SHELLS)
def runner(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    return Runner(tmp_path, request.param)


def plan_of(text: str) -> BuildPlan:
    return compile_plan(parse_buildspec(textwrap.dedent(text)))


def test_plan_has_four_phases_with_settings() -> None:
    plan = plan_of(
        """\
        version: 0.2
        run-as: builder
        env:
          shell: bash
          variables: {GREETING: "$HOME"}
        phases:
          install:
            runtime-versions: {python: 3.12}
          build:
            on-failure: CONTINUE
            run-as: root
            commands: [make]
            finally: [echo bye]
        """
    )
    assert [p.phase_type for p in plan.phases] == ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"]
    assert (plan.shell, plan.persistent_session) == ("bash", True)
    assert plan.variables == {"GREETING": "$HOME"}
    assert plan.runtime_versions == {"python": "3.12"}
    build = plan.phase("BUILD")
    assert (build.commands, build.finally_commands) == (("make",), ("echo bye",))
    assert (build.on_failure, build.run_as) == ("CONTINUE", "root")
    assert plan.phase("INSTALL").run_as == "builder"
    assert [(s.index, s.in_finally) for s in build.steps] == [(0, False), (1, True)]
    assert plan_of("version: 0.1\n").persistent_session is False
    assert plan_of("version: 0.1\n").shell == "sh"


def test_cd_export_and_plain_variables_persist_across_commands_and_phases(
    runner: Runner,
) -> None:
    plan = plan_of(
        """\
        version: 0.2
        phases:
          install:
            commands:
              - cd "sub dir"
              - export EXPORTED=first
              - PLAIN="not exported"
              - export GONE=soon
          pre_build:
            commands:
              - unset GONE
              - EXPORTED="$EXPORTED-second"
          build:
            commands:
              - echo "cwd=$(basename "$(pwd)")"
              - echo "exported=$EXPORTED plain=$PLAIN gone=${GONE-unset}"
              - sh -c 'echo "child sees exported=$EXPORTED plain=${PLAIN-none}"'
        """
    )
    runs = runner.run(plan)
    assert all(run.exit_code == 0 for run in runs.values())
    assert runs["build"].stdout.splitlines() == [
        "cwd=sub dir",
        "exported=first-second plain=not exported gone=unset",
        "child sees exported=first-second plain=none",
    ]
    assert runs["build"].status == {0: 0, 1: 0, 2: 0}


def test_version_01_runs_every_command_in_a_fresh_shell(runner: Runner) -> None:
    plan = plan_of(
        """\
        version: 0.1
        phases:
          install:
            commands:
              - cd "sub dir" && echo "moved to $(basename "$(pwd)")"
              - export EXPORTED=1
          build:
            commands:
              - echo "cwd=$(basename "$(pwd)") exported=${EXPORTED-unset}"
        """
    )
    runs = runner.run(plan)
    assert runs["install"].stdout == "moved to sub dir\n"
    assert runs["build"].stdout == "cwd=src exported=unset\n"


def test_failure_stops_the_phase_runs_finally_and_reports_the_command(runner: Runner) -> None:
    plan = plan_of(
        """\
        version: 0.2
        phases:
          build:
            commands:
              - echo "before $CODEBUILD_BUILD_SUCCEEDING"
              - false
              - echo never
            finally:
              - echo "finally $CODEBUILD_BUILD_SUCCEEDING"
          post_build:
            commands:
              - echo "post $CODEBUILD_BUILD_SUCCEEDING"
        """
    )
    runs = runner.run(plan)
    build = runs["build"]
    assert build.exit_code == 1
    assert build.stdout.splitlines() == ["before 1", "finally 0"]
    assert build.status == {0: 0, 1: 1, 3: 0}
    outcome = evaluate_phase(plan.phase("BUILD"), build.status_text)
    assert not outcome.succeeded
    assert outcome.context_message == (
        "COMMAND_EXECUTION_ERROR: Error while executing command: false. Reason: exit status 1"
    )
    assert outcome.failure_context == (
        "COMMAND_EXECUTION_ERROR",
        "Error while executing command: false. Reason: exit status 1",
    )
    assert [r.exit_status for r in outcome.results] == [0, 1, None, 0]
    # Later phases see the build is no longer succeeding.
    assert runs["post_build"].stdout == "post 0\n"


def test_exit_in_a_command_fails_that_command_without_ending_the_session(
    runner: Runner,
) -> None:
    plan = plan_of(
        """\
        version: 0.2
        phases:
          install:
            commands:
              - export KEPT=yes
              - cd "sub dir"; exit 3
            finally:
              - echo "finally in $(basename "$(pwd)") kept=$KEPT"
          build:
            commands:
              - echo "build kept=$KEPT"
        """
    )
    runs = runner.run(plan)
    install = runs["install"]
    assert install.exit_code == 3
    assert install.status == {0: 0, 1: 3, 2: 0}
    assert install.stdout == "finally in sub dir kept=yes\n"
    outcome = evaluate_phase(plan.phase("INSTALL"), install.status_text)
    assert outcome.context_message == (
        'COMMAND_EXECUTION_ERROR: Error while executing command: cd "sub dir"; exit 3. '
        "Reason: exit status 3"
    )
    assert runs["build"].stdout == "build kept=yes\n"


def test_finally_failure_fails_the_phase_and_stops_remaining_finally(runner: Runner) -> None:
    plan = plan_of(
        """\
        version: 0.2
        phases:
          build:
            commands:
              - echo ok
            finally:
              - sh -c 'exit 7'
              - echo never
        """
    )
    build = runner.run(plan)["build"]
    assert build.exit_code == 7
    assert build.status == {0: 0, 1: 7}
    outcome = evaluate_phase(plan.phase("BUILD"), build.status_text)
    assert not outcome.succeeded
    assert outcome.failed_step is not None and outcome.failed_step.step.in_finally
    assert outcome.context_message is not None
    assert "command: sh -c 'exit 7'. Reason: exit status 7" in outcome.context_message


def test_multi_line_commands_quotes_and_special_characters(runner: Runner) -> None:
    plan = plan_of(
        r"""
        version: 0.2
        phases:
          build:
            commands:
              - |
                for word in alpha beta; do
                  echo "word: $word"
                done
                TOTAL=$((2 + 3))
              - echo "total=$TOTAL"
              - printf '%s %s\n' 'single "double" $NOT_EXPANDED `tick` \back' "it's"
              - 'echo "colon: yes; semicolon; pipe |" | tr a-z A-Z'
              - VALUE="line one
                line two"
              - printf '%s\n' "$VALUE" | wc -l | tr -d ' '
              - 42
        """
    )
    build = runner.run(plan)["build"]
    assert build.exit_code == 127  # "42" is not a command: it fails like any other
    assert build.stdout.splitlines() == [
        "word: alpha",
        "word: beta",
        "total=5",
        'single "double" $NOT_EXPANDED `tick` \\back it\'s',
        "COLON: YES; SEMICOLON; PIPE |",
        "1",
    ]
    # A folded plain scalar is one line; the numeric item reached the shell as text "42".
    assert build.status == {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 127}


def test_multi_line_values_with_quotes_and_newlines_persist_exactly(runner: Runner) -> None:
    plan = plan_of(
        """\
        version: 0.2
        phases:
          install:
            commands:
              - |
                export TRICKY="it's \\"quoted\\"
                second line
                "
          build:
            commands:
              - printf '[%s]' "$TRICKY"
        """
    )
    runs = runner.run(plan)
    assert runs["build"].stdout == '[it\'s "quoted"\nsecond line\n]'


def test_empty_phases_succeed_and_write_an_empty_status(runner: Runner) -> None:
    plan = plan_of("version: 0.2\n")
    runs = runner.run(plan)
    assert all(run.exit_code == 0 and run.status == {} for run in runs.values())
    assert evaluate_phase(plan.phase("BUILD"), "").succeeded


def test_build_environment_and_succeeding_flag_are_visible(runner: Runner) -> None:
    plan = plan_of(
        """\
        version: 0.2
        phases:
          build:
            commands:
              - echo "$FROM_RUNNER $CODEBUILD_BUILD_SUCCEEDING"
        """
    )
    runs = runner.run(plan, env={"FROM_RUNNER": "literal $HOME"})
    assert runs["build"].stdout == "literal $HOME 1\n"


def test_evaluate_phase_treats_a_missing_status_as_failure() -> None:
    plan = plan_of(
        """\
        version: 0.2
        phases:
          build:
            commands: [one, two]
            finally: [three]
        """
    )
    phase = plan.phase("BUILD")
    outcome = evaluate_phase(phase, "0 0\n")
    assert not outcome.succeeded
    assert outcome.failed_step is not None and outcome.failed_step.step.command == "two"
    assert outcome.context_message == (
        "COMMAND_EXECUTION_ERROR: Error while executing command: two. "
        "Reason: the command did not report an exit status"
    )
    passed = evaluate_phase(phase, "0 0\n1 0\n2 0\n")
    assert passed.succeeded and passed.failure_context is None
    assert read_status("0 0\ngarbage\n1 -1\n") == {0: 0, 1: -1}


def test_each_command_is_announced_as_aws_logs_do(runner: Runner) -> None:
    plan = plan_of(
        """\
        version: 0.2
        phases:
          build:
            commands:
              - echo one
              - |
                echo two
                echo three
        """
    )
    runner.run(plan)
    markers = runner.markers["build"]
    assert len(markers) == 2
    assert re.fullmatch(
        r"\[Container\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} Running command echo one",
        markers[0],
    )
    assert markers[1].endswith("Running command echo two echo three")
