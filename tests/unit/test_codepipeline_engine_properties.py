"""Rules that hold for any pipeline shape, execution mode and pattern of failing actions."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from forgeline.codepipeline.engine.fake import Fail, Hang, InMemoryPipelineWorld, Outcome, Succeed
from forgeline.codepipeline.engine.plan import plan_from_declaration
from forgeline.codepipeline.engine.state import FINAL_STATUSES, IN_PROGRESS, STOPPING

outcomes: st.SearchStrategy[Outcome] = st.sampled_from([Succeed(), Succeed(), Fail(), Hang()])
# Each stage: the runOrder of each of its actions.
shapes = st.lists(st.lists(st.integers(1, 3), min_size=1, max_size=3), min_size=2, max_size=4)


def declaration(shape: list[list[int]], mode: str) -> dict[str, Any]:
    stages = []
    for index, run_orders in enumerate(shape):
        actions = [
            {
                "name": f"S{index}A{number}",
                "actionTypeId": {
                    "category": "Build",
                    "owner": "AWS",
                    "provider": "CodeBuild",
                    "version": "1",
                },
                "runOrder": run_order,
                "configuration": {"ProjectName": "p"},
            }
            for number, run_order in enumerate(run_orders)
        ]
        stages.append({"name": f"Stage{index}", "actions": actions})
    return {"name": "p", "stages": stages, "pipelineType": "V2", "executionMode": mode}


@settings(max_examples=150, deadline=None)
@given(
    shape=shapes,
    mode=st.sampled_from(["SUPERSEDED", "QUEUED", "PARALLEL"]),
    scripts=st.dictionaries(st.integers(0, 11), st.lists(outcomes, max_size=4)),
    gaps=st.lists(st.integers(0, 6), min_size=1, max_size=4),
)
def test_every_execution_ends_and_the_lanes_hold_no_one_twice(
    shape: list[list[int]], mode: str, scripts: dict[int, list[Outcome]], gaps: list[int]
):
    plan = plan_from_declaration(declaration(shape, mode), version=1)
    names = [action.name for stage in plan.stages for action in stage.actions]
    world = InMemoryPipelineWorld(plan)
    for index, script in scripts.items():
        if index < len(names):
            world.script(names[index], *script)

    executions = []
    for gap in gaps:
        executions.append(world.start())
        target = len(world.transitions) + gap
        world.run(until=lambda w, target=target: len(w.transitions) >= target)
    world.run()

    for execution in executions:
        state = world.state(execution)
        assert state.status in FINAL_STATUSES
        assert state.timers == () and state.waiting_for is None
        reached = [stage.status for stage in state.stages if stage.status is not None]
        if state.status == "Succeeded":
            assert reached == ["Succeeded"] * len(plan.stages)
        if state.status == "Failed":
            assert reached[:-1] == ["Succeeded"] * (len(reached) - 1)
            assert reached[-1] == "Failed"
    assert world.occupancy.holders == {} and world.occupancy.waiting == {}

    ids = [run.action_execution_id for _, run in world.runs]
    assert len(ids) == len(set(ids))

    # Outside PARALLEL mode a stage never has two executions in it at once.
    inside: dict[str, set[str]] = {}
    for execution, stage, status in world.stage_changes:
        occupants = inside.setdefault(stage, set())
        if status in (IN_PROGRESS, STOPPING):
            occupants.add(execution)
        else:
            occupants.discard(execution)
        if mode != "PARALLEL":
            assert len(occupants) <= 1, (stage, occupants)
    if mode == "QUEUED":
        assert world.superseded == []
