"""S3 sources that poll for changes (PollForSourceChanges not "false"): when the source
object's ETag differs from the one the pipeline's newest execution took, a new execution
starts (trigger PollForSourceChanges), as AWS's polling does.

Each pipeline's decision is made with its row locked, so pollers beside several workers
start one execution per change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codepipeline.running import driver
from forgeline.codepipeline.running.starting import start_execution
from forgeline.codepipeline.tables.executions import PipelineExecution
from forgeline.codepipeline.tables.pipelines import Pipeline
from forgeline.core.db import session_scope
from forgeline.core.settings import Settings
from forgeline.s3 import interface as s3


def polled_source(declaration: dict[str, Any]) -> dict[str, Any] | None:
    """The pipeline's polling S3 source action, if it has one."""
    for stage in declaration.get("stages", [])[:1]:
        for action in stage.get("actions", []):
            kind = action.get("actionTypeId", {})
            configuration = action.get("configuration") or {}
            polls = str(configuration.get("PollForSourceChanges", "true")).lower() != "false"
            if kind.get("category") == "Source" and kind.get("provider") == "S3" and polls:
                return dict(action)
    return None


def poll_once(settings: Settings) -> int:
    """Look at every polling S3 source once; returns how many executions started."""
    with session_scope(readonly=True) as session:
        candidates = [
            pipeline.id
            for pipeline in session.scalars(select(Pipeline))
            if polled_source(pipeline.declaration) is not None
        ]
    started = 0
    for pipeline_id in candidates:
        with session_scope() as session:
            pipeline = session.scalars(
                select(Pipeline).where(Pipeline.id == pipeline_id).with_for_update()
            ).first()
            if pipeline is not None and _changed(session, settings, pipeline):
                start_execution(
                    session,
                    pipeline,
                    {"triggerType": "PollForSourceChanges", "triggerDetail": "S3 ETag changed"},
                )
                started += 1
    return started


def _changed(session: Session, settings: Settings, pipeline: Pipeline) -> bool:
    action = polled_source(pipeline.declaration)
    if action is None:
        return False
    configuration = action.get("configuration") or {}
    etag = s3.object_etag(
        settings, configuration.get("S3Bucket", ""), configuration.get("S3ObjectKey", "")
    )
    if etag is None:
        return False  # nothing to build yet
    newest = session.scalars(
        select(PipelineExecution)
        .where(PipelineExecution.pipeline_id == pipeline.id)
        .order_by(PipelineExecution.started_at.desc())
        .limit(1)
    ).first()
    if newest is None:
        return True
    state = driver.state_of(newest)
    source = state.stages[0] if state.stages else None
    ran = next((a for a in source.actions if a.name == action["name"]), None) if source else None
    if ran is None or ran.status in (None, "InProgress"):
        return False  # the newest execution has yet to read the object
    return (ran.revision or {}).get("revisionId") != etag
