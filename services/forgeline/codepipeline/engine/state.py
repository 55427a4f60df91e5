"""One pipeline execution's state as the engine keeps it, and its JSON document.

The driver stores `ExecutionState.to_document()` in the execution's row and rebuilds the
state with `ExecutionState.from_document()` before each transition, so a restarted server
carries on where the last one stopped. The state carries the plan it runs, so an update to
the pipeline never changes an execution under way.

Statuses are the model's values: PipelineExecutionStatus for the execution,
StageExecutionStatus for stages, ActionExecutionStatus for actions. A stage or action the
execution has not reached (or that a retry will run again) has no status (None): AWS shows
no latestExecution for it. Each action keeps its latest attempt only; the driver keeps the
history of earlier attempts from the ActionChanged effects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from forgeline.codepipeline.engine.plan import PipelinePlan
from forgeline.codepipeline.generated import shapes

DOCUMENT_VERSION = 1

# PipelineExecutionStatus
IN_PROGRESS = "InProgress"
STOPPING = "Stopping"
STOPPED = "Stopped"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
SUPERSEDED = "Superseded"
CANCELLED = "Cancelled"
FINAL_STATUSES = frozenset({STOPPED, SUCCEEDED, FAILED, SUPERSEDED, CANCELLED})
# StageExecutionStatus adds Skipped; ActionExecutionStatus adds Abandoned.
SKIPPED = "Skipped"
ABANDONED = "Abandoned"
# RetryTrigger
AUTOMATED_STAGE_RETRY = "AutomatedStageRetry"
MANUAL_STAGE_RETRY = "ManualStageRetry"
# ExecutionType
STANDARD = "STANDARD"
ROLLBACK = "ROLLBACK"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _strings(data: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(key): str(value) for key, value in (data or {}).items()}


@dataclass(frozen=True)
class ArtifactRef:
    """An artifact an action produced: ``location`` is whatever the driver stored it under
    (an object key, say); ``revision`` the source revision it holds, when known."""

    name: str
    location: str
    revision: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {"name": self.name, "location": self.location, "revision": self.revision}

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> ArtifactRef:
        return cls(str(data["name"]), str(data["location"]), data.get("revision"))


@dataclass(frozen=True)
class ErrorDetails:
    code: str
    message: str

    def to_botocore(self) -> shapes.ErrorDetails:
        return {"code": self.code, "message": self.message}

    def to_document(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> ErrorDetails:
        return cls(str(data["code"]), str(data["message"]))


@dataclass(frozen=True)
class Timer:
    """A moment the execution must be woken at (with a Tick): an action's deadline, named
    by its action execution id."""

    name: str
    at: datetime


@dataclass(frozen=True)
class ActionState:
    name: str
    status: str | None = None  # None: not run yet in this stage (or reset for a retry)
    action_execution_id: str | None = None
    attempt: int = 0  # how many times this execution has run the action
    start_time: datetime | None = None
    last_update_time: datetime | None = None
    summary: str | None = None
    external_execution_id: str | None = None
    external_url: str | None = None
    error: ErrorDetails | None = None
    output_variables: Mapping[str, str] = field(default_factory=dict)
    input_artifacts: tuple[ArtifactRef, ...] = ()
    output_artifacts: tuple[ArtifactRef, ...] = ()
    resolved_configuration: Mapping[str, str] = field(default_factory=dict)
    # What a source action reports of the revision it fetched (ArtifactRevision's members,
    # as strings).
    revision: Mapping[str, str] | None = None

    @property
    def running(self) -> bool:
        return self.status == IN_PROGRESS

    @property
    def broken(self) -> bool:
        """Ended without succeeding: what a FAILED_ACTIONS retry runs again."""
        return self.status in (FAILED, ABANDONED)

    def reset(self) -> ActionState:
        """The action ready to run again: only its name and attempt count remain."""
        return ActionState(self.name, attempt=self.attempt)

    def to_action_execution(self) -> shapes.ActionExecution:
        """GetPipelineState's actionStates[].latestExecution."""
        shape: shapes.ActionExecution = {}
        if self.action_execution_id is not None:
            shape["actionExecutionId"] = self.action_execution_id
        if self.status is not None:
            shape["status"] = self.status
        if self.summary is not None:
            shape["summary"] = self.summary
        if self.last_update_time is not None:
            shape["lastStatusChange"] = self.last_update_time
        if self.external_execution_id is not None:
            shape["externalExecutionId"] = self.external_execution_id
        if self.external_url is not None:
            shape["externalExecutionUrl"] = self.external_url
        if self.error is not None:
            shape["errorDetails"] = self.error.to_botocore()
        return shape

    def to_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "actionExecutionId": self.action_execution_id,
            "attempt": self.attempt,
            "startTime": _iso(self.start_time),
            "lastUpdateTime": _iso(self.last_update_time),
            "summary": self.summary,
            "externalExecutionId": self.external_execution_id,
            "externalUrl": self.external_url,
            "error": None if self.error is None else self.error.to_document(),
            "outputVariables": dict(self.output_variables),
            "inputArtifacts": [artifact.to_document() for artifact in self.input_artifacts],
            "outputArtifacts": [artifact.to_document() for artifact in self.output_artifacts],
            "resolvedConfiguration": dict(self.resolved_configuration),
            "revision": None if self.revision is None else dict(self.revision),
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> ActionState:
        error, revision = data.get("error"), data.get("revision")
        return cls(
            name=str(data["name"]),
            status=data.get("status"),
            action_execution_id=data.get("actionExecutionId"),
            attempt=int(data["attempt"]),
            start_time=_time(data.get("startTime")),
            last_update_time=_time(data.get("lastUpdateTime")),
            summary=data.get("summary"),
            external_execution_id=data.get("externalExecutionId"),
            external_url=data.get("externalUrl"),
            error=None if error is None else ErrorDetails.from_document(error),
            output_variables=_strings(data.get("outputVariables")),
            input_artifacts=tuple(ArtifactRef.from_document(a) for a in data["inputArtifacts"]),
            output_artifacts=tuple(ArtifactRef.from_document(a) for a in data["outputArtifacts"]),
            resolved_configuration=_strings(data.get("resolvedConfiguration")),
            revision=None if revision is None else _strings(revision),
        )


