"""What the driver must do after a transition, in the order given.

The state a transition returns already records every effect (an instance InProgress, a
timer set), so a driver persists the state and performs the effects in one go; performing
one twice must be harmless (a command is queued once per instance and event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forgeline.codedeploy.orchestrator.state import ErrorInfo


@dataclass(frozen=True)
class SendCommand:
    """Queue a host command (CommandName = the lifecycle event) for the instance's agent."""

    instance_id: str
    lifecycle_event: str


@dataclass(frozen=True)
class RunServerStep:
    """Do the server's own step for the instance (BlockTraffic, AllowTraffic), then report
    ServerStepDone or ServerStepFailed."""

    instance_id: str
    lifecycle_event: str


@dataclass(frozen=True)
class CancelCommands:
    """Withdraw the instance's commands not yet completed: the agent must not take them up,
    and their late results are ignored."""

    instance_id: str


@dataclass(frozen=True)
class SetTimer:
    """Feed the deployment a Tick at (or after) ``at``."""

    name: str
    at: datetime


@dataclass(frozen=True)
class InstanceChanged:
    """An instance's status changed: publish "CodeDeploy Instance State-change Notification"
    and fire the group's instance triggers."""

    instance_id: str
    status: str


@dataclass(frozen=True)
class DeploymentChanged:
    """The deployment's status changed: publish "CodeDeploy Deployment State-change
    Notification" and fire the group's deployment triggers."""

    status: str


@dataclass(frozen=True)
class Finished:
    """The deployment ended (Succeeded, Failed or Stopped): record its completion time and
    error, and the deployment group's last attempted (and successful) deployment."""

    status: str
    error: ErrorInfo | None


@dataclass(frozen=True)
class RetireInstances:
    """Blue/green: the original instances are done with (TERMINATE): the driver
    deregisters them, as AWS terminates the original EC2 instances."""

    instance_ids: tuple[str, ...]


@dataclass(frozen=True)
class StartRollback:
    """Create the rollback deployment (the group's last successful revision, carrying
    rollbackInfo) because of this AutoRollbackEvent, if there is a revision to go back to."""

    reason: str


@dataclass(frozen=True)
class InvokeHook:
    """Hand the hook function its payload ({DeploymentId, LifecycleEventHookExecutionId});
    its verdict comes back as HookReported, a failure to deliver as HookInvocationFailed."""

    lifecycle_event: str
    function_name: str
    hook_execution_id: str


@dataclass(frozen=True)
class ShiftTraffic:
    """Give the replacement `weight` percent of the traffic (the original the rest), then
    report TrafficShifted, or ServerStepFailed for the AllowTraffic event."""

    weight: int


Effect = (
    SendCommand
    | RunServerStep
    | CancelCommands
    | SetTimer
    | InstanceChanged
    | DeploymentChanged
    | Finished
    | StartRollback
    | RetireInstances
    | InvokeHook
    | ShiftTraffic
)
