"""What the driver must do after a transition, in the order given.

The state a transition returns already records every effect (an action InProgress, a
timer set, the stage it waits for), so a driver persists the state and performs the effects
in one go; performing one twice must be harmless (an action execution id runs once).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from forgeline.codepipeline.engine.plan import ActionPlan, EnvironmentVariable
from forgeline.codepipeline.engine.state import ArtifactRef


@dataclass(frozen=True)
class WantStage:
    """Ask the pipeline's lanes (lanes.grant with Arrive) to let the execution into
    ``stage``; feed StageGranted when they do, Superseded if a newer execution overtakes it."""

    stage: str


@dataclass(frozen=True)
class ReleaseStage:
    """The execution is done with ``stage`` (lanes.grant with Leave): another may enter."""

    stage: str


@dataclass(frozen=True)
class RunAction:
    """Run the action, then report ActionSucceeded or ActionFailed with its id. A manual
    approval parks here until PutApprovalResult answers it."""

    action_execution_id: str
    stage: str
    action: ActionPlan
    resolved_configuration: Mapping[str, str]
    input_artifacts: Mapping[str, ArtifactRef]
    # Every variable the action could reference, by namespace ("codepipeline",
    # "variables" and the namespaces of the actions that ran before it).
    namespace_variables: Mapping[str, Mapping[str, str]]
    resolved_commands: tuple[str, ...] = ()
    resolved_environment_variables: tuple[EnvironmentVariable, ...] = ()
    # StartPipelineExecution's sourceRevisions override for this source action.
    source_revision: Mapping[str, str] | None = None
    attempt: int = 1
    deadline: datetime | None = None


@dataclass(frozen=True)
class CancelAction:
    """Stop the action's work if it still runs (a build, a deployment, a parked approval):
    its late result is ignored."""

    action_execution_id: str


@dataclass(frozen=True)
class SetTimer:
    """Feed the execution a Tick at (or after) ``at``."""

    name: str
    at: datetime


@dataclass(frozen=True)
class ExecutionChanged:
    """The execution's status changed: publish "CodePipeline Pipeline Execution
    State Change"."""

    status: str


@dataclass(frozen=True)
class StageChanged:
    """A stage's status changed: publish "CodePipeline Stage Execution State Change"."""

    stage: str
    status: str


@dataclass(frozen=True)
class ActionChanged:
    """An action's status changed: publish "CodePipeline Action Execution State Change"
    and record the attempt for ListActionExecutions."""

    stage: str
    action: str
    status: str
    action_execution_id: str


@dataclass(frozen=True)
class StartRollback:
    """The stage failed with onFailure ROLLBACK: start a rollback execution (executionType
    ROLLBACK) of the stage's last successful execution, if there is one."""

    stage: str


@dataclass(frozen=True)
class Finished:
    """The execution ended: record its end time and summary, and take it out of every
    lane (lanes.grant with Withdraw)."""

    status: str
    summary: str | None


Effect = (
    WantStage
    | ReleaseStage
    | RunAction
    | CancelAction
    | SetTimer
    | ExecutionChanged
    | StageChanged
    | ActionChanged
    | StartRollback
    | Finished
)
