"""CodeBuild's build phase state machine as pure functions.

``next_phase(state, event) -> (new_state, effects)`` follows AWS's "Build phase transitions":
phases run SUBMITTED, QUEUED, PROVISIONING, DOWNLOAD_SOURCE, INSTALL, PRE_BUILD, BUILD,
POST_BUILD, UPLOAD_ARTIFACTS, FINALIZING, COMPLETED. A failure before BUILD skips to
FINALIZING (unless the buildspec phase says on-failure CONTINUE); a failure in BUILD still
runs POST_BUILD; UPLOAD_ARTIFACTS is attempted whenever BUILD ran. A timeout or a stop marks
the running phase TIMED_OUT or STOPPED and goes straight to FINALIZING (or, before
provisioning, to COMPLETED). A limit the server enforces while the build runs (its
directory's disk use) marks the running phase FAILED, stops the work the same way and
ends the build FAILED. A build abandoned where it stands (its worker is gone, it
timed out or was stopped in the queue) closes its open phase and completes at once.
Adapters perform the effects; nothing here does I/O.

`phase_to_json` / `phase_from_json` are the one codec between a phase record and the JSON
kept in a row's `phases` column (builds and build batches alike).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from forgeline.codebuild.generated import shapes

SUBMITTED = "SUBMITTED"
QUEUED = "QUEUED"
PROVISIONING = "PROVISIONING"
DOWNLOAD_SOURCE = "DOWNLOAD_SOURCE"
INSTALL = "INSTALL"
PRE_BUILD = "PRE_BUILD"
BUILD = "BUILD"
POST_BUILD = "POST_BUILD"
UPLOAD_ARTIFACTS = "UPLOAD_ARTIFACTS"
FINALIZING = "FINALIZING"
COMPLETED = "COMPLETED"

PHASE_ORDER = (
    SUBMITTED,
    QUEUED,
    PROVISIONING,
    DOWNLOAD_SOURCE,
    INSTALL,
    PRE_BUILD,
    BUILD,
    POST_BUILD,
    UPLOAD_ARTIFACTS,
    FINALIZING,
    COMPLETED,
)
BUILDSPEC_PHASES = (INSTALL, PRE_BUILD, BUILD, POST_BUILD)
# Phases before provisioning: nothing exists yet to finalize.
_NOT_PROVISIONED = (SUBMITTED, QUEUED)
# A failure here (with on-failure ABORT) skips the rest of the build up to FINALIZING.
_SKIP_TO_FINALIZING = (PROVISIONING, DOWNLOAD_SOURCE, INSTALL, PRE_BUILD, UPLOAD_ARTIFACTS)

# Phase and build statuses (botocore StatusType).
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
FAULT = "FAULT"
TIMED_OUT = "TIMED_OUT"
IN_PROGRESS = "IN_PROGRESS"
STOPPED = "STOPPED"


class InvalidTransition(ValueError):
    """An event that cannot apply to the build's current state (e.g. after COMPLETED)."""


@dataclass(frozen=True)
class PhaseContext:
    status_code: str
    message: str

    def to_botocore(self) -> shapes.PhaseContext:
        return {"statusCode": self.status_code, "message": self.message}


_EMPTY_CONTEXT: shapes.PhaseContext = {"statusCode": "", "message": ""}


@dataclass(frozen=True)
class PhaseRecord:
    phase_type: str
    start_time: datetime
    phase_status: str | None = IN_PROGRESS
    end_time: datetime | None = None
    contexts: tuple[PhaseContext, ...] = ()

    @property
    def duration_in_seconds(self) -> int | None:
        if self.end_time is None:
            return None
        return max(0, int((self.end_time - self.start_time).total_seconds()))

    def finish(
        self, status: str, at: datetime, contexts: tuple[PhaseContext, ...] = ()
    ) -> PhaseRecord:
        return replace(self, phase_status=status, end_time=at, contexts=self.contexts + contexts)

    def to_botocore(self) -> shapes.BuildPhase:
        """The record in botocore's BuildPhase shape; absent members are left out."""
        shape: shapes.BuildPhase = {"phaseType": self.phase_type, "startTime": self.start_time}
        if self.phase_status is not None:
            shape["phaseStatus"] = self.phase_status
        if self.end_time is not None:
            shape["endTime"] = self.end_time
            shape["durationInSeconds"] = self.duration_in_seconds or 0  # known once ended
        if self.contexts:
            shape["contexts"] = [context.to_botocore() for context in self.contexts]
        elif self.phase_type not in _NOT_PROVISIONED and self.end_time is not None:
            # AWS gives every ended phase one context, empty when there is nothing to say
            # (clients read contexts[0]); SUBMITTED, QUEUED and running phases have none.
            shape["contexts"] = [_EMPTY_CONTEXT]
        return shape