@dataclass(frozen=True)
class StageState:
    name: str
    actions: tuple[ActionState, ...]
    status: str | None = None  # None: not entered by this execution
    auto_retry_attempts: int = 0
    manual_retry_attempts: int = 0
    latest_retry_trigger: str | None = None
    # A manual retry's StageRetryMode while the execution waits to enter the stage again.
    pending_retry_mode: str | None = None

    @property
    def holds_lane(self) -> bool:
        """The stage is under way for this execution: no other may enter it (QUEUED,
        SUPERSEDED) until it ends."""
        return self.status in (IN_PROGRESS, STOPPING)

    def action(self, name: str) -> ActionState:
        for action in self.actions:
            if action.name == name:
                return action
        raise KeyError(name)

    def with_action(self, updated: ActionState) -> StageState:
        actions = tuple(updated if a.name == updated.name else a for a in self.actions)
        return replace(self, actions=actions)

    def retry_metadata(self) -> shapes.RetryStageMetadata | None:
        """GetPipelineState's retryStageMetadata, once the stage was retried."""
        if self.latest_retry_trigger is None:
            return None
        shape: shapes.RetryStageMetadata = {"latestRetryTrigger": self.latest_retry_trigger}
        if self.auto_retry_attempts:
            shape["autoStageRetryAttempt"] = self.auto_retry_attempts
        if self.manual_retry_attempts:
            shape["manualStageRetryAttempt"] = self.manual_retry_attempts
        return shape

    def to_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "actions": [action.to_document() for action in self.actions],
            "autoRetryAttempts": self.auto_retry_attempts,
            "manualRetryAttempts": self.manual_retry_attempts,
            "latestRetryTrigger": self.latest_retry_trigger,
            "pendingRetryMode": self.pending_retry_mode,
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> StageState:
        return cls(
            name=str(data["name"]),
            status=data.get("status"),
            actions=tuple(ActionState.from_document(a) for a in data["actions"]),
            auto_retry_attempts=int(data["autoRetryAttempts"]),
            manual_retry_attempts=int(data["manualRetryAttempts"]),
            latest_retry_trigger=data.get("latestRetryTrigger"),
            pending_retry_mode=data.get("pendingRetryMode"),
        )


