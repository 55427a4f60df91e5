"""Lifecycle events per kind of deployment, and the options a deployment runs with."""

from __future__ import annotations

from forgeline.codedeploy.orchestrator import lifecycle as lc
from forgeline.codedeploy.orchestrator.lifecycle import Performer, blue_green_steps, in_place_steps
from forgeline.codedeploy.orchestrator.options import DeploymentOptions, resolve_options

INSTALL_EVENTS = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]


def names(steps) -> list[str]:
    return [step.name for step in steps]


def test_in_place_without_traffic_control_runs_the_install_events():
    assert names(in_place_steps(with_traffic_control=False)) == INSTALL_EVENTS


def test_in_place_with_traffic_control_blocks_first_and_allows_last():
    assert names(in_place_steps(with_traffic_control=True)) == [
        "BeforeBlockTraffic",
        "BlockTraffic",
        "AfterBlockTraffic",
        *INSTALL_EVENTS,
        "BeforeAllowTraffic",
        "AllowTraffic",
        "AfterAllowTraffic",
    ]


def test_the_server_blocks_and_allows_traffic_and_the_agent_does_the_rest():
    steps = in_place_steps(with_traffic_control=True)
    server = [step.name for step in steps if step.performer is Performer.SERVER]
    assert server == ["BlockTraffic", "AllowTraffic"]
    # The agent's CommandName values (aws-codedeploy-agent's command set).
    assert lc.AGENT_COMMANDS == {
        "DownloadBundle",
        "Install",
        "BeforeBlockTraffic",
        "AfterBlockTraffic",
        "ApplicationStop",
        "BeforeInstall",
        "AfterInstall",
        "ApplicationStart",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
        "ValidateService",
    }


def test_only_the_previous_revisions_events_use_it():
    steps = in_place_steps(with_traffic_control=True)
    assert [step.name for step in steps if step.uses_previous_revision] == [
        "BeforeBlockTraffic",
        "AfterBlockTraffic",
        "ApplicationStop",
    ]


def test_blue_green_splits_events_between_original_and_replacement_instances():
    assert names(blue_green_steps("Blue")) == [
        "BeforeBlockTraffic",
        "BlockTraffic",
        "AfterBlockTraffic",
    ]
    assert names(blue_green_steps("Green")) == [
        *INSTALL_EVENTS,
        "BeforeAllowTraffic",
        "AllowTraffic",
        "AfterAllowTraffic",
    ]
    # A rollback lets traffic back to the originals and blocks it from the replacements.
    assert names(blue_green_steps("Blue", rollback=True)) == [
        "BeforeAllowTraffic",
        "AllowTraffic",
        "AfterAllowTraffic",
    ]
    assert names(blue_green_steps("Green", rollback=True)) == [
        "BeforeBlockTraffic",
        "BlockTraffic",
        "AfterBlockTraffic",
    ]


def test_lambda_and_ecs_hooks_are_validation_functions():
    lambda_hooks = [s.name for s in lc.LAMBDA_STEPS if s.performer is Performer.HOOK_FUNCTION]
    assert lambda_hooks == ["BeforeAllowTraffic", "AfterAllowTraffic"]
    ecs_hooks = [s.name for s in lc.ECS_STEPS if s.performer is Performer.HOOK_FUNCTION]
    assert ecs_hooks == [
        "BeforeInstall",
        "AfterInstall",
        "AfterAllowTestTraffic",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
    ]


GROUP = {
    "deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
    "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    "alarmConfiguration": {
        "enabled": True,
        "ignorePollAlarmFailure": True,
        "alarms": [{"name": "cpu"}, {"name": "errors"}],
    },
}


def test_options_come_from_the_deployment_group():
    options = resolve_options(GROUP, {"applicationName": "app"})
    assert options == DeploymentOptions(
        deployment_type="IN_PLACE",
        traffic_control=True,
        ignore_application_stop_failures=False,
        auto_rollback_enabled=True,
        auto_rollback_events=("DEPLOYMENT_FAILURE",),
        alarms_enabled=True,
        ignore_poll_alarm_failure=True,
        alarm_names=("cpu", "errors"),
    )


def test_the_request_overrides_rollback_and_alarms():
    options = resolve_options(
        GROUP,
        {
            "applicationName": "app",
            "ignoreApplicationStopFailures": True,
            "autoRollbackConfiguration": {"enabled": False},
            "overrideAlarmConfiguration": {"enabled": False},
        },
        agent_pickup_timeout_seconds=5,
        event_run_timeout_seconds=9,
    )
    assert options.ignore_application_stop_failures
    assert not options.auto_rollback_enabled and options.auto_rollback_events == ()
    assert not options.alarms_enabled and options.alarm_names == ()
    assert (options.agent_pickup_timeout_seconds, options.event_run_timeout_seconds) == (5, 9)
    assert not options.rolls_back_on("DEPLOYMENT_FAILURE")


def test_a_bare_group_deploys_in_place_without_traffic_control():
    options = resolve_options({}, {"applicationName": "app"})
    assert options == DeploymentOptions()
    assert DeploymentOptions.from_document(options.to_document()) == options
    rich = resolve_options(GROUP, {"applicationName": "app"})
    assert DeploymentOptions.from_document(rich.to_document()) == rich
