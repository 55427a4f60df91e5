"""The Lambda and ECS deployment (orchestrator/traffic_shift.py), driven through the
in-memory world: events in the platform's order, hooks invoked and waited on, the traffic
shifted on the configuration's schedule, and every failure ending the deployment with the
traffic where it stood and a rollback asked for as the options say."""

from __future__ import annotations

from datetime import timedelta

from forgeline.codedeploy.orchestrator.events import (
    AlarmTripped,
    HookReported,
    InstanceSpec,
    Refused,
    Start,
    StopRequested,
)
from forgeline.codedeploy.orchestrator.fake import EPOCH, InMemoryDeploymentWorld
from forgeline.codedeploy.orchestrator.options import DeploymentOptions, ShiftOptions
from forgeline.codedeploy.orchestrator.rollout import ONE_AT_A_TIME
from forgeline.codedeploy.orchestrator.state import ErrorInfo, ShiftTarget, new_deployment
from forgeline.codedeploy.orchestrator.traffic_shift import hook_execution_id

LAMBDA_HOOKS = (
    ("BeforeAllowTraffic", "CheckBefore"),
    ("AfterAllowTraffic", "CheckAfter"),
)
ECS_HOOKS = (
    ("BeforeInstall", "H1"),
    ("AfterInstall", "H2"),
    ("AfterAllowTestTraffic", "H3"),
    ("BeforeAllowTraffic", "H4"),
    ("AfterAllowTraffic", "H5"),
)


def world(
    routing: str = "AllAtOnce",
    percentage: int | None = None,
    interval: int | None = None,
    *,
    platform: str = "Lambda",
    is_rollback: bool = False,
    rollback_events: tuple[str, ...] = ("DEPLOYMENT_FAILURE",),
    alarms: bool = False,
) -> InMemoryDeploymentWorld:
    options = DeploymentOptions(
        deployment_type="BLUE_GREEN",
        traffic_control=True,
        auto_rollback_enabled=bool(rollback_events),
        auto_rollback_events=rollback_events,
        alarms_enabled=alarms,
        shift=ShiftOptions(platform, routing, percentage, interval, minute_seconds=60.0),
    )
    state = new_deployment("d-LAMBDA001", "Config", ONE_AT_A_TIME, options, is_rollback=is_rollback)
    return InMemoryDeploymentWorld(state)


def start(
    w: InMemoryDeploymentWorld,
    hooks: tuple[tuple[str, str], ...] = LAMBDA_HOOKS,
    platform: str = "Lambda",
) -> None:
    target = "fn:live" if platform == "Lambda" else "cluster:service"
    shift = ShiftTarget(platform, target, "1", "2", hooks=hooks, nonce="n0")
    w.apply(Start((InstanceSpec(target),), shift))


def events(w: InMemoryDeploymentWorld) -> list[tuple[str, str]]:
    return w.events_of(w.state.instances[0].instance_id)


def offsets(w: InMemoryDeploymentWorld) -> list[tuple[float, int]]:
    """Each applied share, with when it was applied, in minutes after the first."""
    first = w.shifts[0][0]
    return [(round((at - first) / timedelta(minutes=1), 2), weight) for at, weight in w.shifts]


def test_a_lambda_deployment_runs_its_events_in_order_and_shifts_all_at_once() -> None:
    w = world()
    start(w)
    w.run()
    assert w.state.status == "Succeeded"
    assert events(w) == [
        ("Start", "Succeeded"),
        ("BeforeAllowTraffic", "Succeeded"),
        ("AllowTraffic", "Succeeded"),
        ("AfterAllowTraffic", "Succeeded"),
        ("End", "Succeeded"),
    ]
    assert [hook.function_name for hook in w.hooks] == ["CheckBefore", "CheckAfter"]
    assert [weight for _, weight in w.shifts] == [100]
    assert w.state.shift is not None and w.state.shift.weight == 100
    assert w.server_steps == [("fn:live", "Start"), ("fn:live", "End")]


def test_the_before_hook_runs_before_any_traffic_moves_and_the_after_hook_after_all_has() -> None:
    w = world("TimeBasedCanary", 10, 5)
    start(w)
    w.run()
    kinds = [type(effect).__name__ for effect in w.effects]
    invokes = [i for i, kind in enumerate(kinds) if kind == "InvokeHook"]
    shifts = [i for i, kind in enumerate(kinds) if kind == "ShiftTraffic"]
    assert invokes[0] < shifts[0] and shifts[-1] < invokes[1]


def test_a_canary_gives_its_share_then_the_rest_after_its_interval() -> None:
    w = world("TimeBasedCanary", 10, 5)
    start(w)
    w.run()
    assert w.state.status == "Succeeded"
    assert offsets(w) == [(0.0, 10), (5.0, 100)]


def test_a_linear_config_adds_its_share_every_interval_and_ends_on_all() -> None:
    w = world("TimeBasedLinear", 33, 2)
    start(w)
    w.run()
    assert offsets(w) == [(0.0, 33), (2.0, 66), (4.0, 99), (6.0, 100)]


def test_unnamed_hooks_are_skipped() -> None:
    w = world()
    start(w, hooks=())
    w.run()
    assert w.state.status == "Succeeded"
    assert ("BeforeAllowTraffic", "Skipped") in events(w)
    assert w.hooks == []


def test_an_ecs_deployment_runs_the_ecs_events_and_their_hooks() -> None:
    w = world(platform="ECS")
    start(w, ECS_HOOKS, platform="ECS")
    w.run()
    assert w.state.status == "Succeeded"
    assert [name for name, _ in events(w)] == [
        "Start",
        "BeforeInstall",
        "Install",
        "AfterInstall",
        "AllowTestTraffic",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AllowTraffic",
        "AfterAllowTraffic",
        "End",
    ]
    assert [hook.function_name for hook in w.hooks] == ["H1", "H2", "H3", "H4", "H5"]


