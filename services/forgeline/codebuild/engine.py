"""Run one claimed build from PROVISIONING to COMPLETED.

The engine drives the pure phase state machine (phases.py): each phase's work returns an
event, the machine says where to go next, and every transition goes to the reporter
(build_reporter.py), which writes it to the build row with its events. Everything the
engine touches is handed to it: the runner (the container or host sandbox, runners/), the
steps (the work of each phase on the build's directory, sources and stores; build_steps.py)
and the clock. So the orchestration below is tested with in-memory fakes of all three.

A watcher thread polls for StopBuild, the build timeout and a lost lease; any of them
stops the runner, and the interrupted phase ends STOPPED, TIMED_OUT or FAULT before
FINALIZING cleans up. A second one asks the steps every few seconds whether the build
directory is past its disk cap (a walk of the tree, kept off the first so a slow walk
never delays a stop); the steps are asked again as each phase that writes there ends.
Past the cap, the phase ends FAILED saying so, the runner is stopped and FINALIZING runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from forgeline.codebuild.build_reporter import BuildReporter, Transition
from forgeline.codebuild.phases import (
    BUILDSPEC_PHASES,
    COMPLETED,
    DOWNLOAD_SOURCE,
    FINALIZING,
    PROVISIONING,
    UPLOAD_ARTIFACTS,
    BuildFinished,
    BuildState,
    EnterPhase,
    Event,
    LimitExceeded,
    PhaseContext,
    PhaseFailed,
    PhaseRecord,
    PhaseSucceeded,
    StopRequested,
    StopWork,
    TimedOut,
    next_phase,
)
from forgeline.codebuild.runners import RunInterrupted, Runner, RunnerError, RunnerSession, RunSpec
from forgeline.core.db import utcnow

logger = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 0.25
DISK_CHECK_SECONDS = 2.0
# The disk watcher waits at least this many times as long as its last walk took.
DISK_CHECK_SHARE = 10
# Phases whose work writes into the build directory: the disk cap is checked as they end.
_WRITING_PHASES = (DOWNLOAD_SOURCE, *BUILDSPEC_PHASES)

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True)
class Failure:
    """Why a step failed: the phase context it records; `fault` is the server's failure."""

    code: str
    message: str
    fault: bool = False


# What a step returns: None when it succeeded.
StepOutcome = Failure | None


@dataclass(frozen=True)
class PhaseCommand:
    """The command that runs a buildspec phase in the runner."""

    argv: Sequence[str]
    cwd: str
    user: str | None = None


class PhaseLog(Protocol):
    """The build's log as the engine writes to it."""

    def write(self, chunk: bytes) -> None: ...

    def note(self, text: str) -> None: ...

    def entering(self, phase_type: str) -> None: ...

    def phase_complete(self, record: PhaseRecord) -> None: ...


class BuildSteps(Protocol):
    """The work of each phase, which the engine calls in the order the machine says."""

    @property
    def log(self) -> PhaseLog: ...

    @property
    def results(self) -> Mapping[str, Any]:
        """What the build produced so far (artifacts, logs, resolved versions...)."""
        ...

    @property
    def on_failure(self) -> Mapping[str, str]:
        """The buildspec's on-failure per phase type, known once DOWNLOAD_SOURCE read it."""
        ...

    def open(self) -> None:
        """Before the first transition: open the log."""
        ...

    def run_spec(self, runner: Runner) -> RunSpec | Failure:
        """PROVISIONING: make the build's directory and say what the runner prepares."""
        ...

    def runner_failure(self, error: RunnerError) -> Failure:
        """PROVISIONING: what the build records when the runner could not prepare."""
        ...

    def provisioned(self, runner: Runner, session: RunnerSession) -> None: ...

    def download_source(self) -> StepOutcome: ...

    def before_phase(self, phase_type: str) -> StepOutcome:
        """A buildspec phase is about to run (INSTALL restores the cache)."""
        ...

    def phase_command(self, phase_type: str) -> PhaseCommand | None:
        """The phase's command; None when the buildspec gives the phase nothing to run."""
        ...

    def phase_outcome(self, phase_type: str, exit_status: int) -> StepOutcome: ...

    def upload_artifacts(self, interrupted: bool) -> StepOutcome: ...

    def finalize(self) -> StepOutcome: ...

    def check_disk(self) -> Failure | None:
        """The build directory against its disk cap: a Failure once it is past it (None
        when it is not, or has no cap). Called from a thread of its own, and as phases end."""
        ...

    def tear_down(self) -> None:
        """After the runner is released: revoke what was issued, close the log, clean up."""
        ...


