"""What the engine runs: a pipeline declaration reduced to stages, actions and defaults.

`plan_from_declaration` reads a PipelineDeclaration exactly as the API received it (already
validated: names unique, artifacts wired, action types known) and fixes the defaults AWS
applies: runOrder 1, pipelineType V1, executionMode SUPERSEDED. A plan is frozen for the
life of an execution: the execution's state carries its own copy, so an updated pipeline
never changes an execution already running.

Action timeouts follow AWS's quota table ("Length of time before an action times out"):
CloudFormation 3 days, CodeBuild build and test 8 hours, CodeDeploy 5 days, Lambda 24 hours,
S3 deploy 90 minutes, Step Functions and manual approval 7 days, custom actions 24 hours,
anything else 1 hour. ``timeoutInMinutes`` (manual approval only, as AWS allows) overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

# PipelineType, ExecutionMode, Result, StageRetryMode and ActionOwner values.
V1 = "V1"
V2 = "V2"
MODE_SUPERSEDED = "SUPERSEDED"
MODE_QUEUED = "QUEUED"
MODE_PARALLEL = "PARALLEL"
RESULT_FAIL = "FAIL"
RESULT_RETRY = "RETRY"
RESULT_ROLLBACK = "ROLLBACK"
FAILED_ACTIONS = "FAILED_ACTIONS"
ALL_ACTIONS = "ALL_ACTIONS"
OWNER_AWS = "AWS"
OWNER_CUSTOM = "Custom"

DEFAULT_RUN_ORDER = 1
DEFAULT_TIMEOUT = timedelta(hours=1)
CUSTOM_ACTION_TIMEOUT = timedelta(hours=24)
# (category, provider) of AWS-owned action types whose timeout is not the 1-hour default.
PROVIDER_TIMEOUTS: Mapping[tuple[str, str], timedelta] = {
    ("Approval", "Manual"): timedelta(days=7),
    ("Deploy", "CloudFormation"): timedelta(days=3),
    ("Build", "CodeBuild"): timedelta(hours=8),
    ("Test", "CodeBuild"): timedelta(hours=8),
    ("Deploy", "CodeDeploy"): timedelta(days=5),
    ("Deploy", "CodeDeployToECS"): timedelta(days=5),
    ("Invoke", "Lambda"): timedelta(hours=24),
    ("Deploy", "S3"): timedelta(minutes=90),
    ("Invoke", "StepFunctions"): timedelta(days=7),
}


def default_timeout(category: str, owner: str, provider: str) -> timedelta:
    """How long an action of this type may run before CodePipeline fails it."""
    if owner == OWNER_CUSTOM:
        return CUSTOM_ACTION_TIMEOUT
    return PROVIDER_TIMEOUTS.get((category, provider), DEFAULT_TIMEOUT)


@dataclass(frozen=True)
class EnvironmentVariable:
    """One of a Commands action's environmentVariables (type PLAINTEXT or SECRETS_MANAGER)."""

    name: str
    value: str
    type: str = "PLAINTEXT"

    def to_document(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "type": self.type}

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> EnvironmentVariable:
        return cls(str(data["name"]), str(data["value"]), str(data.get("type", "PLAINTEXT")))


@dataclass(frozen=True)
class ActionPlan:
    name: str
    stage: str
    category: str
    owner: str
    provider: str
    version: str
    run_order: int
    configuration: Mapping[str, str]  # as declared: ``#{...}`` references unresolved
    input_artifacts: tuple[str, ...]
    output_artifacts: tuple[str, ...]
    namespace: str | None
    timeout_minutes: int | None  # None: the provider's default (default_timeout)
    commands: tuple[str, ...] = ()
    output_variables: tuple[str, ...] = ()
    environment_variables: tuple[EnvironmentVariable, ...] = ()
    region: str | None = None
    role_arn: str | None = None

    @property
    def timeout(self) -> timedelta:
        if self.timeout_minutes is not None:
            return timedelta(minutes=self.timeout_minutes)
        return default_timeout(self.category, self.owner, self.provider)

    @property
    def is_approval(self) -> bool:
        return self.category == "Approval" and self.provider == "Manual"

    def to_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stage": self.stage,
            "category": self.category,
            "owner": self.owner,
            "provider": self.provider,
            "version": self.version,
            "runOrder": self.run_order,
            "configuration": dict(self.configuration),
            "inputArtifacts": list(self.input_artifacts),
            "outputArtifacts": list(self.output_artifacts),
            "namespace": self.namespace,
            "timeoutInMinutes": self.timeout_minutes,
            "commands": list(self.commands),
            "outputVariables": list(self.output_variables),
            "environmentVariables": [v.to_document() for v in self.environment_variables],
            "region": self.region,
            "roleArn": self.role_arn,
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> ActionPlan:
        timeout = data.get("timeoutInMinutes")
        return cls(
            name=str(data["name"]),
            stage=str(data["stage"]),
            category=str(data["category"]),
            owner=str(data["owner"]),
            provider=str(data["provider"]),
            version=str(data["version"]),
            run_order=int(data["runOrder"]),
            configuration={str(k): str(v) for k, v in data["configuration"].items()},
            input_artifacts=tuple(str(name) for name in data["inputArtifacts"]),
            output_artifacts=tuple(str(name) for name in data["outputArtifacts"]),
            namespace=data.get("namespace"),
            timeout_minutes=None if timeout is None else int(timeout),
            commands=tuple(str(command) for command in data.get("commands", ())),
            output_variables=tuple(str(name) for name in data.get("outputVariables", ())),
            environment_variables=tuple(
                EnvironmentVariable.from_document(v) for v in data.get("environmentVariables", ())
            ),
            region=data.get("region"),
            role_arn=data.get("roleArn"),
        )


