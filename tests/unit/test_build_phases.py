"""The pure build phase state machine: every transition rule, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forgeline.codebuild import phases as ph
from forgeline.codebuild.phases import (
    BuildFinished,
    BuildState,
    EnterPhase,
    InvalidTransition,
    PhaseContext,
    PhaseFailed,
    PhaseSucceeded,
    StopRequested,
    StopWork,
    TimedOut,
    next_phase,
    submitted_build,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def advance_to(state: BuildState, phase: str) -> BuildState:
    """Succeed phases one second apart until ``phase`` is running."""
    while state.current_phase != phase:
        state, _ = next_phase(state, PhaseSucceeded(at(len(state.phases))))
    return state


def statuses(state: BuildState) -> list[tuple[str, str | None]]:
    return [(r.phase_type, r.phase_status) for r in state.phases]


def test_happy_path_visits_every_phase_and_succeeds() -> None:
    state = submitted_build(T0)
    assert state.current_phase == ph.SUBMITTED
    assert state.build_status == ph.IN_PROGRESS
    entered = []
    while not state.build_complete:
        state, effects = next_phase(state, PhaseSucceeded(at(len(state.phases))))
        entered.extend(e.phase_type for e in effects if isinstance(e, EnterPhase))
    assert entered == list(ph.PHASE_ORDER[1:-1])
    assert [r.phase_type for r in state.phases] == list(ph.PHASE_ORDER)
    assert all(r.phase_status == ph.SUCCEEDED for r in state.phases[:-1])
    assert state.build_status == ph.SUCCEEDED
    assert effects == (BuildFinished(ph.SUCCEEDED),)


@pytest.mark.parametrize("failing", [ph.PROVISIONING, ph.DOWNLOAD_SOURCE, ph.INSTALL, ph.PRE_BUILD])
def test_failure_before_build_skips_to_finalizing(failing: str) -> None:
    state = advance_to(submitted_build(T0), failing)
    state, effects = next_phase(state, PhaseFailed(at(100)))
    assert effects == (EnterPhase(ph.FINALIZING),)
    assert statuses(state)[-2:] == [(failing, ph.FAILED), (ph.FINALIZING, ph.IN_PROGRESS)]
    state, effects = next_phase(state, PhaseSucceeded(at(101)))
    assert effects == (BuildFinished(ph.FAILED),)
    assert state.build_status == ph.FAILED
    ran = [r.phase_type for r in state.phases]
    assert ph.BUILD not in ran and ph.UPLOAD_ARTIFACTS not in ran


def test_build_failure_still_runs_post_build_and_uploads_artifacts() -> None:
    state = advance_to(submitted_build(T0), ph.BUILD)
    state, effects = next_phase(state, PhaseFailed(at(50)))
    assert effects == (EnterPhase(ph.POST_BUILD),)
    state, effects = next_phase(state, PhaseSucceeded(at(51)))
    assert effects == (EnterPhase(ph.UPLOAD_ARTIFACTS),)
    state = advance_to(state, ph.COMPLETED)
    assert state.build_status == ph.FAILED
    assert (ph.BUILD, ph.FAILED) in statuses(state)
    assert (ph.UPLOAD_ARTIFACTS, ph.SUCCEEDED) in statuses(state)


def test_post_build_failure_still_uploads_artifacts() -> None:
    state = advance_to(submitted_build(T0), ph.POST_BUILD)
    state, effects = next_phase(state, PhaseFailed(at(60)))
    assert effects == (EnterPhase(ph.UPLOAD_ARTIFACTS),)


def test_upload_failure_goes_to_finalizing() -> None:
    state = advance_to(submitted_build(T0), ph.UPLOAD_ARTIFACTS)
    state, effects = next_phase(state, PhaseFailed(at(70)))
    assert effects == (EnterPhase(ph.FINALIZING),)
    state, _ = next_phase(state, PhaseSucceeded(at(71)))
    assert state.build_status == ph.FAILED


@pytest.mark.parametrize(
    ("failing", "following"),
    [(ph.INSTALL, ph.PRE_BUILD), (ph.PRE_BUILD, ph.BUILD), (ph.BUILD, ph.POST_BUILD)],
)
def test_on_failure_continue_moves_to_the_next_phase_but_fails_the_build(
    failing: str, following: str
) -> None:
    state = advance_to(submitted_build(T0, on_failure={failing: "CONTINUE"}), failing)
    state, effects = next_phase(state, PhaseFailed(at(30)))
    assert effects == (EnterPhase(following),)
    state = advance_to(state, ph.COMPLETED)
    assert state.build_status == ph.FAILED
    assert [r.phase_type for r in state.phases] == list(ph.PHASE_ORDER)


def test_failure_while_queued_completes_without_finalizing() -> None:
    state = advance_to(submitted_build(T0), ph.QUEUED)
    state, effects = next_phase(state, PhaseFailed(at(5)))
    assert effects == (BuildFinished(ph.FAILED),)
    assert state.build_complete


def test_fault_marks_the_phase_and_build_as_fault() -> None:
    state = advance_to(submitted_build(T0), ph.PROVISIONING)
    state, _ = next_phase(state, PhaseFailed(at(5), fault=True))
    assert statuses(state)[-2] == (ph.PROVISIONING, ph.FAULT)
    state, _ = next_phase(state, PhaseSucceeded(at(6)))
    assert state.build_status == ph.FAULT


def test_finalizing_failure_completes_the_build_as_failed() -> None:
    state = advance_to(submitted_build(T0), ph.FINALIZING)
    state, effects = next_phase(state, PhaseFailed(at(90)))
    assert effects == (BuildFinished(ph.FAILED),)


def test_build_timeout_marks_the_phase_and_skips_to_finalizing() -> None:
    state = advance_to(submitted_build(T0), ph.BUILD)
    context = PhaseContext("BUILD_TIMED_OUT", "Build has timed out.")
    state, effects = next_phase(state, TimedOut(at(3600), contexts=(context,)))
    assert effects == (StopWork(ph.TIMED_OUT), EnterPhase(ph.FINALIZING))
    assert statuses(state)[-2:] == [(ph.BUILD, ph.TIMED_OUT), (ph.FINALIZING, ph.IN_PROGRESS)]
    assert state.phases[-2].contexts == (context,)
    state, effects = next_phase(state, PhaseSucceeded(at(3601)))
    assert effects == (BuildFinished(ph.TIMED_OUT),)
    assert state.build_status == ph.TIMED_OUT
    assert ph.POST_BUILD not in [r.phase_type for r in state.phases]


def test_queued_timeout_completes_directly() -> None:
    state = advance_to(submitted_build(T0), ph.QUEUED)
    state, effects = next_phase(state, TimedOut(at(480)))
    assert effects == (StopWork(ph.TIMED_OUT), BuildFinished(ph.TIMED_OUT))
    assert statuses(state)[-2] == (ph.QUEUED, ph.TIMED_OUT)
    assert state.build_status == ph.TIMED_OUT


def test_stop_marks_the_phase_stopped_then_finalizes() -> None:
    state = advance_to(submitted_build(T0), ph.INSTALL)
    state, effects = next_phase(state, StopRequested(at(20)))
    assert effects == (StopWork(ph.STOPPED), EnterPhase(ph.FINALIZING))
    assert statuses(state)[-2] == (ph.INSTALL, ph.STOPPED)
    # A second stop while finalizing changes nothing.
    again, effects = next_phase(state, StopRequested(at(21)))
    assert (again, effects) == (state, ())
    state, effects = next_phase(state, PhaseSucceeded(at(22)))
    assert effects == (BuildFinished(ph.STOPPED),)
    assert state.build_status == ph.STOPPED


def test_stop_before_provisioning_completes_directly() -> None:
    state, effects = next_phase(submitted_build(T0), StopRequested(at(1)))
    assert effects == (StopWork(ph.STOPPED), BuildFinished(ph.STOPPED))
    assert state.build_complete and state.build_status == ph.STOPPED


def test_failure_after_stop_keeps_the_stopped_status() -> None:
    state = advance_to(submitted_build(T0), ph.BUILD)
    state, _ = next_phase(state, StopRequested(at(10)))
    state, _ = next_phase(state, PhaseFailed(at(11)))
    assert state.build_status == ph.STOPPED


def test_events_after_completion_are_rejected() -> None:
    state = advance_to(submitted_build(T0), ph.COMPLETED)
    with pytest.raises(InvalidTransition):
        next_phase(state, PhaseSucceeded(at(100)))


def test_records_have_botocore_build_phase_shape() -> None:
    state = submitted_build(T0)
    state, _ = next_phase(state, PhaseSucceeded(at(2.7)))
    state = advance_to(state, ph.INSTALL)
    failure = PhaseContext(
        "COMMAND_EXECUTION_ERROR",
        "Error while executing command: make. Reason: exit status 2",
    )
    state, _ = next_phase(state, PhaseFailed(at(100), contexts=(failure,)))
    state = advance_to(state, ph.COMPLETED)
    shapes = state.to_botocore()
    assert shapes[0] == {
        "phaseType": "SUBMITTED",
        "phaseStatus": "SUCCEEDED",
        "startTime": T0,
        "endTime": at(2.7),
        "durationInSeconds": 2,
    }
    provisioning = next(s for s in shapes if s["phaseType"] == "PROVISIONING")
    assert provisioning["contexts"] == [{"statusCode": "", "message": ""}]
    install = next(s for s in shapes if s["phaseType"] == "INSTALL")
    assert install["phaseStatus"] == "FAILED"
    assert install["contexts"] == [
        {
            "statusCode": "COMMAND_EXECUTION_ERROR",
            "message": "Error while executing command: make. Reason: exit status 2",
        }
    ]
    assert shapes[-1] == {"phaseType": "COMPLETED", "startTime": shapes[-2]["endTime"]}
    in_progress = submitted_build(T0).to_botocore()[0]
    assert in_progress == {
        "phaseType": "SUBMITTED",
        "phaseStatus": "IN_PROGRESS",
        "startTime": T0,
    }
