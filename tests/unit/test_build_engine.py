"""The build engine's orchestration, with in-memory fakes of everything it is handed: the
runner, the reporter, the phase steps and the clock (no Docker, database, disk or shell)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from forgeline.codebuild import phases as ph
from forgeline.codebuild.build_reporter import Transition
from forgeline.codebuild.engine import BuildRun, Failure, PhaseCommand, StepOutcome
from forgeline.codebuild.phases import PhaseRecord
from forgeline.codebuild.runners import (
    ENGINE_UNAVAILABLE,
    OutputSink,
    RunInterrupted,
    Runner,
    RunnerError,
    RunnerSession,
    RunSpec,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
HANG = -1  # a command that runs until the runner is stopped


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class MemorySession:
    runner: FakeRunner
    root_in_runner: str = "/memory"
    mount_paths: Mapping[str, str] = field(default_factory=dict)
    notes: Sequence[str] = ()
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        on_output: OutputSink,
        user: str | None = None,
    ) -> int:
        phase = argv[-1]
        self.runner.calls.append(f"run {phase}")
        on_output(f"running {phase}\n".encode())
        if self.stopped.is_set():
            raise RunInterrupted()
        started = self.runner.on_start.get(phase)
        if started is not None:
            started()
        status = self.runner.exit_statuses.get(phase, 0)
        if status == HANG:
            if not self.stopped.wait(5):
                raise AssertionError(f"{phase} was never stopped")
            raise RunInterrupted()
        return status

    def stop(self) -> None:
        self.runner.calls.append("stop")
        self.stopped.set()

    def cleanup(self) -> None:
        self.runner.calls.append("cleanup")


@dataclass
class FakeRunner:
    """An in-memory runner: each phase's command ends with the exit status given."""

    exit_statuses: dict[str, int] = field(default_factory=dict)
    on_start: dict[str, Callable[[], None]] = field(default_factory=dict)
    prepare_error: RunnerError | None = None
    calls: list[str] = field(default_factory=list)
    name: str = "memory"
    uses_image: bool = False
    not_enforced: tuple[str, ...] = ()

    def prepare(self, spec: RunSpec) -> RunnerSession:
        self.calls.append("prepare")
        if self.prepare_error is not None:
            raise self.prepare_error
        return MemorySession(self)

    def available(self) -> bool:
        return True

    def remove_build_container(self, build_id: str) -> int:
        return 0

    def container_build_ids(self) -> set[str]:
        return set()


@dataclass
class MemoryReporter:
    transitions: list[Transition] = field(default_factory=list)
    stop: bool = False

    def record(self, transition: Transition) -> None:
        self.transitions.append(transition)

    def stop_requested(self) -> bool:
        return self.stop

    @property
    def last(self) -> ph.BuildState:
        return self.transitions[-1].state

    def phases(self) -> list[tuple[str, str | None]]:
        return [(r.phase_type, r.phase_status) for r in self.last.phases]

    def finished_in_order(self) -> list[str]:
        return [t.finished.phase_type for t in self.transitions if t.finished is not None]

    def final_statuses(self) -> list[str]:
        return [t.final_status for t in self.transitions if t.final_status is not None]


@dataclass
class MemoryLog:
    lines: list[str] = field(default_factory=list)

    def write(self, chunk: bytes) -> None:
        self.lines.append(chunk.decode())

    def note(self, text: str) -> None:
        self.lines.append(text)

    def entering(self, phase_type: str) -> None:
        self.lines.append(f"Entering phase {phase_type}")

    def phase_complete(self, record: PhaseRecord) -> None:
        self.lines.append(f"Phase complete: {record.phase_type} State: {record.phase_status}")


