"""Endings without a runner go through the phase machine; one codec keeps phase records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forgeline.codebuild import phases as ph
from forgeline.codebuild.phases import (
    Abandoned,
    BuildFinished,
    BuildState,
    InvalidTransition,
    PhaseContext,
    PhaseRecord,
    PhaseSucceeded,
    next_phase,
    phase_from_json,
    phase_to_json,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=3)


def queued() -> BuildState:
    return BuildState(
        phases=(PhaseRecord(ph.SUBMITTED, T0).finish(ph.SUCCEEDED, T0), PhaseRecord(ph.QUEUED, T0))
    )


def test_abandoning_closes_the_open_phase_and_completes_with_the_status() -> None:
    context = PhaseContext("BUILD_TIMED_OUT", "Build has timed out in the queue.")
    state, effects = next_phase(queued(), Abandoned(T1, ph.TIMED_OUT, (context,)))
    assert [(r.phase_type, r.phase_status) for r in state.phases] == [
        (ph.SUBMITTED, ph.SUCCEEDED),
        (ph.QUEUED, ph.TIMED_OUT),
        (ph.COMPLETED, None),
    ]
    assert state.phases[1].contexts == (context,)
    assert state.phases[1].end_time == T1 == state.phases[2].start_time
    assert state.build_status == ph.TIMED_OUT and state.build_complete
    assert effects == (BuildFinished(ph.TIMED_OUT),)


def test_abandoning_a_running_build_skips_what_was_left() -> None:
    state = queued()
    while state.current_phase != ph.BUILD:
        state, _ = next_phase(state, PhaseSucceeded(T0))
    state, effects = next_phase(state, Abandoned(T1, ph.FAILED))
    assert [r.phase_type for r in state.phases][-2:] == [ph.BUILD, ph.COMPLETED]
    assert state.phases[-2].phase_status == ph.FAILED
    assert effects == (BuildFinished(ph.FAILED),)
    with pytest.raises(InvalidTransition):
        next_phase(state, Abandoned(T1, ph.FAILED))


def test_a_phase_record_survives_its_json() -> None:
    record = PhaseRecord(ph.BUILD, T0).finish(ph.FAILED, T1, (PhaseContext("CODE", "message"),))
    stored = phase_to_json(record)
    assert stored == {
        "phaseType": ph.BUILD,
        "phaseStatus": ph.FAILED,
        "startTime": T0.isoformat(),
        "endTime": T1.isoformat(),
        "contexts": [["CODE", "message"]],
    }
    assert phase_from_json(stored) == record
    completed = PhaseRecord(ph.COMPLETED, T1, phase_status=None)
    assert phase_from_json(phase_to_json(completed)) == completed
