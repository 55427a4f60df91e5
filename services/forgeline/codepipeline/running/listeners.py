"""What the pipeline hears from the other services, inside their transactions: a build
ended (CodeBuild's build_finished), a deployment ended (CodeDeploy's deployment_finished).
Each ends the action that waits on it."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codebuild import interface as codebuild
from forgeline.codedeploy import interface as codedeploy
from forgeline.codepipeline.engine.state import ArtifactRef
from forgeline.codepipeline.running import driver
from forgeline.codepipeline.running.actions.context import Failed, Outcome, Succeeded
from forgeline.codepipeline.running.jobs import finish_action
from forgeline.codepipeline.tables.executions import ActionExecution


def on_build_finished(session: Session, build: codebuild.Build) -> None:
    row = _waiting_on(session, build.id)
    if row is None:
        return
    view = codebuild.build_view(build)
    status = view.get("buildStatus", "FAILED")
    link = (view.get("logs") or {}).get("deepLink")
    outcome: Outcome
    if status == "SUCCEEDED":
        places = json.loads((row.detail.get("waiting") or {}).get("summary") or "{}")
        outputs = {
            name: ArtifactRef(name, location, None)
            for name, location in (places.get("outputs") or {}).items()
        }
        variables = {
            item["name"]: item.get("value", "")
            for item in view.get("exportedEnvironmentVariables") or []
        }
        outcome = Succeeded(
            output_artifacts=outputs,
            output_variables=variables,
            external_id=build.id,
            external_url=link,
        )
    else:
        failed_phase = next(
            (
                p
                for p in view.get("phases") or []
                if p.get("phaseStatus") not in (None, "SUCCEEDED")
            ),
            None,
        )
        detail = ""
        if failed_phase is not None:
            contexts = failed_phase.get("contexts") or [{}]
            detail = (
                f". Phase: {failed_phase.get('phaseType')}, Code: "
                f"{contexts[0].get('statusCode', '')}, Message: {contexts[0].get('message', '')}"
            )
        outcome = Failed(f"Build terminated with state: {status}{detail}", external_id=build.id)
    _finish(session, row, outcome)


def on_deployment_finished(session: Session, deployment: codedeploy.Deployment) -> None:
    row = _waiting_on(session, deployment.id)
    if row is None:
        return
    result = codedeploy.outcome_of(deployment)
    outcome: Outcome
    if result.status == "Succeeded":
        outcome = Succeeded(summary="Deployment Succeeded", external_id=deployment.id)
    else:
        reason = f": {result.error_message}" if result.error_message else ""
        outcome = Failed(
            f"Deployment {deployment.id} ended {result.status}{reason}", external_id=deployment.id
        )
    _finish(session, row, outcome)


def _waiting_on(session: Session, external_id: str) -> ActionExecution | None:
    return session.scalars(
        select(ActionExecution).where(
            ActionExecution.external_id == external_id, ActionExecution.status == "InProgress"
        )
    ).first()


def _finish(session: Session, row: ActionExecution, outcome: Outcome) -> None:
    execution = driver.lock(session, row.execution_id)
    if execution is not None:
        finish_action(session, execution, row, outcome)