@dataclass(frozen=True)
class BuildState:
    phases: tuple[PhaseRecord, ...]
    build_status: str = IN_PROGRESS
    # Buildspec on-failure per phase type (INSTALL..POST_BUILD); missing means ABORT.
    on_failure: Mapping[str, str] = field(default_factory=dict)
    failed: bool = False
    faulted: bool = False
    # TIMED_OUT, STOPPED or FAILED once a timeout, a stop or a limit ended the work.
    ended_by: str | None = None

    @property
    def current_phase(self) -> str:
        return self.phases[-1].phase_type

    @property
    def build_complete(self) -> bool:
        return self.current_phase == COMPLETED

    def to_botocore(self) -> list[shapes.BuildPhase]:
        return [record.to_botocore() for record in self.phases]


# ---------------------------------------------------------------- phase records as JSON


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def phase_to_json(record: PhaseRecord) -> dict[str, Any]:
    """The record as a row's `phases` column keeps it."""
    return {
        "phaseType": record.phase_type,
        "phaseStatus": record.phase_status,
        "startTime": _iso(record.start_time),
        "endTime": _iso(record.end_time),
        "contexts": [[c.status_code, c.message] for c in record.contexts],
    }


def phase_from_json(data: Mapping[str, Any]) -> PhaseRecord:
    start = _time(data["startTime"])
    assert start is not None
    return PhaseRecord(
        phase_type=data["phaseType"],
        start_time=start,
        phase_status=data.get("phaseStatus"),
        end_time=_time(data.get("endTime")),
        contexts=tuple(PhaseContext(code, message) for code, message in data.get("contexts", [])),
    )


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class PhaseSucceeded:
    at: datetime


@dataclass(frozen=True)
class PhaseFailed:
    """The running phase failed; ``fault`` marks a platform fault rather than a build failure."""

    at: datetime
    contexts: tuple[PhaseContext, ...] = ()
    fault: bool = False


@dataclass(frozen=True)
class TimedOut:
    """The build timeout (or, while SUBMITTED/QUEUED, the queued timeout) expired."""

    at: datetime
    contexts: tuple[PhaseContext, ...] = ()


@dataclass(frozen=True)
class StopRequested:
    at: datetime


@dataclass(frozen=True)
class LimitExceeded:
    """The build went past a limit the server holds it to while it runs; `contexts` say
    which. The running phase fails, the work stops and the build ends FAILED."""

    at: datetime
    contexts: tuple[PhaseContext, ...] = ()


@dataclass(frozen=True)
class Abandoned:
    """Nothing runs the build any more (its worker is gone, or it never left the queue):
    the open phase ends ``status`` and the build completes with that status."""

    at: datetime
    status: str
    contexts: tuple[PhaseContext, ...] = ()


Event = PhaseSucceeded | PhaseFailed | TimedOut | StopRequested | LimitExceeded | Abandoned


# ---------------------------------------------------------------- effects


@dataclass(frozen=True)
class EnterPhase:
    """Start the work of this phase (run a buildspec phase, upload artifacts, finalize...)."""

    phase_type: str


@dataclass(frozen=True)
class StopWork:
    """Interrupt whatever is still running for the build (the timeout or stop reason given)."""

    reason: str


@dataclass(frozen=True)
class BuildFinished:
    build_status: str


Effect = EnterPhase | StopWork | BuildFinished


# ---------------------------------------------------------------- transitions