@dataclass(frozen=True)
class RollbackSeed:
    """What a rollback execution (executionType ROLLBACK) starts from: it runs ``stage``
    only, with what ``target_execution_id`` (an execution that succeeded in that stage) had
    when it ran it. ``artifacts`` are every artifact the target's earlier stages produced,
    by name; ``namespace_variables`` the output variables of their actions, by namespace;
    ``variables`` the target's pipeline variables; ``artifact_revisions`` what its source
    actions fetched, by output artifact name."""

    stage: str
    target_execution_id: str
    artifacts: Mapping[str, ArtifactRef] = field(default_factory=dict)
    namespace_variables: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    artifact_revisions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "targetExecutionId": self.target_execution_id,
            "artifacts": {name: ref.to_document() for name, ref in self.artifacts.items()},
            "namespaceVariables": {k: dict(v) for k, v in self.namespace_variables.items()},
            "variables": dict(self.variables),
            "artifactRevisions": {k: dict(v) for k, v in self.artifact_revisions.items()},
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> RollbackSeed:
        return cls(
            stage=str(data["stage"]),
            target_execution_id=str(data["targetExecutionId"]),
            artifacts={
                str(name): ArtifactRef.from_document(ref)
                for name, ref in (data.get("artifacts") or {}).items()
            },
            namespace_variables={
                str(k): _strings(v) for k, v in (data.get("namespaceVariables") or {}).items()
            },
            variables=_strings(data.get("variables")),
            artifact_revisions={
                str(k): _strings(v) for k, v in (data.get("artifactRevisions") or {}).items()
            },
        )