@dataclass
class MemorySteps:
    """Phase steps with nothing behind them: every buildspec phase has one command."""

    download_failure: Failure | None = None
    log: MemoryLog = field(default_factory=MemoryLog)
    results: dict[str, Any] = field(default_factory=dict)
    on_failure: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    # Set (from a command, say) once the build directory is past its disk cap.
    disk_full: threading.Event = field(default_factory=threading.Event)

    def open(self) -> None:
        self.calls.append("open")

    def run_spec(self, runner: Runner) -> RunSpec | Failure:
        return RunSpec(build_id="p:1", root=Path("/memory"), image=None, env={})

    def runner_failure(self, error: RunnerError) -> Failure:
        return Failure(error.code, error.message, fault=error.fault)

    def provisioned(self, runner: Runner, session: RunnerSession) -> None:
        self.calls.append("provisioned")

    def download_source(self) -> StepOutcome:
        self.calls.append("download_source")
        return self.download_failure

    def before_phase(self, phase_type: str) -> StepOutcome:
        return None

    def phase_command(self, phase_type: str) -> PhaseCommand | None:
        return PhaseCommand(["run-phase", phase_type], cwd="/memory/src")

    def phase_outcome(self, phase_type: str, exit_status: int) -> StepOutcome:
        if exit_status == 0:
            return None
        return Failure("COMMAND_EXECUTION_ERROR", f"{phase_type}: exit status {exit_status}")

    def upload_artifacts(self, interrupted: bool) -> StepOutcome:
        self.calls.append("upload_artifacts")
        return None

    def finalize(self) -> StepOutcome:
        self.calls.append("finalize")
        self.results["logs"] = {"status": "written"}
        return None

    def check_disk(self) -> Failure | None:
        if not self.disk_full.is_set():
            return None
        return Failure("BUILD_DISK_LIMIT_EXCEEDED", "the build directory exceeded 5 bytes")

    def tear_down(self) -> None:
        self.calls.append("tear_down")


def queued() -> list[PhaseRecord]:
    """A build's phases as StartBuild leaves them."""
    return [PhaseRecord(ph.SUBMITTED, T0).finish(ph.SUCCEEDED, T0), PhaseRecord(ph.QUEUED, T0)]


def run_build(
    runner: FakeRunner,
    reporter: MemoryReporter | None = None,
    steps: MemorySteps | None = None,
    clock: FakeClock | None = None,
    lease_lost: Callable[[], bool] = lambda: False,
    disk_check_interval: float = 0.01,
) -> tuple[MemoryReporter, MemorySteps]:
    reporter = reporter or MemoryReporter()
    steps = steps or MemorySteps()
    clock = clock or FakeClock()
    run = BuildRun(
        "p:1",
        queued(),
        steps,
        runner,
        reporter,
        deadline=T0 + timedelta(minutes=60),
        clock=clock,
        lease_lost=lease_lost,
        watch_interval=0.01,
        disk_check_interval=disk_check_interval,
    )
    run.run()
    assert run.torn_down.wait(5)
    return reporter, steps


EVERY_PHASE = [
    ph.SUBMITTED,
    ph.QUEUED,
    ph.PROVISIONING,
    ph.DOWNLOAD_SOURCE,
    ph.INSTALL,
    ph.PRE_BUILD,
    ph.BUILD,
    ph.POST_BUILD,
    ph.UPLOAD_ARTIFACTS,
    ph.FINALIZING,
]


def test_a_clean_run_goes_through_every_phase() -> None:
    runner = FakeRunner()
    reporter, steps = run_build(runner)
    assert reporter.phases() == [
        *((phase, ph.SUCCEEDED) for phase in EVERY_PHASE),
        (ph.COMPLETED, None),
    ]
    assert reporter.final_statuses() == [ph.SUCCEEDED]
    assert reporter.last.build_status == ph.SUCCEEDED
    # One transition per phase that ended, in order, each reported once.
    assert reporter.finished_in_order() == EVERY_PHASE[1:]
    assert reporter.transitions[-1].results == {"logs": {"status": "written"}}
    assert runner.calls == [
        "prepare",
        *(f"run {phase}" for phase in ph.BUILDSPEC_PHASES),
        "cleanup",
    ]
    assert steps.calls[0] == "open" and steps.calls[-1] == "tear_down"
    assert "running BUILD\n" in steps.log.lines  # the command's output reached the log


