"""What happens to a pipeline execution: the events the driver feeds the machine.

Actions are named by the action execution id the machine gave them in RunAction. An event
that no longer applies (a result for an action the execution is not waiting on, a late or
repeated one, a grant for a stage it no longer wants, anything after the execution ended
but a retry) changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from forgeline.codepipeline.engine.plan import PipelinePlan
from forgeline.codepipeline.engine.state import ArtifactRef, RollbackSeed

# FailureType: what a failure reported without a code is filed under.
JOB_FAILED = "JobFailed"


@dataclass(frozen=True)
class Start:
    """StartPipelineExecution, or a trigger, started the execution on ``plan``; with
    ``rollback``, RollbackStage (or a stage's onFailure ROLLBACK) started a rollback
    execution that runs the seed's stage only."""

    plan: PipelinePlan
    trigger: Mapping[str, str] = field(default_factory=dict)  # triggerType, triggerDetail
    variables: Mapping[str, str] = field(default_factory=dict)  # the start's variables (V2)
    # sourceRevisions overrides by source action name: {revisionType, revisionValue}.
    source_revisions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    nonce: str = ""
    rollback: RollbackSeed | None = None


@dataclass(frozen=True)
class StageGranted:
    """The lanes let the execution into ``stage`` (the answer to WantStage)."""

    stage: str


@dataclass(frozen=True)
class ActionSucceeded:
    action_execution_id: str
    output_artifacts: Mapping[str, ArtifactRef] = field(default_factory=dict)
    output_variables: Mapping[str, str] = field(default_factory=dict)
    summary: str | None = None
    external_url: str | None = None
    # A source action's revision (ArtifactRevision's members as strings), recorded for
    # each of its output artifacts.
    revision: Mapping[str, str] | None = None
    external_execution_id: str | None = None


@dataclass(frozen=True)
class ActionFailed:
    action_execution_id: str
    message: str
    code: str = JOB_FAILED
    external_url: str | None = None
    external_execution_id: str | None = None


@dataclass(frozen=True)
class Tick:
    """A timer the machine set may be due: check deadlines at the transition's time."""


@dataclass(frozen=True)
class StopRequested:
    """StopPipelineExecution: ``abandon`` abandons the running actions at once; without it
    they finish first (stop and wait)."""

    abandon: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class RetryRequested:
    """RetryStageExecution on the stage that failed (the API checked it is the latest
    execution of that stage)."""

    stage: str
    mode: str  # StageRetryMode: FAILED_ACTIONS or ALL_ACTIONS


@dataclass(frozen=True)
class Superseded:
    """A newer execution overtook this one while it waited for a stage (lanes.py)."""

    by: str | None = None  # the newer execution's id


Event = (
    Start
    | StageGranted
    | ActionSucceeded
    | ActionFailed
    | Tick
    | StopRequested
    | RetryRequested
    | Superseded
)
