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
    )
