"""Ending an action from its job: what PutJobSuccessResult and PutJobFailureResult do, and
what an Invoke action does when its function cannot be reached."""

from __future__ import annotations

from sqlalchemy.orm import Session

from forgeline.codepipeline.running import driver
from forgeline.codepipeline.running.actions.context import Failed, Succeeded
from forgeline.codepipeline.running.jobs import finish_action
from forgeline.codepipeline.tables.executions import ActionExecution
from forgeline.codepipeline.tables.jobs import PipelineJob
from forgeline.core.db import session_scope, utcnow


def end_action(session: Session, row: ActionExecution, outcome: Succeeded | Failed) -> None:
    execution = driver.lock(session, row.execution_id)
    if execution is not None and row.status == "InProgress":
        finish_action(session, execution, row, outcome)


def fail_job(job_id: str, message: str) -> None:
    with session_scope() as session:
        job = session.get(PipelineJob, job_id)
        if job is None or job.status not in ("Queued", "Dispatched", "InProgress"):
            return
        job.status, job.updated_at = "Failed", utcnow()
        row = session.get(ActionExecution, job.action_execution_id)
        if row is not None:
            end_action(session, row, Failed(message))
