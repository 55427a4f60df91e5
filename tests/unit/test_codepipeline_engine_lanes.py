"""The pipeline's lanes on their own: who may enter a stage under each execution mode."""

from __future__ import annotations

import json

import pytest

from forgeline.codepipeline.engine.lanes import (
    Arrive,
    Decision,
    DisableTransition,
    EnableTransition,
    Grant,
    Leave,
    StageOccupancy,
    StageRequest,
    Withdraw,
    grant,
)


def ask(mode: str, occupancy: StageOccupancy, *requests: StageRequest) -> Decision:
    """Apply ``requests`` in turn; the last decision, its grants and supersessions summed."""
    granted: list[Grant] = []
    superseded: list[str] = []
    decision = Decision(occupancy)
    for request in requests:
        decision = grant(mode, decision.occupancy, request)
        granted.extend(decision.granted)
        superseded.extend(decision.superseded)
    return Decision(decision.occupancy, tuple(granted), tuple(superseded))


def test_parallel_grants_every_arrival_at_once_and_keeps_no_lanes():
    decision = ask(
        "PARALLEL",
        StageOccupancy(),
        Arrive("Build", "e1", 1),
        Arrive("Build", "e2", 2),
        Arrive("Build", "e3", 3),
    )
    assert decision.granted == (Grant("Build", "e1"), Grant("Build", "e2"), Grant("Build", "e3"))
    assert decision.superseded == ()
    assert decision.occupancy == StageOccupancy()
    assert grant("PARALLEL", decision.occupancy, Leave("Build", "e1")).granted == ()


def test_queued_lets_one_in_and_the_rest_follow_in_arrival_order():
    occupancy = ask(
        "QUEUED",
        StageOccupancy(),
        Arrive("Build", "e1", 1),
        Arrive("Build", "e3", 3),
        Arrive("Build", "e2", 2),
    ).occupancy
    assert occupancy.holder("Build") == "e1"
    assert occupancy.waiters("Build") == ("e3", "e2")  # arrival order, not start order

    decision = grant("QUEUED", occupancy, Leave("Build", "e1"))
    assert decision.granted == (Grant("Build", "e3"),)
    assert decision.occupancy.waiters("Build") == ("e2",)
    # Leaving a stage one does not hold changes nothing.
    assert grant("QUEUED", decision.occupancy, Leave("Build", "e1")).granted == ()


def test_superseded_keeps_only_the_newest_waiting_execution():
    decision = ask(
        "SUPERSEDED",
        StageOccupancy(),
        Arrive("Build", "e1", 1),
        Arrive("Build", "e2", 2),
        Arrive("Build", "e3", 3),
    )
    assert decision.granted == (Grant("Build", "e1"),)
    assert decision.superseded == ("e2",)  # never e1: it is inside the stage
    assert decision.occupancy.waiters("Build") == ("e3",)

    # An older execution arriving behind a newer one is the one superseded.
    late = grant("SUPERSEDED", decision.occupancy, Arrive("Build", "e0", 0))
    assert late.superseded == ("e0",)
    assert late.occupancy.waiters("Build") == ("e3",)

    released = grant("SUPERSEDED", decision.occupancy, Leave("Build", "e1"))
    assert released.granted == (Grant("Build", "e3"),)
    assert released.occupancy.holders == {"Build": "e3"}


def test_stages_are_lanes_of_their_own():
    decision = ask(
        "SUPERSEDED",
        StageOccupancy(),
        Arrive("Source", "e2", 2),
        Arrive("Build", "e1", 1),
    )
    assert decision.granted == (Grant("Source", "e2"), Grant("Build", "e1"))
    assert decision.superseded == ()


@pytest.mark.parametrize("mode", ["QUEUED", "SUPERSEDED"])
def test_a_withdrawn_execution_frees_its_stage_and_its_place(mode: str):
    occupancy = ask(
        mode, StageOccupancy(), Arrive("Build", "e1", 1), Arrive("Build", "e2", 2)
    ).occupancy
    gone_waiter = grant(mode, occupancy, Withdraw("e2"))
    assert gone_waiter.occupancy.waiters("Build") == ()
    assert gone_waiter.occupancy.holder("Build") == "e1"

    gone_holder = grant(mode, occupancy, Withdraw("e1"))
    assert gone_holder.granted == (Grant("Build", "e2"),)


def test_a_repeated_arrival_is_harmless():
    occupancy = ask("QUEUED", StageOccupancy(), Arrive("Build", "e1", 1)).occupancy
    again = grant("QUEUED", occupancy, Arrive("Build", "e1", 1))
    assert again.granted == (Grant("Build", "e1"),)
    assert again.occupancy == occupancy
    waiting = ask("QUEUED", occupancy, Arrive("Build", "e2", 2), Arrive("Build", "e2", 2))
    assert waiting.occupancy.waiters("Build") == ("e2",)


@pytest.mark.parametrize(
    ("mode", "entering", "superseded"),
    [
        ("QUEUED", ("e1",), ()),
        ("SUPERSEDED", ("e2",), ("e1",)),
        ("PARALLEL", ("e1", "e2"), ()),
    ],
)
def test_a_disabled_transition_holds_everyone_under_the_modes_rules(
    mode: str, entering: tuple[str, ...], superseded: tuple[str, ...]
):
    held = ask(
        mode,
        StageOccupancy(),
        DisableTransition("Deploy"),
        Arrive("Deploy", "e1", 1),
        Arrive("Deploy", "e2", 2),
    )
    assert held.granted == ()
    assert held.superseded == superseded
    assert held.occupancy.disabled == frozenset({"Deploy"})

    opened = grant(mode, held.occupancy, EnableTransition("Deploy"))
    assert opened.granted == tuple(Grant("Deploy", e) for e in entering)
    assert opened.occupancy.disabled == frozenset()


def test_disabling_a_transition_never_evicts_the_execution_inside():
    occupancy = ask("QUEUED", StageOccupancy(), Arrive("Deploy", "e1", 1)).occupancy
    decision = ask("QUEUED", occupancy, DisableTransition("Deploy"), Leave("Deploy", "e1"))
    assert decision.occupancy.holder("Deploy") is None
    waiting = ask("QUEUED", decision.occupancy, Arrive("Deploy", "e2", 2))
    assert waiting.granted == ()


def test_the_occupancy_round_trips_through_its_json_document():
    occupancy = ask(
        "QUEUED",
        StageOccupancy(),
        Arrive("Build", "e1", 1),
        Arrive("Build", "e2", 2),
        DisableTransition("Deploy"),
        Arrive("Deploy", "e0", 0),
    ).occupancy
    document = json.loads(json.dumps(occupancy.to_document()))
    assert StageOccupancy.from_document(document) == occupancy
    assert document == {
        "holders": {"Build": "e1"},
        "waiting": {
            "Build": [{"executionId": "e2", "order": 2}],
            "Deploy": [{"executionId": "e0", "order": 0}],
        },
        "disabled": ["Deploy"],
    }
