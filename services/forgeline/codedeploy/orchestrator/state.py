"""A deployment's state as the orchestrator keeps it, and its JSON document.

The driver stores `DeploymentState.to_document()` in the deployment row's JSON column and
rebuilds the state with `DeploymentState.from_document()` before each transition, so a
restarted server carries on where the last one stopped. Statuses use the model's values
(DeploymentStatus, TargetStatus, LifecycleEventStatus); the lifecycle events and error
information also render in the model's shapes for the API.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from forgeline.codedeploy.generated import shapes
from forgeline.codedeploy.orchestrator.options import DeploymentOptions
from forgeline.codedeploy.orchestrator.rollout import HealthClass, MinimumHealthyHosts, RolloutPlan

DOCUMENT_VERSION = 1

# DeploymentStatus
CREATED = "Created"
QUEUED = "Queued"
IN_PROGRESS = "InProgress"
BAKING = "Baking"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
STOPPED = "Stopped"
READY = "Ready"
FINAL_STATUSES = frozenset({SUCCEEDED, FAILED, STOPPED})
# TargetStatus and LifecycleEventStatus add these.
PENDING = "Pending"
SKIPPED = "Skipped"
UNKNOWN = "Unknown"

# Why an instance failed: a script or the agent's own step failed, the agent never
# answered, a server step failed, or the deployment was stopped while it ran.
CAUSE_COMMAND = "command"
CAUSE_AGENT_SILENT = "agent_silent"
CAUSE_SERVER_STEP = "server_step"
CAUSE_STOPPED = "stopped"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True)
class ErrorInfo:
    code: str  # the model's ErrorCode
    message: str

    def to_botocore(self) -> shapes.ErrorInformation:
        return {"code": self.code, "message": self.message}

    def to_document(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> ErrorInfo:
        return cls(code=str(data["code"]), message=str(data["message"]))


@dataclass(frozen=True)
class Diagnostics:
    """What the agent (or the server) reports about a lifecycle event that ended."""

    error_code: str  # the model's LifecycleErrorCode
    script_name: str = ""
    message: str = ""
    log_tail: str = ""

    def to_botocore(self) -> shapes.Diagnostics:
        return {
            "errorCode": self.error_code,
            "scriptName": self.script_name,
            "message": self.message,
            "logTail": self.log_tail,
        }

    def to_document(self) -> dict[str, Any]:
        return dict(self.to_botocore())

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> Diagnostics:
        return cls(
            error_code=str(data["errorCode"]),
            script_name=str(data.get("scriptName", "")),
            message=str(data.get("message", "")),
            log_tail=str(data.get("logTail", "")),
        )


@dataclass(frozen=True)
class LifecycleEventState:
    name: str
    status: str = PENDING
    start_time: datetime | None = None
    end_time: datetime | None = None
    diagnostics: Diagnostics | None = None

    @property
    def open(self) -> bool:
        """Not yet ended: still to run, or running."""
        return self.status in (PENDING, IN_PROGRESS)

    def ended(
        self, status: str, at: datetime, diagnostics: Diagnostics | None = None
    ) -> LifecycleEventState:
        return replace(
            self,
            status=status,
            start_time=self.start_time or at,
            end_time=at,
            diagnostics=diagnostics or self.diagnostics,
        )

    def to_botocore(self) -> shapes.LifecycleEvent:
        shape: shapes.LifecycleEvent = {"lifecycleEventName": self.name, "status": self.status}
        if self.start_time is not None:
            shape["startTime"] = self.start_time
        if self.end_time is not None:
            shape["endTime"] = self.end_time
        if self.diagnostics is not None:
            shape["diagnostics"] = self.diagnostics.to_botocore()
        return shape

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"lifecycleEventName": self.name, "status": self.status}
        if self.start_time is not None:
            document["startTime"] = _iso(self.start_time)
        if self.end_time is not None:
            document["endTime"] = _iso(self.end_time)
        if self.diagnostics is not None:
            document["diagnostics"] = self.diagnostics.to_document()
        return document

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> LifecycleEventState:
        diagnostics = data.get("diagnostics")
        return cls(
            name=str(data["lifecycleEventName"]),
            status=str(data["status"]),
            start_time=_time(data.get("startTime")),
            end_time=_time(data.get("endTime")),
            diagnostics=None if diagnostics is None else Diagnostics.from_document(diagnostics),
        )


@dataclass(frozen=True)
class InstanceState:
    instance_id: str
    health: HealthClass
    # Whether a revision of this deployment group succeeded on the instance before: without
    # one, the events that run the previous revision's scripts have nothing to run.
    has_previous_revision: bool
    events: tuple[LifecycleEventState, ...]
    status: str = PENDING
    label: str | None = None  # "Blue" / "Green" in blue/green deployments
    last_updated_at: datetime | None = None
    failure_cause: str | None = None

    @property
    def current_index(self) -> int | None:
        """The event running or next to run (events run strictly in order)."""
        for index, event in enumerate(self.events):
            if event.open:
                return index
        return None

    @property
    def current_event(self) -> LifecycleEventState | None:
        index = self.current_index
        return None if index is None else self.events[index]

    def with_event(self, index: int, event: LifecycleEventState, at: datetime) -> InstanceState:
        events = (*self.events[:index], event, *self.events[index + 1 :])
        return replace(self, events=events, last_updated_at=at)

    def lifecycle_events(self) -> list[shapes.LifecycleEvent]:
        return [event.to_botocore() for event in self.events]

    def to_document(self) -> dict[str, Any]:
        return {
            "instanceId": self.instance_id,
            "health": self.health.value,
            "hasPreviousRevision": self.has_previous_revision,
            "status": self.status,
            "label": self.label,
            "lastUpdatedAt": _iso(self.last_updated_at),
            "failureCause": self.failure_cause,
            "lifecycleEvents": [event.to_document() for event in self.events],
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> InstanceState:
        return cls(
            instance_id=str(data["instanceId"]),
            health=HealthClass(data["health"]),
            has_previous_revision=bool(data["hasPreviousRevision"]),
            status=str(data["status"]),
            label=data.get("label"),
            last_updated_at=_time(data.get("lastUpdatedAt")),
            failure_cause=data.get("failureCause"),
            events=tuple(LifecycleEventState.from_document(e) for e in data["lifecycleEvents"]),
        )


@dataclass(frozen=True)
class ShiftTarget:
    """What a Lambda or ECS deployment moves traffic on, from its AppSpec.

    Lambda: the function's alias, shifting from `original` (CurrentVersion) to
    `replacement` (TargetVersion). ECS: the service, from its current task definition to the
    AppSpec's. `weight` is the replacement's share (percent) as last applied."""

    platform: str  # Lambda or ECS
    target_id: str  # Lambda: function:alias; ECS: cluster:service
    original: str
    replacement: str
    hooks: tuple[tuple[str, str], ...] = ()  # (lifecycle event, function name)
    # Makes the deployment's hook execution ids unguessable (hook_execution_id).
    nonce: str = ""
    weight: int = 0
    shift_started: datetime | None = None  # when AllowTraffic began moving traffic

    def hook_function(self, lifecycle_event: str) -> str | None:
        return dict(self.hooks).get(lifecycle_event)

    def to_document(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "targetId": self.target_id,
            "original": self.original,
            "replacement": self.replacement,
            "hooks": [list(hook) for hook in self.hooks],
            "nonce": self.nonce,
            "weight": self.weight,
            "shiftStarted": _iso(self.shift_started),
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> ShiftTarget:
        return cls(
            platform=str(data["platform"]),
            target_id=str(data["targetId"]),
            original=str(data["original"]),
            replacement=str(data["replacement"]),
            hooks=tuple((str(event), str(function)) for event, function in data["hooks"]),
            nonce=str(data.get("nonce", "")),
            weight=int(data["weight"]),
            shift_started=_time(data.get("shiftStarted")),
        )


@dataclass(frozen=True)
class Timer:
    """A moment the deployment must be woken at (with a Tick) to check a deadline."""

    name: str
    at: datetime


@dataclass(frozen=True)
class DeploymentState:
    deployment_id: str
    status: str
    config_name: str
    minimum_healthy_hosts: MinimumHealthyHosts
    options: DeploymentOptions
    is_rollback: bool = False
    plan: RolloutPlan | None = None  # fixed when the deployment starts
    instances: tuple[InstanceState, ...] = ()  # in deployment order
    error: ErrorInfo | None = None
    timers: tuple[Timer, ...] = ()
    start_time: datetime | None = None
    complete_time: datetime | None = None
    # The AutoRollbackEvent a rollback was asked for with, once it was.
    rollback_reason: str | None = None
    # Where a blue/green deployment stands (blue_green.py); None for in-place ones.
    phase: str | None = None
    # What a Lambda or ECS deployment shifts traffic on (traffic_shift.py), once started.
    shift: ShiftTarget | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def instance(self, instance_id: str) -> InstanceState | None:
        for instance in self.instances:
            if instance.instance_id == instance_id:
                return instance
        return None

    def overview(self) -> shapes.DeploymentOverview:
        """Instance counts by status, as DeploymentInfo.deploymentOverview gives them."""
        counts = Counter(instance.status for instance in self.instances)
        return {
            "Pending": counts[PENDING],
            "InProgress": counts[IN_PROGRESS],
            "Succeeded": counts[SUCCEEDED],
            "Failed": counts[FAILED],
            "Skipped": counts[SKIPPED],
            "Ready": counts[READY],
        }

    def to_document(self) -> dict[str, Any]:
        return {
            "version": DOCUMENT_VERSION,
            "deploymentId": self.deployment_id,
            "status": self.status,
            "configName": self.config_name,
            "minimumHealthyHosts": self.minimum_healthy_hosts.to_document(),
            "options": self.options.to_document(),
            "isRollback": self.is_rollback,
            "plan": None if self.plan is None else self.plan.to_document(),
            "instances": [instance.to_document() for instance in self.instances],
            "error": None if self.error is None else self.error.to_document(),
            "timers": [{"name": timer.name, "at": _iso(timer.at)} for timer in self.timers],
            "startTime": _iso(self.start_time),
            "completeTime": _iso(self.complete_time),
            "rollbackReason": self.rollback_reason,
            "phase": self.phase,
            "shift": None if self.shift is None else self.shift.to_document(),
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> DeploymentState:
        version = data.get("version")
        if version != DOCUMENT_VERSION:
            raise ValueError(f"unknown deployment state document version: {version!r}")
        plan, error = data.get("plan"), data.get("error")
        return cls(
            deployment_id=str(data["deploymentId"]),
            status=str(data["status"]),
            config_name=str(data["configName"]),
            minimum_healthy_hosts=MinimumHealthyHosts.from_document(data["minimumHealthyHosts"]),
            options=DeploymentOptions.from_document(data["options"]),
            is_rollback=bool(data["isRollback"]),
            plan=None if plan is None else RolloutPlan.from_document(plan),
            instances=tuple(InstanceState.from_document(i) for i in data["instances"]),
            error=None if error is None else ErrorInfo.from_document(error),
            timers=tuple(
                Timer(name=str(t["name"]), at=datetime.fromisoformat(t["at"]))
                for t in data["timers"]
            ),
            start_time=_time(data.get("startTime")),
            complete_time=_time(data.get("completeTime")),
            rollback_reason=data.get("rollbackReason"),
            phase=data.get("phase"),
            shift=ShiftTarget.from_document(data["shift"]) if data.get("shift") else None,
        )


def new_deployment(
    deployment_id: str,
    config_name: str,
    minimum_healthy_hosts: MinimumHealthyHosts,
    options: DeploymentOptions | None = None,
    *,
    is_rollback: bool = False,
) -> DeploymentState:
    """A deployment just created (status Created): nothing has run yet."""
    return DeploymentState(
        deployment_id=deployment_id,
        status=CREATED,
        config_name=config_name,
        minimum_healthy_hosts=minimum_healthy_hosts,
        options=options or DeploymentOptions(),
        is_rollback=is_rollback,
    )
