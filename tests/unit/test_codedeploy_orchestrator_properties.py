"""Rules that hold for any fleet, healthy minimum and pattern of failing agents."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from forgeline.codedeploy.orchestrator.events import InstanceSpec
from forgeline.codedeploy.orchestrator.fake import InMemoryDeploymentWorld
from forgeline.codedeploy.orchestrator.lifecycle import in_place_steps
from forgeline.codedeploy.orchestrator.options import DeploymentOptions
from forgeline.codedeploy.orchestrator.rollout import (
    FLEET_PERCENT,
    HOST_COUNT,
    MOST_CONCURRENCY,
    HealthClass,
    MinimumHealthyHosts,
)
from forgeline.codedeploy.orchestrator.state import new_deployment

ALL_EVENTS = [step.name for step in in_place_steps(with_traffic_control=True)]
RANK = {health: rank for rank, health in enumerate(HealthClass)}

rules = st.one_of(
    st.builds(MinimumHealthyHosts, st.just(HOST_COUNT), st.integers(0, 12)),
    st.builds(MinimumHealthyHosts, st.just(FLEET_PERCENT), st.integers(0, 100)),
    st.builds(MinimumHealthyHosts, st.just(MOST_CONCURRENCY), st.integers(1, 4)),
)
# What an instance's agent does: nothing odd, fail an event, hang on one, or fall silent.
behaviours = st.one_of(
    st.none(),
    st.tuples(st.just("fail"), st.sampled_from(ALL_EVENTS)),
    st.tuples(st.just("hang"), st.sampled_from(ALL_EVENTS)),
    st.just(("silent", "")),
)
instances = st.lists(
    st.tuples(st.sampled_from(list(HealthClass)), st.booleans(), behaviours), max_size=9
)


@settings(max_examples=250, deadline=None)
@given(
    rule=rules,
    fleet=instances,
    traffic_control=st.booleans(),
    ignore_stop_failures=st.booleans(),
)
def test_any_deployment_settles_within_its_healthy_minimum(
    rule, fleet, traffic_control, ignore_stop_failures
):
    options = DeploymentOptions(
        traffic_control=traffic_control,
        ignore_application_stop_failures=ignore_stop_failures,
        agent_pickup_timeout_seconds=30,
        event_run_timeout_seconds=60,
    )
    world = InMemoryDeploymentWorld(new_deployment("d-PROPERTY1", "custom", rule, options))
    specs = []
    for index, (health, previous, behaviour) in enumerate(fleet):
        name = f"host-{index}"
        specs.append(InstanceSpec(name, health, has_previous_revision=previous))
        if behaviour is not None:
            kind, event = behaviour
            if kind == "fail":
                world.fail(name, event)
                world.fail_server_step(name, event, "the load balancer refused")
            elif kind == "hang":
                world.hang(name, event)
            else:
                world.silence(name)
    world.start(*specs)
    world.run()

    state = world.state
    plan = state.plan
    assert state.finished and plan is not None
    assert {instance.status for instance in state.instances} <= {"Succeeded", "Failed", "Skipped"}
    assert all(not event.open for instance in state.instances for event in instance.events)
    assert state.timers == ()

    # Instances start in health order, and never more than the minimum allows.
    ranks = [RANK[state.instance(name).health] for name in world.start_order]  # type: ignore[union-attr]
    assert ranks == sorted(ranks)
    assert world.peak_in_flight <= plan.batch_size
    in_flight: set[str] = set()
    failed = 0
    for name, status in world.instance_statuses:
        if status == "InProgress":
            in_flight.add(name)
            assert plan.fleet_size - len(in_flight) - failed >= plan.minimum_healthy
        else:
            in_flight.discard(name)
            failed += status == "Failed"

    # Each instance's commands follow the lifecycle order, one event at a time.
    for instance in state.instances:
        positions = [ALL_EVENTS.index(event) for event in world.commands_for(instance.instance_id)]
        assert positions == sorted(set(positions))

    succeeded = [i for i in state.instances if i.status == "Succeeded"]
    if state.status == "Succeeded":
        assert len(succeeded) >= plan.success_threshold
        assert state.error is None
    else:
        assert state.status == "Failed" and state.error is not None
        if state.error.code in ("NO_INSTANCES", "HEALTH_CONSTRAINTS_INVALID"):
            assert world.commands == [] and world.server_steps == []
        else:
            assert state.error.code == "HEALTH_CONSTRAINTS"
            assert any(instance.status == "Failed" for instance in state.instances)
