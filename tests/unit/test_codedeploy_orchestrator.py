"""The in-place deployment machine, driven through the in-memory world.

The world keeps the state through its JSON document after every transition (and fails the
test if it does not survive), so every test here also proves the round trip at each step.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from forgeline.codedeploy.orchestrator import messages
from forgeline.codedeploy.orchestrator.effects import (
    CancelCommands,
    DeploymentChanged,
    Finished,
    InstanceChanged,
    SendCommand,
    SetTimer,
    StartRollback,
)
from forgeline.codedeploy.orchestrator.events import (
    AgentTimedOut,
    AlarmPollFailed,
    AlarmTripped,
    CommandAcknowledged,
    CommandFailed,
    CommandSucceeded,
    Enqueued,
    InstanceSpec,
    ServerStepDone,
    ServerStepFailed,
    Start,
    StopRequested,
    Tick,
)
from forgeline.codedeploy.orchestrator.fake import EPOCH, InMemoryDeploymentWorld
from forgeline.codedeploy.orchestrator.machine import advance
from forgeline.codedeploy.orchestrator.options import DeploymentOptions
from forgeline.codedeploy.orchestrator.rollout import (
    ALL_AT_ONCE,
    FLEET_PERCENT,
    HALF_AT_A_TIME,
    HOST_COUNT,
    ONE_AT_A_TIME,
    HealthClass,
    MinimumHealthyHosts,
)
from forgeline.codedeploy.orchestrator.state import DeploymentState, Diagnostics, new_deployment

INSTALL_COMMANDS = [
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]
ROLLBACK_ON_EVERYTHING = (
    "DEPLOYMENT_FAILURE",
    "DEPLOYMENT_STOP_ON_REQUEST",
    "DEPLOYMENT_STOP_ON_ALARM",
)


def world(
    rule: MinimumHealthyHosts = ONE_AT_A_TIME,
    *,
    is_rollback: bool = False,
    **options: object,
) -> InMemoryDeploymentWorld:
    state = new_deployment(
        "d-TEST00001",
        "CodeDeployDefault.Test",
        rule,
        DeploymentOptions(**options),  # type: ignore[arg-type]
        is_rollback=is_rollback,
    )
    return InMemoryDeploymentWorld(state)


def hosts(count: int) -> list[str]:
    return [f"host-{index}" for index in range(count)]


def deployed(instance_id: str) -> InstanceSpec:
    """An instance a revision of the group already succeeded on."""
    return InstanceSpec(instance_id, HealthClass.CURRENT, has_previous_revision=True)


# ---------------------------------------------------------------- batches and order


def test_one_at_a_time_goes_host_by_host_in_health_order():
    w = world(ONE_AT_A_TIME)
    w.start(
        InstanceSpec("current", HealthClass.CURRENT, has_previous_revision=True),
        InstanceSpec("old", HealthClass.OLD, has_previous_revision=True),
        InstanceSpec("unhealthy", HealthClass.UNHEALTHY),
        InstanceSpec("unknown", HealthClass.UNKNOWN),
    )
    w.run()
    assert w.state.status == "Succeeded" and w.state.error is None
    assert w.start_order == ["unhealthy", "unknown", "old", "current"]
    assert w.peak_in_flight == 1
    # Each host runs all of its events before the next starts.
    assert [instance for instance, _ in w.commands] == [
        name for name in w.start_order for _ in w.commands_for(name)
    ]
    assert w.deployment_statuses == ["InProgress", "Succeeded"]
    assert w.finished == Finished("Succeeded", None)


@pytest.mark.parametrize(
    ("rule", "fleet", "batch"),
    [
        (ONE_AT_A_TIME, 5, 1),
        (HALF_AT_A_TIME, 4, 2),
        (HALF_AT_A_TIME, 9, 4),
        (ALL_AT_ONCE, 6, 6),
        (MinimumHealthyHosts(HOST_COUNT, 8), 10, 2),
        (MinimumHealthyHosts(HOST_COUNT, 2), 5, 3),
        (MinimumHealthyHosts(FLEET_PERCENT, 40), 9, 5),
        (MinimumHealthyHosts(FLEET_PERCENT, 75), 8, 2),
    ],
)
def test_instances_are_deployed_in_batches_of_the_healthy_minimum(rule, fleet, batch):
    w = world(rule)
    w.start(*hosts(fleet))
    # The first batch starts together, before any command is answered.
    started = [effect for effect in w.effects if isinstance(effect, InstanceChanged)]
    assert [effect.instance_id for effect in started] == hosts(fleet)[:batch]
    w.run()
    assert w.state.status == "Succeeded"
    assert w.peak_in_flight == batch
    assert w.start_order == hosts(fleet)
    assert all(w.commands_for(name) == INSTALL_COMMANDS for name in hosts(fleet))


def test_events_run_strictly_in_order_one_command_at_a_time():
    w = world(ALL_AT_ONCE)
    w.start(*hosts(3))
    outstanding: dict[str, str] = {}
    for effect in w.effects:
        if isinstance(effect, SendCommand):
            assert effect.instance_id not in outstanding
            outstanding[effect.instance_id] = effect.lifecycle_event
    # Answer every command by hand: the next one for a host comes only after its answer.
    for _ in range(len(INSTALL_COMMANDS)):
        for host, event in sorted(outstanding.items()):
            w.apply(CommandAcknowledged(host, event))
            sent = w.apply(CommandSucceeded(host, event)).effects
            following = [e.lifecycle_event for e in sent if isinstance(e, SendCommand)]
            position = INSTALL_COMMANDS.index(event)
            assert following == INSTALL_COMMANDS[position + 1 : position + 2]
            outstanding[host] = following[0] if following else ""
    assert w.state.status == "Succeeded"


# ---------------------------------------------------------------- success and failure rules


def test_all_at_once_succeeds_when_any_instance_succeeds():
    w = world(ALL_AT_ONCE)
    w.start(*hosts(3))
    w.fail("host-0", "Install")
    w.fail("host-2", "AfterInstall")
    w.run()
    assert w.state.status == "Succeeded"
    assert w.statuses() == {"host-0": "Failed", "host-1": "Succeeded", "host-2": "Failed"}


def test_all_at_once_fails_when_every_instance_fails():
    w = world(ALL_AT_ONCE)
    w.start(*hosts(3))
    for host in hosts(3):
        w.fail(host, "BeforeInstall")
    w.run()
    assert w.state.status == "Failed"
    assert w.state.error == messages.error("HEALTH_CONSTRAINTS")
    assert w.state.error.message.startswith("The overall deployment failed because too many")


def test_half_at_a_time_needs_half_rounded_up():
    w = world(HALF_AT_A_TIME)
    w.start(*hosts(5))  # minimum 3, two at a time
    w.fail("host-1", "Install")
    w.fail("host-4", "Install")
    w.run()
    assert w.state.status == "Succeeded"
    assert sorted(w.statuses().values()).count("Succeeded") == 3


def test_half_at_a_time_fails_when_its_first_batch_fails_and_skips_the_rest():
    w = world(HALF_AT_A_TIME)
    w.start(*hosts(4))
    w.fail("host-0", "Install")
    w.fail("host-1", "ValidateService")
    w.run()
    assert w.state.status == "Failed"
    assert w.state.error is not None and w.state.error.code == "HEALTH_CONSTRAINTS"
    assert w.statuses() == {
        "host-0": "Failed",
        "host-1": "Failed",
        "host-2": "Skipped",
        "host-3": "Skipped",
    }
    assert w.commands_for("host-2") == [] and w.commands_for("host-3") == []
    assert all(status == "Skipped" for _, status in w.events_of("host-3"))


def test_one_at_a_time_survives_a_failure_on_the_last_instance_only():
    last = world(ONE_AT_A_TIME)
    last.start(*hosts(3))
    last.fail("host-2", "ValidateService")
    last.run()
    assert last.state.status == "Succeeded"

    first = world(ONE_AT_A_TIME)
    first.start(*hosts(3))
    first.fail("host-0", "ValidateService")
    first.run()
    assert first.state.status == "Failed"
    assert first.statuses() == {"host-0": "Failed", "host-1": "Skipped", "host-2": "Skipped"}


def test_one_at_a_time_on_a_single_instance_must_succeed():
    w = world(ONE_AT_A_TIME)
    w.start("only")
    w.fail("only", "ApplicationStart")
    w.run()
    assert w.state.status == "Failed"


def test_custom_host_count_fails_at_the_failure_that_would_break_the_minimum():
    # Ten instances, eight must stay healthy: two at a time; the second failure ends it...
    early = world(MinimumHealthyHosts(HOST_COUNT, 8))
    early.start(*hosts(10))
    early.fail("host-0", "Install")
    early.fail("host-3", "Install")
    early.run()
    assert early.state.status == "Failed"
    assert list(early.statuses().values()).count("Skipped") == 6
    # ... unless the second failure is the last instance.
    late = world(MinimumHealthyHosts(HOST_COUNT, 8))
    late.start(*hosts(10))
    late.fail("host-0", "Install")
    late.fail("host-9", "Install")
    late.run()
    assert late.state.status == "Succeeded"
    assert late.peak_in_flight == 2


def test_custom_fleet_percent_must_hold_at_the_end():
    # 40% of five is two: three at a time; two must succeed.
    w = world(MinimumHealthyHosts(FLEET_PERCENT, 40))
    w.start(*hosts(5))
    for host in ("host-0", "host-1"):
        w.fail(host, "Install")
    w.run()
    assert w.state.status == "Succeeded"
    assert list(w.statuses().values()).count("Succeeded") == 3


def test_a_failing_validate_service_fails_the_deployment_and_asks_for_a_rollback():
    w = world(
        ONE_AT_A_TIME, auto_rollback_enabled=True, auto_rollback_events=ROLLBACK_ON_EVERYTHING
    )
    w.start(deployed("host-0"), deployed("host-1"))
    w.fail("host-0", "ValidateService")
    w.run()
    assert w.state.status == "Failed"
    assert w.rollbacks == ["DEPLOYMENT_FAILURE"]
    assert w.state.rollback_reason == "DEPLOYMENT_FAILURE"
    # The rollback is asked for after the deployment has ended.
    kinds = [type(effect) for effect in w.transitions[-1][1].effects]
    assert kinds[-3:] == [DeploymentChanged, Finished, StartRollback]
    failed = dict(w.events_of("host-0"))
    assert failed["ValidateService"] == "Failed"
    validate = w.state.instances[0].events[-1]
    assert validate.diagnostics is not None and validate.diagnostics.error_code == "ScriptFailed"
    assert validate.diagnostics.log_tail == "[stderr]boom"


def test_no_rollback_without_auto_rollback_or_for_a_rollback():
    off = world(ONE_AT_A_TIME)
    off.start("host-0", "host-1")
    off.fail("host-0", "ValidateService")
    off.run()
    assert off.state.status == "Failed" and off.rollbacks == []

    other_events = world(
        ONE_AT_A_TIME,
        auto_rollback_enabled=True,
        auto_rollback_events=("DEPLOYMENT_STOP_ON_ALARM",),
    )
    other_events.start("host-0", "host-1")
    other_events.fail("host-0", "ValidateService")
    other_events.run()
    assert other_events.rollbacks == []

    rollback = world(
        ONE_AT_A_TIME,
        is_rollback=True,
        auto_rollback_enabled=True,
        auto_rollback_events=ROLLBACK_ON_EVERYTHING,
    )
    rollback.start("host-0", "host-1")
    rollback.fail("host-0", "ValidateService")
    rollback.run()
    assert rollback.state.status == "Failed" and rollback.rollbacks == []


# ---------------------------------------------------------------- the previous revision's events


def test_a_first_deployment_skips_application_stop():
    w = world(ALL_AT_ONCE)
    w.start(InstanceSpec("fresh"), deployed("again"))
    w.run()
    assert w.commands_for("fresh") == INSTALL_COMMANDS
    assert w.commands_for("again") == ["ApplicationStop", *INSTALL_COMMANDS]
    assert w.events_of("fresh")[0] == ("ApplicationStop", "Skipped")
    stop = w.state.instance("fresh").events[0]  # type: ignore[union-attr]
    assert stop.start_time is None and stop.end_time is None
    assert w.statuses() == {"fresh": "Succeeded", "again": "Succeeded"}


def test_ignore_application_stop_failures_goes_past_a_failed_application_stop():
    w = world(ONE_AT_A_TIME, ignore_application_stop_failures=True)
    w.start(deployed("host-0"), deployed("host-1"))
    w.fail("host-0", "ApplicationStop")
    w.run()
    assert w.state.status == "Succeeded"
    assert w.statuses() == {"host-0": "Succeeded", "host-1": "Succeeded"}
    events = dict(w.events_of("host-0"))
    assert events["ApplicationStop"] == "Failed"  # on record, passed over
    assert events["ValidateService"] == "Succeeded"


def test_without_the_flag_a_failed_application_stop_fails_the_instance():
    w = world(ONE_AT_A_TIME)
    w.start(deployed("host-0"), deployed("host-1"))
    w.fail("host-0", "ApplicationStop")
    w.run()
    assert w.state.status == "Failed"
    assert w.events_of("host-0") == [
        ("ApplicationStop", "Failed"),
        *[(name, "Skipped") for name in INSTALL_COMMANDS],
    ]


def test_the_flag_does_not_cover_other_events():
    w = world(ONE_AT_A_TIME, ignore_application_stop_failures=True)
    w.start(deployed("host-0"), deployed("host-1"))
    w.fail("host-0", "BeforeInstall")
    w.run()
    assert w.state.status == "Failed"


# ---------------------------------------------------------------- traffic control


def test_traffic_control_blocks_before_and_allows_after_with_server_steps():
    w = world(ONE_AT_A_TIME, traffic_control=True)
    w.start(deployed("host-0"), InstanceSpec("host-1"))
    w.run()
    assert w.state.status == "Succeeded"
    assert w.commands_for("host-0") == [
        "BeforeBlockTraffic",
        "AfterBlockTraffic",
        "ApplicationStop",
        *INSTALL_COMMANDS,
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ]
    # A first deployment has no previous revision's scripts to run, but traffic still moves.
    assert w.commands_for("host-1") == [
        *INSTALL_COMMANDS,
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ]
    assert w.server_steps == [
        ("host-1", "BlockTraffic"),
        ("host-1", "AllowTraffic"),
        ("host-0", "BlockTraffic"),
        ("host-0", "AllowTraffic"),
    ]
    assert [status for _, status in w.events_of("host-1")[:3]] == [
        "Skipped",
        "Succeeded",
        "Skipped",
    ]


def test_a_failed_server_step_fails_the_instance():
    w = world(ONE_AT_A_TIME, traffic_control=True)
    w.start("host-0", "host-1")
    w.fail_server_step("host-0", "AllowTraffic", "target group registration refused")
    w.run()
    assert w.state.status == "Failed"
    allow = dict(w.events_of("host-0"))
    assert allow["AllowTraffic"] == "Failed" and allow["AfterAllowTraffic"] == "Skipped"
    instance = w.state.instance("host-0")
    assert instance is not None and instance.failure_cause == "server_step"
    assert instance.events[-2].diagnostics == Diagnostics(
        "UnknownError", message="target group registration refused"
    )


def test_a_server_step_result_counts_only_while_the_step_runs():
    w = world(ONE_AT_A_TIME, traffic_control=True)
    w.start(deployed("host-0"))
    assert w.commands == [("host-0", "BeforeBlockTraffic")]
    # BlockTraffic has not begun: its result now is not the instance's business.
    before = w.state
    assert w.apply(ServerStepDone("host-0", "BlockTraffic")).effects == ()
    assert w.state == before


# ---------------------------------------------------------------- stops and alarms


def test_stop_without_rollback_cancels_running_commands_and_skips_the_rest():
    w = world(
        HALF_AT_A_TIME, auto_rollback_enabled=True, auto_rollback_events=ROLLBACK_ON_EVERYTHING
    )
    w.start(*hosts(4))
    w.run(until=lambda w: len(w.commands) >= 4)
    effects = w.apply(StopRequested(auto_rollback=False)).effects
    assert w.state.status == "Stopped"
    assert w.state.error == messages.error("MANUAL_STOP")
    assert w.statuses() == {
        "host-0": "Failed",
        "host-1": "Failed",
        "host-2": "Skipped",
        "host-3": "Skipped",
    }
    assert [e.instance_id for e in effects if isinstance(e, CancelCommands)] == [
        "host-0",
        "host-1",
    ]
    assert w.rollbacks == []
    assert w.state.timers == ()
    cut = w.state.instance("host-0")
    assert cut is not None and cut.failure_cause == "stopped"
    running = [event for event in cut.events if event.diagnostics is not None]
    assert running and running[0].diagnostics == messages.STOPPED_WHILE_RUNNING


def test_stop_with_rollback_asks_for_one():
    w = world(ONE_AT_A_TIME)
    w.start("host-0", "host-1")
    w.run(until=lambda w: len(w.commands) >= 3)
    w.apply(StopRequested(auto_rollback=True))
    assert w.state.status == "Stopped"
    assert w.rollbacks == ["DEPLOYMENT_STOP_ON_REQUEST"]


def test_late_results_after_a_stop_change_nothing():
    w = world(ONE_AT_A_TIME)
    w.start("host-0", "host-1")
    host, event = w.commands[-1]
    w.apply(StopRequested())
    stopped = w.state
    for late in (
        CommandAcknowledged(host, event),
        CommandSucceeded(host, event),
        CommandFailed(host, event, Diagnostics("ScriptFailed")),
        AgentTimedOut(host),
        StopRequested(auto_rollback=True),
        Tick(),
    ):
        assert w.apply(late).effects == ()
    assert w.state == stopped


def test_a_stop_before_the_start_stops_a_queued_deployment():
    w = world(ONE_AT_A_TIME)
    w.apply(Enqueued())
    assert w.state.status == "Queued"
    w.apply(StopRequested(auto_rollback=True))
    assert w.state.status == "Stopped"
    assert w.deployment_statuses == ["Queued", "Stopped"]
    assert w.rollbacks == []  # nothing was deployed: nothing to roll back
    assert w.start(*hosts(2)).effects == ()


def test_an_alarm_stops_the_deployment_and_rolls_back_when_configured():
    w = world(
        HALF_AT_A_TIME,
        alarms_enabled=True,
        alarm_names=("cpu",),
        auto_rollback_enabled=True,
        auto_rollback_events=("DEPLOYMENT_STOP_ON_ALARM",),
    )
    w.start(*hosts(4))
    w.run(until=lambda w: len(w.commands) >= 5)
    w.apply(AlarmTripped(("cpu",)))
    assert w.state.status == "Stopped"
    assert w.state.error is not None and w.state.error.code == "ALARM_ACTIVE"
    assert "cpu" in w.state.error.message
    assert w.rollbacks == ["DEPLOYMENT_STOP_ON_ALARM"]


def test_alarms_not_monitored_do_not_stop_anything():
    off = world(HALF_AT_A_TIME)
    off.start(*hosts(4))
    assert off.apply(AlarmTripped(("cpu",))).effects == ()
    other = world(HALF_AT_A_TIME, alarms_enabled=True, alarm_names=("cpu",))
    other.start(*hosts(4))
    assert other.apply(AlarmTripped(("disk",))).effects == ()
    other.run()
    assert other.state.status == "Succeeded"


def test_an_alarm_that_cannot_be_read_stops_unless_ignored():
    strict = world(ONE_AT_A_TIME, alarms_enabled=True, alarm_names=("cpu",))
    strict.start("host-0", "host-1")
    strict.apply(AlarmPollFailed("CloudWatch did not answer"))
    assert strict.state.status == "Stopped"
    assert (
        strict.state.error is not None and "CloudWatch did not answer" in strict.state.error.message
    )

    lenient = world(
        ONE_AT_A_TIME, alarms_enabled=True, ignore_poll_alarm_failure=True, alarm_names=("cpu",)
    )
    lenient.start("host-0", "host-1")
    assert lenient.apply(AlarmPollFailed("CloudWatch did not answer")).effects == ()
    lenient.run()
    assert lenient.state.status == "Succeeded"


# ---------------------------------------------------------------- silent agents


def test_an_agent_that_never_takes_up_its_command_fails_its_instance_after_the_timeout():
    w = world(ONE_AT_A_TIME, agent_pickup_timeout_seconds=600)
    w.start(*hosts(3))
    w.silence("host-0")
    w.run()
    assert w.state.status == "Failed"
    assert w.state.error is not None and w.state.error.code == "HEALTH_CONSTRAINTS"
    assert w.statuses() == {"host-0": "Failed", "host-1": "Skipped", "host-2": "Skipped"}
    download = w.state.instances[0].events[1]
    assert download.name == "DownloadBundle" and download.status == "Failed"
    assert download.diagnostics == messages.AGENT_NEVER_TOOK_UP
    assert download.end_time == EPOCH + timedelta(seconds=600)
    assert w.cancelled == ["host-0"]
    assert w.state.instances[0].failure_cause == "agent_silent"


def test_an_agent_killed_mid_command_fails_its_instance_after_the_run_timeout():
    w = world(ALL_AT_ONCE, agent_pickup_timeout_seconds=60, event_run_timeout_seconds=300)
    w.start(*hosts(2))
    w.hang("host-1", "Install")
    w.run()
    assert w.state.status == "Succeeded"  # AllAtOnce: one success is enough
    install = dict((e.name, e) for e in w.state.instance("host-1").events)["Install"]  # type: ignore[union-attr]
    assert install.status == "Failed"
    assert install.diagnostics == messages.agent_went_silent(300)
    assert install.start_time is not None and install.end_time is not None
    assert install.end_time - install.start_time == timedelta(seconds=300)


def test_the_acknowledgement_moves_the_deadline_from_pickup_to_run():
    w = world(ONE_AT_A_TIME, agent_pickup_timeout_seconds=60, event_run_timeout_seconds=300)
    sent = w.start("host-0").effects
    assert SetTimer("agent:host-0", EPOCH + timedelta(seconds=60)) in sent
    w.advance_clock(10)
    acked = w.apply(CommandAcknowledged("host-0", "DownloadBundle")).effects
    assert acked == (SetTimer("agent:host-0", EPOCH + timedelta(seconds=310)),)
    w.advance_clock(100)  # past the pickup deadline, inside the run deadline
    assert w.apply(Tick()).effects == ()
    assert w.state.instances[0].events[1].status == "InProgress"
    w.advance_clock(200)
    w.apply(Tick())
    assert w.state.status == "Failed"


def test_the_driver_may_report_a_timeout_itself():
    w = world(ONE_AT_A_TIME)
    w.start("host-0", "host-1")
    effects = w.apply(AgentTimedOut("host-0")).effects
    assert CancelCommands("host-0") in effects
    assert w.state.status == "Failed"


# ---------------------------------------------------------------- deployments that cannot start


def test_a_deployment_without_instances_fails_with_no_instances():
    w = world(
        ONE_AT_A_TIME, auto_rollback_enabled=True, auto_rollback_events=ROLLBACK_ON_EVERYTHING
    )
    w.start()
    assert w.state.status == "Failed"
    assert w.state.error == messages.error("NO_INSTANCES")
    assert w.commands == [] and w.rollbacks == []


def test_a_minimum_the_fleet_cannot_meet_fails_before_touching_an_instance():
    w = world(MinimumHealthyHosts(FLEET_PERCENT, 95), auto_rollback_enabled=True)
    w.start(*hosts(10))
    assert w.state.status == "Failed"
    assert w.state.error == messages.error("HEALTH_CONSTRAINTS_INVALID")
    assert w.commands == [] and w.rollbacks == []
    assert set(w.statuses().values()) == {"Skipped"}
    assert w.deployment_statuses == ["Failed"]


# ---------------------------------------------------------------- idempotence


def finished_world() -> InMemoryDeploymentWorld:
    w = world(ONE_AT_A_TIME)
    w.start(*hosts(2))
    w.run()
    assert w.state.status == "Succeeded"
    return w


@pytest.mark.parametrize(
    "event",
    [
        Enqueued(),
        Start((InstanceSpec("host-9"),)),
        CommandAcknowledged("host-0", "Install"),
        CommandSucceeded("host-0", "ValidateService"),
        CommandFailed("host-1", "ValidateService", Diagnostics("ScriptFailed")),
        ServerStepDone("host-0", "AllowTraffic"),
        ServerStepFailed("host-0", "AllowTraffic", "no"),
        AgentTimedOut("host-1"),
        StopRequested(auto_rollback=True),
        AlarmTripped(("cpu",)),
        AlarmPollFailed("down"),
        Tick(),
    ],
)
def test_events_for_a_finished_deployment_are_ignored(event):
    w = finished_world()
    before = w.state
    assert advance(before, event, EPOCH + timedelta(days=1)).effects == ()
    assert advance(before, event, EPOCH + timedelta(days=1)).state is before


def test_stale_and_repeated_events_change_nothing():
    w = world(ONE_AT_A_TIME)
    w.start("host-0", "host-1")
    before = w.state
    for stale in (
        Start((InstanceSpec("host-2"),)),  # a repeated Start
        CommandSucceeded("host-0", "Install"),  # not the command it waits on
        CommandSucceeded("host-1", "DownloadBundle"),  # an instance not started
        CommandSucceeded("nobody", "DownloadBundle"),
        AgentTimedOut("host-1"),
        ServerStepDone("host-0", "DownloadBundle"),
    ):
        assert w.apply(stale).effects == ()
        assert w.state == before
    w.apply(CommandAcknowledged("host-0", "DownloadBundle"))
    acked = w.state
    assert w.apply(CommandAcknowledged("host-0", "DownloadBundle")).effects == ()
    assert w.state == acked


def test_duplicate_instances_are_deployed_once():
    w = world(ALL_AT_ONCE)
    w.start("host-0", "host-1", "host-0")
    w.run()
    assert [instance.instance_id for instance in w.state.instances] == ["host-0", "host-1"]
    assert w.commands_for("host-0") == INSTALL_COMMANDS


# ---------------------------------------------------------------- the state as the API shows it


def test_queued_then_started_then_succeeded():
    w = world(ONE_AT_A_TIME)
    w.apply(Enqueued())
    w.apply(Enqueued())  # already queued
    w.advance_clock(5)
    w.start("host-0")
    w.run()
    assert w.deployment_statuses == ["Queued", "InProgress", "Succeeded"]
    assert w.state.start_time == EPOCH + timedelta(seconds=5)
    assert w.state.complete_time == w.now


def test_lifecycle_events_render_in_the_models_shape_with_times():
    w = world(ONE_AT_A_TIME)
    w.start("host-0")
    w.fail("host-0", "AfterInstall")
    w.run()
    events = w.state.instances[0].lifecycle_events()
    assert events[0] == {"lifecycleEventName": "ApplicationStop", "status": "Skipped"}
    download = events[1]
    assert download["status"] == "Succeeded"
    assert download["endTime"] - download["startTime"] == timedelta(seconds=1)
    after_install = events[4]
    assert after_install["diagnostics"]["errorCode"] == "ScriptFailed"
    assert after_install["diagnostics"]["scriptName"] == "scripts/AfterInstall.sh"
    assert w.state.overview() == {
        "Pending": 0,
        "InProgress": 0,
        "Succeeded": 0,
        "Failed": 1,
        "Skipped": 0,
        "Ready": 0,
    }
    assert w.state.error is not None
    assert w.state.error.to_botocore() == {
        "code": "HEALTH_CONSTRAINTS",
        "message": messages.error("HEALTH_CONSTRAINTS").message,
    }


def test_the_overview_counts_instances_mid_deployment():
    w = world(HALF_AT_A_TIME)
    w.start(*hosts(4))
    assert w.state.overview()["InProgress"] == 2
    assert w.state.overview()["Pending"] == 2


def test_the_document_is_plain_json_and_refuses_an_unknown_version():
    w = world(ONE_AT_A_TIME, traffic_control=True, alarms_enabled=True, alarm_names=("cpu",))
    w.start(deployed("host-0"), "host-1")
    w.run(until=lambda w: len(w.commands) >= 4)
    document = w.state.to_document()
    assert json.loads(json.dumps(document)) == document
    assert DeploymentState.from_document(document) == w.state
    with pytest.raises(ValueError, match="version"):
        DeploymentState.from_document({**document, "version": 99})


def test_every_step_of_a_long_deployment_survives_the_document():
    w = world(MinimumHealthyHosts(HOST_COUNT, 2), traffic_control=True)
    w.start(*[deployed(name) for name in hosts(6)])
    w.fail("host-3", "AfterAllowTraffic")
    w.run()
    # The world decodes the document after each transition and compares it.
    assert len(w.transitions) > 100
    assert w.state.status == "Succeeded"


def test_the_machine_reads_no_clock_but_now():
    state = new_deployment("d-TEST00002", "x", ONE_AT_A_TIME)
    later = EPOCH + timedelta(hours=3)
    state = advance(state, Start((InstanceSpec("a"),)), later).state
    assert state.start_time == later
    assert state.instances[0].last_updated_at == later
    again = advance(
        new_deployment("d-TEST00002", "x", ONE_AT_A_TIME), Start((InstanceSpec("a"),)), later
    )
    assert again.state == state