@dataclass(frozen=True)
class ExecutionState:
    execution_id: str
    status: str | None = None  # None until Start
    status_summary: str | None = None
    plan: PipelinePlan | None = None  # fixed by Start
    # Makes the execution's action execution ids unguessable (machine.action_execution_id).
    nonce: str = ""
    trigger: Mapping[str, str] = field(default_factory=dict)  # ExecutionTrigger
    variables: Mapping[str, str] = field(default_factory=dict)  # resolved pipeline variables
    # StartPipelineExecution's sourceRevisions, by source action name.
    source_revisions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # What the source actions fetched, by output artifact name (artifactRevisions).
    artifact_revisions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    stages: tuple[StageState, ...] = ()
    # The stage the execution asked to enter (WantStage) and waits for: its inbound
    # execution, as GetPipelineState shows it.
    waiting_for: str | None = None
    timers: tuple[Timer, ...] = ()
    stop_reason: str | None = None
    start_time: datetime | None = None
    last_update_time: datetime | None = None
    end_time: datetime | None = None
    # Set for a rollback execution: the stage it runs and what it runs it with.
    rollback: RollbackSeed | None = None

    @property
    def execution_type(self) -> str:
        """ExecutionType: ROLLBACK for an execution started from a RollbackSeed."""
        return STANDARD if self.rollback is None else ROLLBACK

    @property
    def started(self) -> bool:
        return self.status is not None

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    def stage(self, name: str) -> StageState | None:
        for stage in self.stages:
            if stage.name == name:
                return stage
        return None

    @property
    def current_stage(self) -> StageState | None:
        """The stage under way (InProgress or Stopping), if any."""
        for stage in self.stages:
            if stage.holds_lane:
                return stage
        return None

    @property
    def latest_stage(self) -> StageState | None:
        """The furthest stage this execution reached."""
        reached = [stage for stage in self.stages if stage.status is not None]
        return reached[-1] if reached else None

    def find_action(self, action_execution_id: str) -> tuple[StageState, ActionState] | None:
        for stage in self.stages:
            for action in stage.actions:
                if action.action_execution_id == action_execution_id:
                    return stage, action
        return None

    def succeeded_actions(self) -> Iterator[tuple[StageState, ActionState]]:
        for stage in self.stages:
            for action in stage.actions:
                if action.status == SUCCEEDED:
                    yield stage, action

    def artifacts(self) -> dict[str, ArtifactRef]:
        """Every artifact the execution's succeeded actions produced, by name."""
        return {
            artifact.name: artifact
            for _, action in self.succeeded_actions()
            for artifact in action.output_artifacts
        }

    def available_artifacts(self) -> dict[str, ArtifactRef]:
        """The artifacts an action of this execution may take as input: those its succeeded
        actions produced and, in a rollback, those its seed brings from the target."""
        seeded = {} if self.rollback is None else dict(self.rollback.artifacts)
        return {**seeded, **self.artifacts()}

    def resolved_variables(self) -> list[shapes.ResolvedPipelineVariable]:
        return [{"name": k, "resolvedValue": v} for k, v in self.variables.items()]

    def to_document(self) -> dict[str, Any]:
        return {
            "version": DOCUMENT_VERSION,
            "executionId": self.execution_id,
            "status": self.status,
            "statusSummary": self.status_summary,
            "plan": None if self.plan is None else self.plan.to_document(),
            "nonce": self.nonce,
            "trigger": dict(self.trigger),
            "variables": dict(self.variables),
            "sourceRevisions": {k: dict(v) for k, v in self.source_revisions.items()},
            "artifactRevisions": {k: dict(v) for k, v in self.artifact_revisions.items()},
            "stages": [stage.to_document() for stage in self.stages],
            "waitingFor": self.waiting_for,
            "timers": [{"name": timer.name, "at": _iso(timer.at)} for timer in self.timers],
            "stopReason": self.stop_reason,
            "startTime": _iso(self.start_time),
            "lastUpdateTime": _iso(self.last_update_time),
            "endTime": _iso(self.end_time),
            "rollback": None if self.rollback is None else self.rollback.to_document(),
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> ExecutionState:
        version = data.get("version")
        if version != DOCUMENT_VERSION:
            raise ValueError(f"unknown pipeline execution state document version: {version!r}")
        plan, rollback = data.get("plan"), data.get("rollback")
        return cls(
            execution_id=str(data["executionId"]),
            status=data.get("status"),
            status_summary=data.get("statusSummary"),
            plan=None if plan is None else PipelinePlan.from_document(plan),
            nonce=str(data["nonce"]),
            trigger=_strings(data.get("trigger")),
            variables=_strings(data.get("variables")),
            source_revisions={k: _strings(v) for k, v in data["sourceRevisions"].items()},
            artifact_revisions={k: _strings(v) for k, v in data["artifactRevisions"].items()},
            stages=tuple(StageState.from_document(s) for s in data["stages"]),
            waiting_for=data.get("waitingFor"),
            timers=tuple(
                Timer(str(t["name"]), datetime.fromisoformat(t["at"])) for t in data["timers"]
            ),
            stop_reason=data.get("stopReason"),
            start_time=_time(data.get("startTime")),
            last_update_time=_time(data.get("lastUpdateTime")),
            end_time=_time(data.get("endTime")),
            rollback=None if rollback is None else RollbackSeed.from_document(rollback),
        )


def new_execution(execution_id: str) -> ExecutionState:
    """An execution just created: nothing has happened until its Start event."""
    return ExecutionState(execution_id=execution_id)
