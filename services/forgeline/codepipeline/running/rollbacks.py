"""Rollback executions: a stage run again with what an earlier successful execution had
when it ran that stage (RollbackStage, and a failed stage whose onFailure result is
ROLLBACK)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codepipeline.engine.machine import rollback_problem, rollback_seed
from forgeline.codepipeline.generated import errors
from forgeline.codepipeline.running import driver
from forgeline.codepipeline.running.starting import start_execution
from forgeline.codepipeline.tables.executions import PipelineExecution
from forgeline.codepipeline.tables.pipelines import Pipeline


def start_rollback(
    session: Session,
    pipeline: Pipeline,
    target: PipelineExecution,
    stage: str,
    trigger: Mapping[str, str],
) -> PipelineExecution:
    """A ROLLBACK execution of `stage` to `target` (UnableToRollbackStageException with
    the reason when the target cannot be rolled back to)."""
    state = driver.state_of(target)
    problem = rollback_problem(state, stage)
    if problem is not None:
        raise errors.UnableToRollbackStageException(problem)
    return start_execution(session, pipeline, trigger, rollback=rollback_seed(state, stage))


def roll_back_failed_stage(session: Session, failed: PipelineExecution, stage: str) -> None:
    """onFailure ROLLBACK: back to the newest earlier execution of the same version that
    succeeded in the stage, if there is one (otherwise the failure stands)."""
    pipeline = session.get(Pipeline, failed.pipeline_id)
    if pipeline is None:
        return
    earlier = session.scalars(
        select(PipelineExecution)
        .where(
            PipelineExecution.pipeline_id == pipeline.id,
            PipelineExecution.pipeline_version == failed.pipeline_version,
            PipelineExecution.id != failed.id,
        )
        .order_by(PipelineExecution.started_at.desc())
    )
    for candidate in earlier:
        if rollback_problem(driver.state_of(candidate), stage) is None:
            start_rollback(
                session,
                pipeline,
                candidate,
                stage,
                {"triggerType": "AutomatedRollback", "triggerDetail": failed.id},
            )
            return
