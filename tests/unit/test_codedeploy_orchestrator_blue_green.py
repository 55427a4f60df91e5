"""The blue/green Server deployment (orchestrator/blue_green.py), driven through the
in-memory world: Green is installed, traffic moves to it and away from Blue in AWS's order,
the waits for ContinueDeployment and before termination hold, and failures leave traffic
where it was (or ask for the way back)."""

from __future__ import annotations

from dataclasses import replace

from forgeline.codedeploy.orchestrator import messages
from forgeline.codedeploy.orchestrator.events import (
    ContinueRequested,
    InstanceSpec,
    StopRequested,
)
from forgeline.codedeploy.orchestrator.fake import InMemoryDeploymentWorld
from forgeline.codedeploy.orchestrator.options import BlueGreenOptions, DeploymentOptions
from forgeline.codedeploy.orchestrator.rollout import ONE_AT_A_TIME, MinimumHealthyHosts
from forgeline.codedeploy.orchestrator.state import new_deployment

INSTALL = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]
ALLOW = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
BLOCK = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]


def world(
    rule: MinimumHealthyHosts = ONE_AT_A_TIME, *, is_rollback: bool = False, **blue_green: object
) -> InMemoryDeploymentWorld:
    options = DeploymentOptions(
        deployment_type="BLUE_GREEN",
        traffic_control=True,
        target_groups=("web",),
        auto_rollback_enabled=True,
        auto_rollback_events=("DEPLOYMENT_FAILURE",),
        blue_green=BlueGreenOptions(**blue_green),  # type: ignore[arg-type]
    )
    state = new_deployment(
        "d-BLUEGRN01", "CodeDeployDefault.OneAtATime", rule, options, is_rollback=is_rollback
    )
    return InMemoryDeploymentWorld(state)


def fleet(w: InMemoryDeploymentWorld, blue: int = 2, green: int = 2) -> None:
    specs = [
        InstanceSpec(f"blue-{n}", has_previous_revision=True, label="Blue") for n in range(blue)
    ]
    specs += [InstanceSpec(f"green-{n}", label="Green") for n in range(green)]
    w.start(*specs)


def order_of(w: InMemoryDeploymentWorld, instance: str, event: str) -> int:
    """Where (instance, event) came in everything the world was asked to do."""
    work = [(i, e) for i, e in w.commands + w.server_steps]
    asked = [(e.instance_id, e.lifecycle_event) for e in w.effects if hasattr(e, "lifecycle_event")]
    assert work and (instance, event) in asked, (instance, event)
    return asked.index((instance, event))


def test_traffic_moves_to_green_once_all_of_it_is_installed_then_blue_is_blocked():
    w = world()
    fleet(w)
    w.run()
    assert w.state.status == "Succeeded" and w.state.error is None
    for name in ("green-0", "green-1"):
        events = w.events_of(name)
        assert [e for e, _ in events] == INSTALL + ALLOW
        # A first install on the replacement: nothing to stop; everything else ran.
        assert events[0] == ("ApplicationStop", "Skipped")
        assert {status for _, status in events[1:]} == {"Succeeded"}
    for name in ("blue-0", "blue-1"):
        assert w.events_of(name) == [(event, "Succeeded") for event in BLOCK]
    # One replacement installed at a time (OneAtATime), none taking traffic before all are.
    assert w.peak_in_flight <= 2  # reroute runs the Green instances together
    last_validation = max(order_of(w, g, "ValidateService") for g in ("green-0", "green-1"))
    first_allow = min(order_of(w, g, "BeforeAllowTraffic") for g in ("green-0", "green-1"))
    assert last_validation < first_allow
    last_allow = max(order_of(w, g, "AllowTraffic") for g in ("green-0", "green-1"))
    first_block = min(order_of(w, b, "BeforeBlockTraffic") for b in ("blue-0", "blue-1"))
    assert last_allow < first_block
    assert ("green-0", "Ready") in w.instance_statuses
    assert w.retired == []  # KEEP_ALIVE


def test_stop_deployment_waits_ready_for_continue_deployment():
    w = world(ready_action="STOP_DEPLOYMENT", ready_wait_minutes=30)
    fleet(w)
    w.run(until=lambda world: world.state.status == "Ready")
    assert w.state.status == "Ready"
    assert {w.statuses()[g] for g in ("green-0", "green-1")} == {"Ready"}
    assert all(event != "AllowTraffic" for _, event in w.server_steps)
    w.apply(ContinueRequested("TERMINATION_WAIT"))  # not the wait it is in: ignored
    assert w.state.status == "Ready"
    w.apply(ContinueRequested("READY_WAIT"))
    w.run()
    assert w.state.status == "Succeeded"
    assert w.deployment_statuses == ["InProgress", "Ready", "InProgress", "Succeeded"]


