"""What happens to a deployment: the events the driver feeds the machine.

Every event names instances by the id the driver gave them in `Start`. An event that no
longer applies (a result for a command the deployment is not waiting on, anything after
the deployment finished) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeline.codedeploy.orchestrator.rollout import HealthClass
from forgeline.codedeploy.orchestrator.state import Diagnostics, ErrorInfo, ShiftTarget


@dataclass(frozen=True)
class InstanceSpec:
    """One instance the deployment targets, as the driver found it."""

    instance_id: str
    health: HealthClass = HealthClass.UNHEALTHY
    # A revision of this deployment group succeeded on the instance before.
    has_previous_revision: bool = False
    label: str | None = None


@dataclass(frozen=True)
class Enqueued:
    """The deployment waits for another one of its deployment group to finish."""


@dataclass(frozen=True)
class Start:
    instances: tuple[InstanceSpec, ...]
    # Lambda and ECS: what traffic shifts on (the one instance is its target).
    shift: ShiftTarget | None = None


@dataclass(frozen=True)
class Refused:
    """The deployment cannot start: its revision (a Lambda or ECS AppSpec) is unusable."""

    error: ErrorInfo


@dataclass(frozen=True)
class HookReported:
    """PutLifecycleEventHookExecutionStatus: a hook function's verdict."""

    hook_execution_id: str
    succeeded: bool


@dataclass(frozen=True)
class HookInvocationFailed:
    """The hook function could not be handed its payload."""

    lifecycle_event: str
    message: str


@dataclass(frozen=True)
class TrafficShifted:
    """The replacement now takes `weight` percent of the traffic."""

    weight: int


@dataclass(frozen=True)
class CommandAcknowledged:
    """The agent took up the command (PutHostCommandAcknowledgement)."""

    instance_id: str
    lifecycle_event: str


@dataclass(frozen=True)
class CommandSucceeded:
    instance_id: str
    lifecycle_event: str


@dataclass(frozen=True)
class CommandFailed:
    instance_id: str
    lifecycle_event: str
    diagnostics: Diagnostics


@dataclass(frozen=True)
class ServerStepDone:
    """The server finished its own step (BlockTraffic, AllowTraffic) for an instance."""

    instance_id: str
    lifecycle_event: str


@dataclass(frozen=True)
class ServerStepFailed:
    instance_id: str
    lifecycle_event: str
    message: str


@dataclass(frozen=True)
class ContinueRequested:
    """ContinueDeployment (or SkipWaitTimeForInstanceTermination, as TERMINATION_WAIT)."""

    wait_type: str  # DeploymentWaitType: READY_WAIT or TERMINATION_WAIT


@dataclass(frozen=True)
class AgentTimedOut:
    """The instance's command went unanswered past its deadline."""

    instance_id: str


@dataclass(frozen=True)
class StopRequested:
    """StopDeployment; ``auto_rollback`` is its autoRollbackEnabled."""

    auto_rollback: bool = False


@dataclass(frozen=True)
class AlarmTripped:
    alarm_names: tuple[str, ...]


@dataclass(frozen=True)
class AlarmPollFailed:
    """The state of the deployment's alarms could not be read."""

    message: str


@dataclass(frozen=True)
class Tick:
    """A timer the machine set may be due: check deadlines at the transition's time."""


Event = (
    Enqueued
    | Start
    | CommandAcknowledged
    | CommandSucceeded
    | CommandFailed
    | ServerStepDone
    | ServerStepFailed
    | AgentTimedOut
    | StopRequested
    | AlarmTripped
    | AlarmPollFailed
    | Tick
    | ContinueRequested
    | Refused
    | HookReported
    | HookInvocationFailed
    | TrafficShifted
)