@dataclass(frozen=True)
class StagePlan:
    name: str
    actions: tuple[ActionPlan, ...]
    # onFailure's result (RETRY, ROLLBACK, FAIL) and, for RETRY, its retryMode; None when
    # the stage declares no onFailure, which fails the execution as FAIL does.
    on_failure: str | None = None
    retry_mode: str | None = None

    @property
    def run_orders(self) -> tuple[int, ...]:
        """The stage's runOrder values, lowest first: each a group that runs together."""
        return tuple(sorted({action.run_order for action in self.actions}))

    def action(self, name: str) -> ActionPlan | None:
        for action in self.actions:
            if action.name == name:
                return action
        return None

    def to_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "actions": [action.to_document() for action in self.actions],
            "onFailure": self.on_failure,
            "retryMode": self.retry_mode,
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> StagePlan:
        return cls(
            name=str(data["name"]),
            actions=tuple(ActionPlan.from_document(a) for a in data["actions"]),
            on_failure=data.get("onFailure"),
            retry_mode=data.get("retryMode"),
        )


@dataclass(frozen=True)
class PipelinePlan:
    name: str
    version: int
    pipeline_type: str
    execution_mode: str
    stages: tuple[StagePlan, ...]
    # The declared pipeline variables' default values (V2); a variable declared without a
    # default has none here and must be given when the execution starts.
    variables: Mapping[str, str] = field(default_factory=dict)

    def stage(self, name: str) -> StagePlan | None:
        for stage in self.stages:
            if stage.name == name:
                return stage
        return None

    def stage_index(self, name: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        raise KeyError(name)

    def to_document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "pipelineType": self.pipeline_type,
            "executionMode": self.execution_mode,
            "stages": [stage.to_document() for stage in self.stages],
            "variables": dict(self.variables),
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> PipelinePlan:
        return cls(
            name=str(data["name"]),
            version=int(data["version"]),
            pipeline_type=str(data["pipelineType"]),
            execution_mode=str(data["executionMode"]),
            stages=tuple(StagePlan.from_document(s) for s in data["stages"]),
            variables={str(k): str(v) for k, v in data["variables"].items()},
        )


def plan_from_declaration(declaration: Mapping[str, Any], version: int) -> PipelinePlan:
    """The plan of a validated PipelineDeclaration at ``version``."""
    defaults = {
        str(variable["name"]): str(variable["defaultValue"])
        for variable in declaration.get("variables") or ()
        if variable.get("defaultValue") is not None
    }
    return PipelinePlan(
        name=str(declaration["name"]),
        version=version,
        pipeline_type=str(declaration.get("pipelineType") or V1),
        execution_mode=str(declaration.get("executionMode") or MODE_SUPERSEDED),
        stages=tuple(_stage_plan(stage) for stage in declaration["stages"]),
        variables=defaults,
    )


def _stage_plan(stage: Mapping[str, Any]) -> StagePlan:
    name = str(stage["name"])
    # The result applies whatever the onFailure conditions say: their rules are not
    # evaluated here.
    on_failure = stage.get("onFailure") or {}
    result = on_failure.get("result")
    retry_mode = (on_failure.get("retryConfiguration") or {}).get("retryMode")
    if result == RESULT_RETRY and retry_mode is None:
        retry_mode = FAILED_ACTIONS
    return StagePlan(
        name=name,
        actions=tuple(_action_plan(name, action) for action in stage["actions"]),
        on_failure=None if result is None else str(result),
        retry_mode=None if retry_mode is None else str(retry_mode),
    )


def _action_plan(stage: str, action: Mapping[str, Any]) -> ActionPlan:
    type_id = action["actionTypeId"]
    timeout = action.get("timeoutInMinutes")
    return ActionPlan(
        name=str(action["name"]),
        stage=stage,
        category=str(type_id["category"]),
        owner=str(type_id["owner"]),
        provider=str(type_id["provider"]),
        version=str(type_id["version"]),
        run_order=int(action.get("runOrder") or DEFAULT_RUN_ORDER),
        configuration={str(k): str(v) for k, v in (action.get("configuration") or {}).items()},
        input_artifacts=tuple(str(a["name"]) for a in action.get("inputArtifacts") or ()),
        output_artifacts=tuple(str(a["name"]) for a in action.get("outputArtifacts") or ()),
        namespace=action.get("namespace"),
        timeout_minutes=None if timeout is None else int(timeout),
        commands=tuple(str(command) for command in action.get("commands") or ()),
        output_variables=tuple(str(name) for name in action.get("outputVariables") or ()),
        environment_variables=tuple(
            EnvironmentVariable.from_document(v) for v in action.get("environmentVariables") or ()
        ),
        region=action.get("region"),
        role_arn=action.get("roleArn"),
    )
