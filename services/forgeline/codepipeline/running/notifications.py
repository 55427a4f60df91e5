"""The execution's changes on the event stream, in EventBridge's shape:
"CodePipeline Pipeline Execution State Change", "CodePipeline Stage Execution State
Change" and "CodePipeline Action Execution State Change"."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from forgeline.codepipeline.engine import effects as fx
from forgeline.codepipeline.engine.state import ExecutionState
from forgeline.codepipeline.tables.executions import PipelineExecution
from forgeline.core.events import publish

SOURCE = "aws.codepipeline"
EXECUTION_CHANGE = "CodePipeline Pipeline Execution State Change"
STAGE_CHANGE = "CodePipeline Stage Execution State Change"
ACTION_CHANGE = "CodePipeline Action Execution State Change"
# AWS's event states are the statuses in capitals (STARTED for InProgress).
_STATES = {"InProgress": "STARTED"}


def _state(status: str) -> str:
    return _STATES.get(status, status.upper())


def execution_changed(
    session: Session, execution: PipelineExecution, state: ExecutionState, status: str
) -> None:
    _publish(session, execution, EXECUTION_CHANGE, {"state": _state(status)})


def stage_changed(session: Session, execution: PipelineExecution, stage: str, status: str) -> None:
    _publish(session, execution, STAGE_CHANGE, {"stage": stage, "state": _state(status)})


def action_changed(
    session: Session, execution: PipelineExecution, state: ExecutionState, changed: fx.ActionChanged
) -> None:
    extra: dict[str, Any] = {
        "stage": changed.stage,
        "action": changed.action,
        "state": _state(changed.status),
        "action-execution-id": changed.action_execution_id,
    }
    plan = state.plan
    if plan is not None:
        for stage in plan.stages:
            for action in stage.actions:
                if stage.name == changed.stage and action.name == changed.action:
                    extra["type"] = {
                        "owner": action.owner,
                        "category": action.category,
                        "provider": action.provider,
                        "version": action.version,
                    }
    _publish(session, execution, ACTION_CHANGE, extra)


def _publish(
    session: Session, execution: PipelineExecution, detail_type: str, extra: dict[str, Any]
) -> None:
    arn = (
        f"arn:aws:codepipeline:{execution.region}:{execution.account_id}:{execution.pipeline_name}"
    )
    publish(
        session,
        account_id=execution.account_id,
        region=execution.region,
        source=SOURCE,
        detail_type=detail_type,
        resources=[arn],
        detail={
            "pipeline": execution.pipeline_name,
            "execution-id": execution.id,
            "version": execution.pipeline_version,
            **extra,
        },
    )