def test_a_failed_before_hook_fails_the_deployment_before_traffic_moves() -> None:
    w = world("TimeBasedCanary", 10, 5)
    start(w)
    w.fail_hook("BeforeAllowTraffic")
    w.run()
    assert w.state.status == "Failed"
    assert w.state.error is not None and w.state.error.code == "HOOK_EXECUTION_FAILURE"
    assert "CheckBefore" in w.state.error.message
    assert w.shifts == []
    assert events(w)[1:3] == [("BeforeAllowTraffic", "Failed"), ("AllowTraffic", "Skipped")]
    assert w.rollbacks == ["DEPLOYMENT_FAILURE"]


def test_a_failed_after_hook_asks_for_a_rollback_once_traffic_moved() -> None:
    w = world("TimeBasedCanary", 10, 5)
    start(w)
    w.fail_hook("AfterAllowTraffic")
    w.run()
    assert w.state.status == "Failed"
    assert [weight for _, weight in w.shifts] == [10, 100]
    assert w.rollbacks == ["DEPLOYMENT_FAILURE"]


def test_without_rollback_a_failure_asks_for_none() -> None:
    w = world(rollback_events=())
    start(w)
    w.fail_hook("AfterAllowTraffic")
    w.run()
    assert w.state.status == "Failed" and w.rollbacks == []


def test_a_hook_that_never_reports_times_out_after_an_hour() -> None:
    w = world()
    start(w)
    w.silence_hook("BeforeAllowTraffic")
    w.run()
    assert w.state.status == "Failed"
    before = w.state.instances[0].events[1]
    assert before.diagnostics is not None
    assert before.diagnostics.error_code == "ScriptTimedOut"
    assert before.end_time is not None and before.start_time is not None
    assert before.end_time - before.start_time == timedelta(hours=1)


def test_an_unreachable_hook_fails_the_deployment_with_the_reason() -> None:
    w = world()
    start(w)
    w.unreachable_hook("BeforeAllowTraffic")
    w.run()
    assert w.state.status == "Failed"
    assert w.state.error is not None and "unreachable" in w.state.error.message


def test_a_failed_shift_fails_the_deployment_with_the_platform_code() -> None:
    w = world("TimeBasedCanary", 10, 5)
    start(w)
    w.fail_shift(100, "version 2 has no backend")
    w.run()
    assert w.state.status == "Failed"
    assert w.state.error is not None
    assert w.state.error.code == "INVALID_LAMBDA_FUNCTION"
    assert "version 2 has no backend" in w.state.error.message
    assert w.state.shift is not None and w.state.shift.weight == 10


def test_a_verdict_with_another_id_or_after_the_event_changes_nothing() -> None:
    w = world()
    start(w)
    w.silence_hook("BeforeAllowTraffic")
    w.run(until=lambda world: bool(world.hooks))
    w.apply(HookReported("not-the-id", True))
    assert w.state.instances[0].events[1].status == "InProgress"
    right = w.hooks[0].hook_execution_id
    w.apply(HookReported(right, True))
    w.apply(HookReported(right, False))  # late: the event is over
    w.run()
    assert w.state.status == "Succeeded"


def test_hook_execution_ids_differ_by_event_and_nonce() -> None:
    ids = {
        hook_execution_id("d-1", nonce, event)
        for nonce in ("a", "b")
        for event in ("BeforeAllowTraffic", "AfterAllowTraffic")
    }
    assert len(ids) == 4


def test_a_stop_during_the_canary_stops_it_where_it_stands() -> None:
    w = world("TimeBasedCanary", 10, 5, rollback_events=())
    start(w)
    w.run(until=lambda world: bool(world.shifts))
    w.run(until=lambda world: "shift" in world.timers)
    w.apply(StopRequested(auto_rollback=True))
    assert w.state.status == "Stopped"
    assert w.state.timers == ()
    assert w.rollbacks == ["DEPLOYMENT_STOP_ON_REQUEST"]
    assert w.state.shift is not None and w.state.shift.weight == 10


def test_an_alarm_during_the_canary_stops_it_and_rolls_back() -> None:
    w = world("TimeBasedCanary", 10, 5, rollback_events=("DEPLOYMENT_STOP_ON_ALARM",), alarms=True)
    start(w)
    w.run(until=lambda world: "shift" in world.timers)
    w.apply(AlarmTripped(("errors",)))
    assert w.state.status == "Stopped"
    assert w.state.error is not None and w.state.error.code == "ALARM_ACTIVE"
    assert w.rollbacks == ["DEPLOYMENT_STOP_ON_ALARM"]


def test_a_rollback_moves_all_traffic_back_at_once_and_runs_no_hooks() -> None:
    w = world("TimeBasedCanary", 10, 5, is_rollback=True)
    start(w)
    w.run()
    assert w.state.status == "Succeeded"
    assert [name for name, _ in events(w)] == ["Start", "AllowTraffic", "End"]
    assert [weight for _, weight in w.shifts] == [0]
    assert w.hooks == []


def test_an_unusable_revision_refuses_the_deployment() -> None:
    w = world()
    w.apply(Refused(ErrorInfo("INVALID_LAMBDA_CONFIGURATION", "bad appspec")))
    assert w.state.status == "Failed"
    assert w.state.error == ErrorInfo("INVALID_LAMBDA_CONFIGURATION", "bad appspec")
    assert w.state.start_time == EPOCH
