"""The jobs that move executions: running an action, and feeding an execution an event
another execution's transition decided for it (a stage granted, a supersession).

Jobs are the work layer's leased rows: a worker lost mid-action hands the job to another,
and a job that runs twice finds the action no longer InProgress (or its outcome already
applied, which the engine ignores), so nothing runs twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from forgeline.codepipeline.engine.events import (
    ActionFailed,
    ActionSucceeded,
    Event,
    StageGranted,
    Superseded,
)
from forgeline.codepipeline.engine.state import ArtifactRef
from forgeline.codepipeline.running import actions, driver
from forgeline.codepipeline.running.action_rows import RUN_ACTION_JOB
from forgeline.codepipeline.running.actions.context import (
    ActionContext,
    Failed,
    Outcome,
    Succeeded,
    Waiting,
)
from forgeline.codepipeline.tables.executions import ActionExecution, PipelineExecution
from forgeline.codepipeline.tables.pipelines import PipelineVersion
from forgeline.core.db import session_scope, utcnow
from forgeline.core.settings import get_settings
from forgeline.core.work.jobs import Heartbeat, job_kind


@job_kind(RUN_ACTION_JOB)
def run_action(payload: dict[str, Any], heartbeat: Heartbeat) -> dict[str, Any]:
    action_execution_id = str(payload["actionExecutionId"])
    with session_scope() as session:
        row = session.get(ActionExecution, action_execution_id)
        if row is None or row.status != "InProgress" or row.external_id is not None:
            return {"ran": False}
        execution = driver.lock(session, row.execution_id)
        if execution is None:
            return {"ran": False}
        outcome = actions.run(_context(session, execution, row))
        finish_action(session, execution, row, outcome)
        return {"ran": True, "outcome": type(outcome).__name__}


@job_kind(driver.ADVANCE_JOB)
def advance_execution(payload: dict[str, Any], heartbeat: Heartbeat) -> dict[str, Any]:
    event: Event
    if "granted" in payload:
        event = StageGranted(str(payload["granted"]))
    else:
        event = Superseded(str(payload.get("supersededBy") or "") or None)
    with session_scope() as session:
        execution = driver.lock(session, str(payload["executionId"]))
        if execution is not None:
            driver.apply(session, execution, event)
    return {"applied": type(event).__name__}


def finish_action(
    session: Session, execution: PipelineExecution, row: ActionExecution, outcome: Outcome
) -> None:
    """Record what the action answered and, when it ended, tell the engine."""
    if isinstance(outcome, Waiting):
        row.external_id = outcome.external_id
        row.detail = {**row.detail, "waiting": {"summary": outcome.summary}}
        row.updated_at = utcnow()
        return
    event: Event
    if isinstance(outcome, Succeeded):
        event = ActionSucceeded(
            row.id,
            output_artifacts=dict(outcome.output_artifacts),
            output_variables=dict(outcome.output_variables),
            summary=outcome.summary,
            external_url=outcome.external_url,
            revision=dict(outcome.revision) if outcome.revision else None,
            external_execution_id=outcome.external_id,
        )
    else:
        assert isinstance(outcome, Failed)
        event = ActionFailed(row.id, outcome.message, external_execution_id=outcome.external_id)
    driver.apply(session, execution, event)


def _context(session: Session, execution: PipelineExecution, row: ActionExecution) -> ActionContext:
    detail = row.detail
    kind = detail["actionTypeId"]
    version = session.get(PipelineVersion, (execution.pipeline_id, execution.pipeline_version))
    return ActionContext(
        session=session,
        settings=get_settings(),
        account_id=execution.account_id,
        region=execution.region,
        pipeline_name=execution.pipeline_name,
        execution_id=execution.id,
        action_execution_id=row.id,
        stage=row.stage,
        action=row.action,
        category=kind["category"],
        owner=kind["owner"],
        provider=kind["provider"],
        version=kind["version"],
        configuration=dict(detail.get("resolvedConfiguration") or {}),
        input_artifacts=tuple(ArtifactRef.from_document(d) for d in detail["inputArtifacts"]),
        output_artifact_names=tuple(detail.get("outputArtifactNames") or ()),
        artifact_bucket=artifact_bucket(version.declaration if version else {}, execution.region),
        source_revision=detail.get("sourceRevision"),
    )


def artifact_bucket(declaration: dict[str, Any], region: str) -> str:
    """The bucket of the pipeline's artifact store (its region's, for cross-region ones)."""
    store = declaration.get("artifactStore") or (declaration.get("artifactStores") or {}).get(
        region
    )
    return str((store or {}).get("location", ""))