def test_a_failing_command_in_build_still_runs_post_build() -> None:
    runner = FakeRunner(exit_statuses={ph.BUILD: 2})
    reporter, steps = run_build(runner)
    assert reporter.phases()[6:] == [
        (ph.BUILD, ph.FAILED),
        (ph.POST_BUILD, ph.SUCCEEDED),
        (ph.UPLOAD_ARTIFACTS, ph.SUCCEEDED),
        (ph.FINALIZING, ph.SUCCEEDED),
        (ph.COMPLETED, None),
    ]
    build = reporter.last.phases[6]
    assert build.contexts == (ph.PhaseContext("COMMAND_EXECUTION_ERROR", "BUILD: exit status 2"),)
    assert reporter.final_statuses() == [ph.FAILED]
    assert f"run {ph.POST_BUILD}" in runner.calls
    assert "upload_artifacts" in steps.calls


def test_a_failure_before_build_skips_to_finalizing() -> None:
    runner = FakeRunner(exit_statuses={ph.INSTALL: 1})
    reporter, steps = run_build(runner)
    assert reporter.phases()[2:] == [
        (ph.PROVISIONING, ph.SUCCEEDED),
        (ph.DOWNLOAD_SOURCE, ph.SUCCEEDED),
        (ph.INSTALL, ph.FAILED),
        (ph.FINALIZING, ph.SUCCEEDED),
        (ph.COMPLETED, None),
    ]
    assert reporter.final_statuses() == [ph.FAILED]
    assert runner.calls == ["prepare", f"run {ph.INSTALL}", "cleanup"]
    assert "upload_artifacts" not in steps.calls and "finalize" in steps.calls


def test_a_step_failure_before_build_skips_to_finalizing_too() -> None:
    steps = MemorySteps(download_failure=Failure("YAML_FILE_ERROR", "no buildspec"))
    reporter, _ = run_build(FakeRunner(), steps=steps)
    assert reporter.phases()[3:] == [
        (ph.DOWNLOAD_SOURCE, ph.FAILED),
        (ph.FINALIZING, ph.SUCCEEDED),
        (ph.COMPLETED, None),
    ]
    assert reporter.final_statuses() == [ph.FAILED]


def test_stop_build_interrupts_the_running_phase_and_finalizing_still_runs() -> None:
    reporter = MemoryReporter()
    runner = FakeRunner(exit_statuses={ph.BUILD: HANG})
    runner.on_start[ph.BUILD] = lambda: setattr(reporter, "stop", True)
    reporter, steps = run_build(runner, reporter)
    assert reporter.phases()[6:] == [
        (ph.BUILD, ph.STOPPED),
        (ph.FINALIZING, ph.SUCCEEDED),
        (ph.COMPLETED, None),
    ]
    assert reporter.final_statuses() == [ph.STOPPED]
    assert "stop" in runner.calls and f"run {ph.POST_BUILD}" not in runner.calls
    assert "finalize" in steps.calls


def test_the_build_timeout_ends_the_running_phase_timed_out() -> None:
    clock = FakeClock()
    runner = FakeRunner(exit_statuses={ph.BUILD: HANG})
    runner.on_start[ph.BUILD] = lambda: setattr(clock, "now", T0 + timedelta(minutes=61))
    reporter, steps = run_build(runner, clock=clock)
    assert reporter.phases()[6:] == [
        (ph.BUILD, ph.TIMED_OUT),
        (ph.FINALIZING, ph.SUCCEEDED),
        (ph.COMPLETED, None),
    ]
    assert reporter.last.phases[6].contexts[0].status_code == "BUILD_TIMED_OUT"
    assert reporter.final_statuses() == [ph.TIMED_OUT]
    assert "finalize" in steps.calls


