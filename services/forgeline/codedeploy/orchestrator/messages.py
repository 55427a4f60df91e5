"""The words a deployment ends with: error information and lifecycle event diagnostics.

HEALTH_CONSTRAINTS, HEALTH_CONSTRAINTS_INVALID and NO_INSTANCES carry AWS's own messages
(its error code reference and deployment pages); the agent-silence diagnostic is the one
AWS shows on an instance whose agent never took up its lifecycle event.
"""

from __future__ import annotations

from collections.abc import Sequence

from forgeline.codedeploy.orchestrator.state import Diagnostics, ErrorInfo

# ErrorCode values.
HEALTH_CONSTRAINTS = "HEALTH_CONSTRAINTS"
HEALTH_CONSTRAINTS_INVALID = "HEALTH_CONSTRAINTS_INVALID"
NO_INSTANCES = "NO_INSTANCES"
MANUAL_STOP = "MANUAL_STOP"
ALARM_ACTIVE = "ALARM_ACTIVE"
INTERNAL_ERROR = "INTERNAL_ERROR"
TIMEOUT = "TIMEOUT"

# LifecycleErrorCode for failures no script reported.
UNKNOWN_ERROR = "UnknownError"

_MESSAGES = {
    HEALTH_CONSTRAINTS: (
        "The overall deployment failed because too many individual instances failed "
        "deployment, too few healthy instances are available for deployment, or some "
        "instances in your deployment group are experiencing problems."
    ),
    HEALTH_CONSTRAINTS_INVALID: (
        "The deployment can't start because the minimum number of healthy instances, as "
        "defined by your deployment configuration, are not available. You can reduce the "
        "required number of healthy instances by updating your deployment configuration or "
        "increase the number of instances in this deployment group."
    ),
    NO_INSTANCES: (
        "The deployment failed because no instances were found for your deployment group. "
        "Check your deployment group settings to make sure the tags for your Amazon EC2 "
        "instances or Auto Scaling groups correctly identify the instances you want to "
        "deploy to, and then try again."
    ),
    MANUAL_STOP: "The deployment was stopped by a StopDeployment request.",
}


def error(code: str) -> ErrorInfo:
    """The error information for a code with a fixed message."""
    return ErrorInfo(code, _MESSAGES[code])


def alarm_error(alarm_names: Sequence[str]) -> ErrorInfo:
    names = ", ".join(alarm_names)
    return ErrorInfo(
        ALARM_ACTIVE, f"The deployment was stopped because these alarms are in ALARM: {names}."
    )


def alarm_poll_error(reason: str) -> ErrorInfo:
    return ErrorInfo(
        ALARM_ACTIVE,
        "The deployment was stopped because the state of its alarms could not be read "
        f"(ignorePollAlarmFailure is false): {reason}",
    )


def ready_wait_expired() -> ErrorInfo:
    return ErrorInfo(
        TIMEOUT,
        "The replacement instances were ready, but no ContinueDeployment (READY_WAIT) came "
        "within the deployment group's deploymentReadyOption.waitTimeInMinutes, so traffic "
        "was not rerouted (actionOnTimeout STOP_DEPLOYMENT).",
    )


def unsupported_error(deployment_type: str) -> ErrorInfo:
    return ErrorInfo(
        INTERNAL_ERROR, f"{deployment_type} deployments are not supported by this server yet."
    )


AGENT_NEVER_TOOK_UP = Diagnostics(
    UNKNOWN_ERROR,
    message=(
        "CodeDeploy agent was not able to receive the lifecycle event. Check the CodeDeploy "
        "agent logs on your host and make sure the agent is running and can connect to the "
        "CodeDeploy server."
    ),
)


def agent_went_silent(seconds: int) -> Diagnostics:
    return Diagnostics(
        UNKNOWN_ERROR,
        message=(
            f"The CodeDeploy agent took up this lifecycle event but did not report its end "
            f"within {seconds} seconds. Check that the agent is still running on the host."
        ),
    )


def server_step_failed(reason: str) -> Diagnostics:
    return Diagnostics(UNKNOWN_ERROR, message=reason)


STOPPED_WHILE_RUNNING = Diagnostics(
    UNKNOWN_ERROR, message="The deployment was stopped before this lifecycle event ended."
)