def test_a_ready_wait_that_runs_out_fails_and_leaves_traffic_on_blue():
    w = world(ready_action="STOP_DEPLOYMENT", ready_wait_minutes=5)
    fleet(w)
    w.run()
    assert w.state.status == "Failed"
    assert w.state.error is not None and w.state.error.code == "TIMEOUT"
    assert "waitTimeInMinutes" in w.state.error.message
    assert w.server_steps == []  # no AllowTraffic, no BlockTraffic
    assert w.rollbacks == []  # traffic never moved: nothing to take back
    assert {w.statuses()[g] for g in ("green-0", "green-1")} == {"Skipped"}


def test_terminate_retires_blue_after_the_wait_or_at_once_when_told():
    w = world(terminate_action="TERMINATE", termination_wait_minutes=60)
    fleet(w)
    w.run(until=lambda world: world.state.phase == "terminating")
    assert w.state.status == "InProgress" and w.retired == []
    w.run()
    assert w.state.status == "Succeeded"
    assert sorted(w.retired) == ["blue-0", "blue-1"]

    skipped = world(terminate_action="TERMINATE", termination_wait_minutes=60)
    fleet(skipped)
    skipped.run(until=lambda world: world.state.phase == "terminating")
    skipped.apply(ContinueRequested("TERMINATION_WAIT"))
    assert skipped.state.status == "Succeeded"
    assert sorted(skipped.retired) == ["blue-0", "blue-1"]


def test_a_green_failing_validation_keeps_traffic_on_blue_and_asks_no_rollback():
    w = world()
    fleet(w)
    w.fail("green-0", "ValidateService")
    w.run()
    assert w.state.status == "Failed"
    assert w.state.error == messages.error("HEALTH_CONSTRAINTS")
    assert w.server_steps == []
    assert w.rollbacks == []
    assert w.statuses()["green-0"] == "Failed"
    assert {w.statuses()[b] for b in ("blue-0", "blue-1")} == {"Skipped"}


def test_a_failure_after_traffic_moved_asks_for_the_way_back():
    w = world()
    fleet(w)
    w.fail_server_step("green-1", "AllowTraffic", "the proxy refused")
    w.run()
    assert w.state.status == "Failed"
    assert w.rollbacks == ["DEPLOYMENT_FAILURE"]
    # Blue was never blocked.
    assert all(event != "BlockTraffic" for _, event in w.server_steps)


def test_the_rollback_lets_traffic_back_to_blue_before_blocking_green():
    w = world(is_rollback=True)
    fleet(w)
    w.run()
    assert w.state.status == "Succeeded"
    for name in ("blue-0", "blue-1"):
        assert [e for e, _ in w.events_of(name)] == ALLOW
    for name in ("green-0", "green-1"):
        assert [e for e, _ in w.events_of(name)] == BLOCK
    last_allow = max(order_of(w, b, "AllowTraffic") for b in ("blue-0", "blue-1"))
    first_block = min(order_of(w, g, "BlockTraffic") for g in ("green-0", "green-1"))
    assert last_allow < first_block
    assert w.rollbacks == []


def test_without_replacement_instances_there_is_nothing_to_deploy():
    w = world()
    fleet(w, blue=2, green=0)
    assert w.state.status == "Failed"
    assert w.state.error == messages.error("NO_INSTANCES")
    assert w.commands == [] and w.server_steps == []


def test_a_stop_after_reroute_fails_running_instances_and_can_roll_back():
    w = world()
    fleet(w)
    w.run(until=lambda world: world.state.phase == "block")
    w.apply(StopRequested(auto_rollback=True))
    assert w.state.status == "Stopped"
    assert w.rollbacks == ["DEPLOYMENT_STOP_ON_REQUEST"]


def test_a_rollback_with_no_known_good_revision_only_moves_traffic():
    w = world(is_rollback=True)
    w.state = replace(w.state, options=replace(w.state.options, run_hooks=False))
    fleet(w)
    w.run()
    assert w.state.status == "Succeeded"
    assert w.commands == []  # no hook runs on any host
    assert sorted(w.server_steps) == sorted(
        [(b, "AllowTraffic") for b in ("blue-0", "blue-1")]
        + [(g, "BlockTraffic") for g in ("green-0", "green-1")]
    )
    assert w.events_of("blue-0") == [
        ("BeforeAllowTraffic", "Skipped"),
        ("AllowTraffic", "Succeeded"),
        ("AfterAllowTraffic", "Skipped"),
    ]