def test_a_runner_error_while_provisioning_is_a_fault() -> None:
    error = RunnerError("no engine answers", ENGINE_UNAVAILABLE, fault=True)
    runner = FakeRunner(prepare_error=error)
    reporter, steps = run_build(runner)
    assert reporter.phases()[2:] == [
        (ph.PROVISIONING, ph.FAULT),
        (ph.FINALIZING, ph.SUCCEEDED),
        (ph.COMPLETED, None),
    ]
    assert reporter.last.phases[2].contexts == (
        ph.PhaseContext(ENGINE_UNAVAILABLE, "no engine answers"),
    )
    assert reporter.final_statuses() == [ph.FAULT]
    assert "download_source" not in steps.calls and "cleanup" not in runner.calls


def test_a_lost_lease_ends_the_build_as_a_fault() -> None:
    lost = threading.Event()
    runner = FakeRunner(exit_statuses={ph.BUILD: HANG}, on_start={ph.BUILD: lost.set})
    reporter, _ = run_build(runner, lease_lost=lost.is_set)
    # A fault in BUILD goes on as a failure there does; the stopped runner runs nothing more.
    assert reporter.phases()[6] == (ph.BUILD, ph.FAULT)
    assert reporter.phases()[-2:] == [(ph.FINALIZING, ph.SUCCEEDED), (ph.COMPLETED, None)]
    assert reporter.last.phases[6].contexts[0].status_code == "BUILD_WORKER_STOPPED"
    assert reporter.final_statuses() == [ph.FAULT]


DISK_CONTEXT = ph.PhaseContext("BUILD_DISK_LIMIT_EXCEEDED", "the build directory exceeded 5 bytes")


def test_a_build_directory_past_its_cap_fails_the_running_phase() -> None:
    steps = MemorySteps()
    # BUILD fills the directory and keeps running: the disk watcher stops it.
    runner = FakeRunner(exit_statuses={ph.BUILD: HANG}, on_start={ph.BUILD: steps.disk_full.set})
    reporter, _ = run_build(runner, steps=steps)
    assert reporter.phases()[6:] == [
        (ph.BUILD, ph.FAILED),
        (ph.FINALIZING, ph.SUCCEEDED),
        (ph.COMPLETED, None),
    ]
    assert reporter.last.phases[6].contexts == (DISK_CONTEXT,)
    assert reporter.final_statuses() == [ph.FAILED]
    # The runner is stopped, nothing more runs in it, and no artifacts are uploaded.
    assert "stop" in runner.calls and f"run {ph.POST_BUILD}" not in runner.calls
    assert "upload_artifacts" not in steps.calls and "finalize" in steps.calls


def test_a_phase_that_fills_the_directory_and_ends_fails_as_it_ends() -> None:
    steps = MemorySteps()
    # INSTALL ends at once, long before the watcher looks: the check as the phase ends
    # finds it.
    runner = FakeRunner(on_start={ph.INSTALL: steps.disk_full.set})
    reporter, _ = run_build(runner, steps=steps, disk_check_interval=60)
    assert reporter.phases()[4:] == [
        (ph.INSTALL, ph.FAILED),
        (ph.FINALIZING, ph.SUCCEEDED),
        (ph.COMPLETED, None),
    ]
    assert reporter.last.phases[4].contexts == (DISK_CONTEXT,)
    assert reporter.final_statuses() == [ph.FAILED]
    assert runner.calls == ["prepare", f"run {ph.INSTALL}", "stop", "cleanup"]


def test_a_stop_after_the_disk_limit_changes_nothing() -> None:
    state = ph.BuildState(phases=(PhaseRecord(ph.BUILD, T0),))
    state, effects = ph.next_phase(state, ph.LimitExceeded(T0, (DISK_CONTEXT,)))
    assert [(r.phase_type, r.phase_status) for r in state.phases] == [
        (ph.BUILD, ph.FAILED),
        (ph.FINALIZING, ph.IN_PROGRESS),
    ]
    assert effects == (ph.StopWork(ph.FAILED), ph.EnterPhase(ph.FINALIZING))
    assert ph.next_phase(state, ph.StopRequested(T0)) == (state, ())
    state, effects = ph.next_phase(state, ph.PhaseSucceeded(T0))
    assert state.build_status == ph.FAILED and effects[-1] == ph.BuildFinished(ph.FAILED)
