"""Action executions as rows: made when the engine runs an action (RunAction), kept in
step with its status (ActionChanged), and read by ListActionExecutions and by the
listeners that find the action a build, deployment or approval belongs to.

`detail` keeps what the action was run with (its type, resolved configuration, input
artifacts, the names of its outputs and namespace) and, once it ends, what it produced.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from forgeline.codepipeline.engine import effects as fx
from forgeline.codepipeline.engine.state import ExecutionState
from forgeline.codepipeline.tables.executions import ActionExecution, PipelineExecution
from forgeline.core.db import utcnow
from forgeline.core.work.jobs import enqueue

RUN_ACTION_JOB = "codepipeline.run_action"
ABANDONED = "Abandoned"


def start(session: Session, execution: PipelineExecution, run: fx.RunAction) -> None:
    """Record the attempt and queue the job that runs it (after the transition commits)."""
    action = run.action
    if session.get(ActionExecution, run.action_execution_id) is not None:
        return  # the same attempt asked for twice
    now = utcnow()
    session.add(
        ActionExecution(
            id=run.action_execution_id,
            execution_id=execution.id,
            pipeline_id=execution.pipeline_id,
            stage=run.stage,
            action=action.name,
            attempt=run.attempt,
            status="InProgress",
            detail={
                "actionTypeId": {
                    "category": action.category,
                    "owner": action.owner,
                    "provider": action.provider,
                    "version": action.version,
                },
                "configuration": dict(action.configuration),
                "resolvedConfiguration": dict(run.resolved_configuration),
                "inputArtifacts": [ref.to_document() for ref in run.input_artifacts.values()],
                "outputArtifactNames": list(action.output_artifacts),
                "namespace": action.namespace,
                "runOrder": action.run_order,
                "commands": list(run.resolved_commands),
                "sourceRevision": dict(run.source_revision) if run.source_revision else None,
            },
            started_at=now,
            updated_at=now,
        )
    )
    session.flush()
    enqueue(session, RUN_ACTION_JOB, {"actionExecutionId": run.action_execution_id})


def cancel(session: Session, action_execution_id: str) -> None:
    row = session.get(ActionExecution, action_execution_id)
    if row is not None and row.status == "InProgress":
        row.status = ABANDONED
        row.updated_at = utcnow()


def record(session: Session, state: ExecutionState, changed: fx.ActionChanged) -> None:
    """Mirror the attempt's status and outcome from the engine's state into its row."""
    row = session.get(ActionExecution, changed.action_execution_id)
    if row is None:
        return
    row.status = changed.status
    row.updated_at = utcnow()
    stage = state.stage(changed.stage)
    if stage is None:
        return
    action = stage.action(changed.action)
    if action.action_execution_id != changed.action_execution_id:
        return
    detail: dict[str, Any] = dict(row.detail)
    detail["output"] = {
        "outputArtifacts": [ref.to_document() for ref in action.output_artifacts],
        "outputVariables": dict(action.output_variables),
        "summary": action.summary,
        "externalExecutionId": action.external_execution_id,
        "externalExecutionUrl": action.external_url,
        "error": action.error.to_document() if action.error else None,
    }
    row.detail = detail