def submitted_build(at: datetime, on_failure: Mapping[str, str] | None = None) -> BuildState:
    """A new build, SUBMITTED at ``at``; ``on_failure`` maps phase types to ABORT/CONTINUE."""
    return BuildState(
        phases=(PhaseRecord(SUBMITTED, start_time=at),), on_failure=dict(on_failure or {})
    )


def next_phase(state: BuildState, event: Event) -> tuple[BuildState, tuple[Effect, ...]]:
    if state.build_complete:
        raise InvalidTransition(f"build already completed; cannot apply {type(event).__name__}")
    current = state.current_phase
    if isinstance(event, PhaseSucceeded):
        return _finish_current(state, SUCCEEDED, event.at, (), _following(current))
    if isinstance(event, PhaseFailed):
        status = FAULT if event.fault else FAILED
        state = replace(state, failed=True, faulted=state.faulted or event.fault)
        return _finish_current(state, status, event.at, event.contexts, _after_failure(state))
    if isinstance(event, TimedOut):
        state = replace(state, ended_by=state.ended_by or TIMED_OUT)
        effects = (StopWork(TIMED_OUT),)
        return _finish_current(
            state, TIMED_OUT, event.at, event.contexts, _after_interrupt(current), effects
        )
    if isinstance(event, StopRequested):
        if state.ended_by is not None:
            return state, ()  # already winding down; a second stop changes nothing
        state = replace(state, ended_by=STOPPED)
        return _finish_current(
            state, STOPPED, event.at, (), _after_interrupt(current), (StopWork(STOPPED),)
        )
    if isinstance(event, LimitExceeded):
        if state.ended_by is not None:
            return state, ()  # already winding down
        state = replace(state, failed=True, ended_by=FAILED)
        effects = (StopWork(FAILED),)
        return _finish_current(
            state, FAILED, event.at, event.contexts, _after_interrupt(current), effects
        )
    if isinstance(event, Abandoned):
        finished = state.phases[-1].finish(event.status, event.at, event.contexts)
        completed = PhaseRecord(COMPLETED, start_time=event.at, phase_status=None)
        new_state = replace(
            state, phases=(*state.phases[:-1], finished, completed), build_status=event.status
        )
        return new_state, (BuildFinished(event.status),)
    raise InvalidTransition(f"unknown event {event!r}")


def _following(phase: str) -> str:
    return PHASE_ORDER[PHASE_ORDER.index(phase) + 1]


def _after_failure(state: BuildState) -> str:
    current = state.current_phase
    if current in _NOT_PROVISIONED or current == FINALIZING:
        return COMPLETED
    if current in BUILDSPEC_PHASES and state.on_failure.get(current) == "CONTINUE":
        return _following(current)
    if current in _SKIP_TO_FINALIZING:
        return FINALIZING
    # BUILD -> POST_BUILD and POST_BUILD -> UPLOAD_ARTIFACTS: artifacts are always attempted.
    return _following(current)


def _after_interrupt(phase: str) -> str:
    return COMPLETED if phase in _NOT_PROVISIONED or phase == FINALIZING else FINALIZING


def _final_status(state: BuildState) -> str:
    if state.ended_by is not None:
        return state.ended_by
    if state.faulted:
        return FAULT
    return FAILED if state.failed else SUCCEEDED


def _finish_current(
    state: BuildState,
    status: str,
    at: datetime,
    contexts: tuple[PhaseContext, ...],
    target: str,
    effects: tuple[Effect, ...] = (),
) -> tuple[BuildState, tuple[Effect, ...]]:
    finished = state.phases[-1].finish(status, at, contexts)
    if target == COMPLETED:
        final = _final_status(state)
        completed = PhaseRecord(COMPLETED, start_time=at, phase_status=None)
        new_state = replace(
            state, phases=(*state.phases[:-1], finished, completed), build_status=final
        )
        return new_state, (*effects, BuildFinished(final))
    entered = PhaseRecord(target, start_time=at)
    new_state = replace(state, phases=(*state.phases[:-1], finished, entered))
    return new_state, (*effects, EnterPhase(target))