class BuildRun:
    """One run of one build, from its current phase to COMPLETED."""

    def __init__(
        self,
        build_id: str,
        phases: Sequence[PhaseRecord],
        steps: BuildSteps,
        runner: Runner,
        reporter: BuildReporter,
        *,
        deadline: dt.datetime,
        clock: Clock = utcnow,
        lease_lost: Callable[[], bool] = lambda: False,
        watch_interval: float = WATCH_INTERVAL_SECONDS,
        disk_check_interval: float = DISK_CHECK_SECONDS,
    ) -> None:
        self.build_id = build_id
        self.steps = steps
        self.runner = runner
        self.reporter = reporter
        self.deadline = deadline
        self.clock = clock
        self.lease_lost = lease_lost
        self.watch_interval = watch_interval
        self.disk_check_interval = disk_check_interval
        self.state = BuildState(phases=tuple(phases))
        self.runner_session: RunnerSession | None = None
        self._interrupt: Event | None = None
        self._interrupt_used = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        # Set once everything the run held is released (possibly in a thread of its own).
        self.torn_down = threading.Event()

    # ------------------------------------------------------------ the run

    def run(self) -> None:
        watcher = threading.Thread(target=self._watch, name="build-watch", daemon=True)
        disk_watcher = threading.Thread(
            target=self._watch_disk, name="build-disk-watch", daemon=True
        )
        try:
            self.steps.open()
            watcher.start()
            disk_watcher.start()
            self._advance(PhaseSucceeded(self.clock()))
            while not self.state.build_complete:
                self._advance(self._work(self.state.current_phase))
        finally:
            self._done.set()
            if self.state.build_complete:
                # Removing a container takes a few hundred milliseconds: the build is
                # over, so its slot goes to the next build while that happens.
                threading.Thread(target=self._tear_down, name="build-teardown").start()
            else:
                self._tear_down()

    def _tear_down(self) -> None:
        try:
            self._release()
            self.steps.tear_down()
        finally:
            self.torn_down.set()

    def _work(self, phase: str) -> Event:
        pending = self._take_interrupt()
        if pending is not None:
            return pending
        try:
            event = self._event(self._phase_work(phase))
        except RunInterrupted:
            event = PhaseFailed(self.clock())
        pending = self._take_interrupt()
        if pending is not None:
            return pending
        if phase in _WRITING_PHASES:
            # The phase may have filled the directory between two of the watcher's looks.
            over = self._disk_limit_event()
            if over is not None and self._claim_interrupt(over):
                return over
        return event

    def _phase_work(self, phase: str) -> StepOutcome:
        if phase == PROVISIONING:
            return self._provision()
        if phase == DOWNLOAD_SOURCE:
            outcome = self.steps.download_source()
            with self._lock:
                self.state = replace(self.state, on_failure=dict(self.steps.on_failure))
            return outcome
        if phase in BUILDSPEC_PHASES:
            return self._buildspec_phase(phase)
        if phase == UPLOAD_ARTIFACTS:
            return self.steps.upload_artifacts(self._interrupted())
        if phase == FINALIZING:
            return self.steps.finalize()
        return None

    def _event(self, outcome: StepOutcome) -> Event:
        if outcome is None:
            return PhaseSucceeded(self.clock())
        # The log shows the context once the phase completes (PhaseLog.phase_complete).
        context = PhaseContext(outcome.code, outcome.message)
        return PhaseFailed(self.clock(), (context,), fault=outcome.fault)

    # ------------------------------------------------------------ phases

    def _provision(self) -> StepOutcome:
        spec = self.steps.run_spec(self.runner)
        if isinstance(spec, Failure):
            return spec
        try:
            self.runner_session = self.runner.prepare(spec)
        except RunnerError as exc:
            return self.steps.runner_failure(exc)
        self.steps.provisioned(self.runner, self.runner_session)
        return None

    def _buildspec_phase(self, phase_type: str) -> StepOutcome:
        outcome = self.steps.before_phase(phase_type)
        if outcome is not None:
            return outcome
        command = self.steps.phase_command(phase_type)
        if command is None:
            return None
        assert self.runner_session is not None
        exit_status = self.runner_session.run(
            command.argv, cwd=command.cwd, on_output=self.steps.log.write, user=command.user
        )
        return self.steps.phase_outcome(phase_type, int(exit_status))

    # ------------------------------------------------------------ transitions

    def _advance(self, event: Event) -> None:
        with self._lock:
            self.state, effects = next_phase(self.state, event)
        finished = self.state.phases[-2] if len(self.state.phases) > 1 else None
        if finished is not None:
            self.steps.log.phase_complete(finished)
        for effect in effects:
            if isinstance(effect, StopWork) and self.runner_session is not None:
                self.runner_session.stop()
        final_status = next(
            (effect.build_status for effect in effects if isinstance(effect, BuildFinished)), None
        )
        self.reporter.record(
            Transition(self.state, finished, dict(self.steps.results), final_status, self.clock())
        )
        for effect in effects:
            if isinstance(effect, EnterPhase):
                self.steps.log.entering(effect.phase_type)

    def _claim_interrupt(self, event: Event) -> bool:
        """Record EVENT as the build's interrupt, already delivered; False if another
        interrupt came first (it is delivered instead)."""
        with self._lock:
            if self._interrupt is not None:
                return False
            self._interrupt = event
            self._interrupt_used = True
            return True

    def _take_interrupt(self) -> Event | None:
        with self._lock:
            if self._interrupt is None or self._interrupt_used:
                return None
            self._interrupt_used = True
            return self._interrupt

    def _watch(self) -> None:
        """Turn StopBuild, the build timeout and a lost lease into an interrupt."""
        while not self._done.wait(self.watch_interval):
            event: Event | None = None
            now = self.clock()
            if self.lease_lost():
                # Another worker may own the build now: stop working on it at once.
                self.abort("This worker lost the build's lease before the build ended.")
                return
            if now >= self.deadline:
                event = TimedOut(now, (PhaseContext("BUILD_TIMED_OUT", "Build has timed out. "),))
            elif self.reporter.stop_requested():
                event = StopRequested(now)
            if event is None:
                continue
            self._interrupt_with(event)
            return

    def _watch_disk(self) -> None:
        """Turn a build directory past its disk cap into an interrupt."""
        pause = self.disk_check_interval
        while not self._done.wait(pause):
            if self.state.current_phase in (FINALIZING, COMPLETED):
                return  # the build's commands are over
            started = time.monotonic()
            event = self._disk_limit_event()
            if event is not None:
                self._interrupt_with(event)
                return
            # A tree of many files takes long to walk: wait long enough that measuring
            # it takes at most 1/DISK_CHECK_SHARE of the time (of one core).
            pause = max(self.disk_check_interval, (time.monotonic() - started) * DISK_CHECK_SHARE)

    def _disk_limit_event(self) -> Event | None:
        try:
            failure = self.steps.check_disk()
        except Exception:
            logger.warning("could not measure the directory of %s", self.build_id, exc_info=True)
            return None
        if failure is None:
            return None
        return LimitExceeded(self.clock(), (PhaseContext(failure.code, failure.message),))

    def abort(self, message: str) -> None:
        """End the build soon, as a fault: its worker is shutting down (any thread)."""
        context = PhaseContext("BUILD_WORKER_STOPPED", message)
        self._interrupt_with(PhaseFailed(self.clock(), (context,), fault=True))

    # ------------------------------------------------------------ helpers

    def _interrupt_with(self, event: Event) -> None:
        """End the running command; the first interrupt wins (any thread)."""
        with self._lock:
            if self._interrupt is None:
                self._interrupt = event
        session = self.runner_session
        if session is not None:
            session.stop()

    def _interrupted(self) -> bool:
        with self._lock:
            return self._interrupt is not None

    def _release(self) -> None:
        """Remove the container (or kill every process the build left behind)."""
        session, self.runner_session = self.runner_session, None
        if session is not None:
            try:
                session.cleanup()
            except Exception:
                logger.warning("could not clean up build %s", self.build_id, exc_info=True)
