"""The options one deployment runs with, resolved from its deployment group and request.

A CreateDeployment request may override the group's automatic rollback
(autoRollbackConfiguration) and alarms (overrideAlarmConfiguration); traffic control and
the deployment type come from the group's deploymentStyle. fileExistsBehavior is the
agent's business and is not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from forgeline.codedeploy.generated import shapes

IN_PLACE = "IN_PLACE"
BLUE_GREEN = "BLUE_GREEN"
WITH_TRAFFIC_CONTROL = "WITH_TRAFFIC_CONTROL"

# AutoRollbackEvent values.
DEPLOYMENT_FAILURE = "DEPLOYMENT_FAILURE"
DEPLOYMENT_STOP_ON_ALARM = "DEPLOYMENT_STOP_ON_ALARM"
DEPLOYMENT_STOP_ON_REQUEST = "DEPLOYMENT_STOP_ON_REQUEST"

# AWS gives an agent an hour to take up a pending command. A hook's scripts may run an
# hour per event (the agent reports ScriptTimedOut itself), so a taken-up command gets
# that hour plus a margin before the server stops waiting for the agent.
AGENT_PICKUP_TIMEOUT_SECONDS = 3600
EVENT_RUN_TIMEOUT_SECONDS = 3600 + 300


# BlueGreenDeploymentConfiguration's actions.
CONTINUE_DEPLOYMENT = "CONTINUE_DEPLOYMENT"
STOP_DEPLOYMENT = "STOP_DEPLOYMENT"
TERMINATE = "TERMINATE"
KEEP_ALIVE = "KEEP_ALIVE"
DISCOVER_EXISTING = "DISCOVER_EXISTING"


@dataclass(frozen=True)
class BlueGreenOptions:
    """When traffic moves to the replacement (green) instances, and what becomes of the
    original (blue) ones (the group's blueGreenDeploymentConfiguration)."""

    # CONTINUE_DEPLOYMENT: reroute once green is installed; STOP_DEPLOYMENT: wait for
    # ContinueDeployment (READY_WAIT) up to ready_wait_minutes, then fail.
    ready_action: str = CONTINUE_DEPLOYMENT
    ready_wait_minutes: int = 0
    # TERMINATE: retire blue after termination_wait_minutes; KEEP_ALIVE: keep it.
    terminate_action: str = KEEP_ALIVE
    termination_wait_minutes: int = 0

    def to_document(self) -> dict[str, Any]:
        return {
            "readyAction": self.ready_action,
            "readyWaitMinutes": self.ready_wait_minutes,
            "terminateAction": self.terminate_action,
            "terminationWaitMinutes": self.termination_wait_minutes,
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> BlueGreenOptions:
        return cls(
            ready_action=str(data["readyAction"]),
            ready_wait_minutes=int(data["readyWaitMinutes"]),
            terminate_action=str(data["terminateAction"]),
            termination_wait_minutes=int(data["terminationWaitMinutes"]),
        )

    @classmethod
    def from_configuration(
        cls, configuration: shapes.BlueGreenDeploymentConfiguration
    ) -> BlueGreenOptions:
        ready = configuration.get("deploymentReadyOption") or {}
        termination = configuration.get("terminateBlueInstancesOnDeploymentSuccess") or {}
        return cls(
            ready_action=ready.get("actionOnTimeout", CONTINUE_DEPLOYMENT),
            ready_wait_minutes=int(ready.get("waitTimeInMinutes", 0)),
            terminate_action=termination.get("action", KEEP_ALIVE),
            termination_wait_minutes=int(termination.get("terminationWaitTimeInMinutes", 0)),
        )


@dataclass(frozen=True)
class ShiftOptions:
    """How a Lambda or ECS deployment moves traffic (its config's trafficRoutingConfig)
    and how long it waits on its hook functions."""

    compute_platform: str  # Lambda or ECS
    routing_type: str = "AllAtOnce"  # TrafficRoutingType
    percentage: int | None = None
    interval_minutes: int | None = None
    # How long a routing config's minute lasts: 60 on AWS; shorter for tests and demos.
    minute_seconds: float = 60.0
    # AWS gives a hook function an hour to report its verdict.
    hook_timeout_seconds: float = 3600.0

    def to_document(self) -> dict[str, Any]:
        return {
            "computePlatform": self.compute_platform,
            "routingType": self.routing_type,
            "percentage": self.percentage,
            "intervalMinutes": self.interval_minutes,
            "minuteSeconds": self.minute_seconds,
            "hookTimeoutSeconds": self.hook_timeout_seconds,
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> ShiftOptions:
        return cls(
            compute_platform=str(data["computePlatform"]),
            routing_type=str(data["routingType"]),
            percentage=data.get("percentage"),
            interval_minutes=data.get("intervalMinutes"),
            minute_seconds=float(data["minuteSeconds"]),
            hook_timeout_seconds=float(data["hookTimeoutSeconds"]),
        )


@dataclass(frozen=True)
class DeploymentOptions:
    deployment_type: str = IN_PLACE
    traffic_control: bool = False
    ignore_application_stop_failures: bool = False
    auto_rollback_enabled: bool = False
    auto_rollback_events: tuple[str, ...] = ()
    alarms_enabled: bool = False
    ignore_poll_alarm_failure: bool = False
    alarm_names: tuple[str, ...] = ()
    agent_pickup_timeout_seconds: int = AGENT_PICKUP_TIMEOUT_SECONDS
    event_run_timeout_seconds: int = EVENT_RUN_TIMEOUT_SECONDS
    # The load balancer's target groups (loadBalancerInfo) BlockTraffic and AllowTraffic
    # take instances out of and put back in.
    target_groups: tuple[str, ...] = ()
    blue_green: BlueGreenOptions = BlueGreenOptions()
    # False for a blue/green rollback with no known-good revision to run hooks from: it
    # only moves traffic back (its agents' events are Skipped).
    run_hooks: bool = True
    # Lambda and ECS deployments (traffic_shift.py); None for Server ones.
    shift: ShiftOptions | None = None

    def rolls_back_on(self, event: str) -> bool:
        return self.auto_rollback_enabled and event in self.auto_rollback_events

    def to_document(self) -> dict[str, Any]:
        return {
            "deploymentType": self.deployment_type,
            "trafficControl": self.traffic_control,
            "ignoreApplicationStopFailures": self.ignore_application_stop_failures,
            "autoRollbackEnabled": self.auto_rollback_enabled,
            "autoRollbackEvents": list(self.auto_rollback_events),
            "alarmsEnabled": self.alarms_enabled,
            "ignorePollAlarmFailure": self.ignore_poll_alarm_failure,
            "alarmNames": list(self.alarm_names),
            "agentPickupTimeoutSeconds": self.agent_pickup_timeout_seconds,
            "eventRunTimeoutSeconds": self.event_run_timeout_seconds,
            "targetGroups": list(self.target_groups),
            "blueGreen": self.blue_green.to_document(),
            "runHooks": self.run_hooks,
            "shift": None if self.shift is None else self.shift.to_document(),
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> DeploymentOptions:
        return cls(
            deployment_type=str(data["deploymentType"]),
            traffic_control=bool(data["trafficControl"]),
            ignore_application_stop_failures=bool(data["ignoreApplicationStopFailures"]),
            auto_rollback_enabled=bool(data["autoRollbackEnabled"]),
            auto_rollback_events=tuple(data["autoRollbackEvents"]),
            alarms_enabled=bool(data["alarmsEnabled"]),
            ignore_poll_alarm_failure=bool(data["ignorePollAlarmFailure"]),
            alarm_names=tuple(data["alarmNames"]),
            agent_pickup_timeout_seconds=int(data["agentPickupTimeoutSeconds"]),
            event_run_timeout_seconds=int(data["eventRunTimeoutSeconds"]),
            target_groups=tuple(data.get("targetGroups", ())),
            blue_green=BlueGreenOptions.from_document(data["blueGreen"])
            if "blueGreen" in data
            else BlueGreenOptions(),
            run_hooks=bool(data.get("runHooks", True)),
            shift=ShiftOptions.from_document(data["shift"]) if data.get("shift") else None,
        )


def resolve_options(
    group: Mapping[str, Any],
    request: shapes.CreateDeploymentInput,
    *,
    agent_pickup_timeout_seconds: int = AGENT_PICKUP_TIMEOUT_SECONDS,
    event_run_timeout_seconds: int = EVENT_RUN_TIMEOUT_SECONDS,
) -> DeploymentOptions:
    """The options of a deployment of ``group`` (its members as the model names them)."""
    style = cast(shapes.DeploymentStyle, group.get("deploymentStyle") or {})
    rollback = request.get("autoRollbackConfiguration")
    if rollback is None:
        rollback = cast(
            shapes.AutoRollbackConfiguration, group.get("autoRollbackConfiguration") or {}
        )
    alarms = request.get("overrideAlarmConfiguration")
    if alarms is None:
        alarms = cast(shapes.AlarmConfiguration, group.get("alarmConfiguration") or {})
    return DeploymentOptions(
        deployment_type=style.get("deploymentType", IN_PLACE),
        traffic_control=style.get("deploymentOption") == WITH_TRAFFIC_CONTROL,
        ignore_application_stop_failures=bool(request.get("ignoreApplicationStopFailures")),
        auto_rollback_enabled=bool(rollback.get("enabled")),
        auto_rollback_events=tuple(rollback.get("events", ())),
        alarms_enabled=bool(alarms.get("enabled")),
        ignore_poll_alarm_failure=bool(alarms.get("ignorePollAlarmFailure")),
        alarm_names=tuple(alarm["name"] for alarm in alarms.get("alarms", ()) if "name" in alarm),
        agent_pickup_timeout_seconds=agent_pickup_timeout_seconds,
        event_run_timeout_seconds=event_run_timeout_seconds,
        target_groups=target_group_names(
            cast(shapes.LoadBalancerInfo, group.get("loadBalancerInfo") or {})
        ),
        blue_green=BlueGreenOptions.from_configuration(
            cast(
                shapes.BlueGreenDeploymentConfiguration,
                group.get("blueGreenDeploymentConfiguration") or {},
            )
        ),
    )


def target_group_names(info: shapes.LoadBalancerInfo) -> tuple[str, ...]:
    """The target groups a deployment moves instances between: the classic load balancers
    (elbInfoList) and the target groups (targetGroupInfoList) alike, each named once; an
    ECS group's target group pair, production first."""
    pairs = [
        group
        for pair in info.get("targetGroupPairInfoList", ())
        for group in pair.get("targetGroups", ())
    ]
    names: list[str] = []
    for entry in (*info.get("elbInfoList", ()), *info.get("targetGroupInfoList", ()), *pairs):
        name = entry.get("name")
        if name and name not in names:
            names.append(name)
    return tuple(names)
