"""One step of a pipeline execution: load its state, advance the pure engine, perform the
effects.

Everything a transition writes (the new state, action execution rows, queued jobs, the
pipeline's lanes, events on the stream) goes into the caller's transaction with the
execution's row locked, so a server stopped between two steps loses nothing: the next
event (an action's outcome, a timer, a grant) carries on from the state on disk. Effects
that answer at once (a lane that is free) come back as follow-up events advanced in the
same transaction; what concerns another execution (a grant, a supersession) is queued as a
job for that execution, so two executions' rows are never locked in one transaction.
"""

from __future__ import annotations

import collections
import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codepipeline.engine import effects as fx
from forgeline.codepipeline.engine import lanes
from forgeline.codepipeline.engine.events import Event, StageGranted
from forgeline.codepipeline.engine.machine import advance
from forgeline.codepipeline.engine.state import FINAL_STATUSES, ExecutionState
from forgeline.codepipeline.running import action_rows, notifications
from forgeline.codepipeline.tables.executions import PipelineExecution
from forgeline.codepipeline.tables.pipelines import Pipeline
from forgeline.core.db import utcnow
from forgeline.core.work.jobs import enqueue

ADVANCE_JOB = "codepipeline.advance"


def lock(session: Session, execution_id: str) -> PipelineExecution | None:
    """The execution's row, locked for this transaction (Postgres; SQLite writers queue)."""
    return session.scalars(
        select(PipelineExecution).where(PipelineExecution.id == execution_id).with_for_update()
    ).first()


def state_of(execution: PipelineExecution) -> ExecutionState:
    return ExecutionState.from_document(execution.state)


def apply(
    session: Session,
    execution: PipelineExecution,
    event: Event,
    *,
    now: dt.datetime | None = None,
) -> ExecutionState:
    """Advance the locked `execution` by `event` and everything that follows from it."""
    moment = now or utcnow()
    pending: collections.deque[Event] = collections.deque([event])
    state = state_of(execution)
    while pending:
        transition = advance(state, pending.popleft(), moment)
        state = transition.state
        _save(execution, state)
        for effect in transition.effects:
            pending.extend(_perform(session, execution, state, effect))
    return state


def queue_event(session: Session, execution_id: str, event: dict[str, str]) -> None:
    """Feed another execution an event (a grant, a supersession) from its own job."""
    enqueue(session, ADVANCE_JOB, {"executionId": execution_id, **event})


def _save(execution: PipelineExecution, state: ExecutionState) -> None:
    execution.state = state.to_document()
    execution.status = state.status or execution.status
    execution.updated_at = state.last_update_time or utcnow()
    execution.wake_at = min((timer.at for timer in state.timers), default=None)
    if state.status in FINAL_STATUSES:
        execution.wake_at = None


def _perform(
    session: Session, execution: PipelineExecution, state: ExecutionState, effect: fx.Effect
) -> list[Event]:
    if isinstance(effect, fx.WantStage):
        order = int(execution.started_at.timestamp() * 1_000_000)
        return _lanes(session, execution, lanes.Arrive(effect.stage, execution.id, order))
    if isinstance(effect, fx.ReleaseStage):
        return _lanes(session, execution, lanes.Leave(effect.stage, execution.id))
    if isinstance(effect, fx.Finished):
        return _lanes(session, execution, lanes.Withdraw(execution.id))
    if isinstance(effect, fx.RunAction):
        action_rows.start(session, execution, effect)
    elif isinstance(effect, fx.CancelAction):
        action_rows.cancel(session, effect.action_execution_id)
    elif isinstance(effect, fx.ActionChanged):
        action_rows.record(session, state, effect)
        notifications.action_changed(session, execution, state, effect)
    elif isinstance(effect, fx.ExecutionChanged):
        notifications.execution_changed(session, execution, state, effect.status)
    elif isinstance(effect, fx.StageChanged):
        notifications.stage_changed(session, execution, effect.stage, effect.status)
    elif isinstance(effect, fx.StartRollback):
        # Imported here: rollbacks start executions, which this module drives.
        from forgeline.codepipeline.running.rollbacks import roll_back_failed_stage

        roll_back_failed_stage(session, execution, effect.stage)
    # SetTimer needs nothing more: `_save` keeps the earliest timer in `wake_at`.
    return []


def _lanes(
    session: Session, execution: PipelineExecution, request: lanes.StageRequest
) -> list[Event]:
    """Ask the pipeline's lanes; grants for this execution come back as events, the rest
    go to the other executions as jobs."""
    pipeline = session.scalars(
        select(Pipeline).where(Pipeline.id == execution.pipeline_id).with_for_update()
    ).first()
    if pipeline is None:
        # The pipeline was deleted under the execution: nothing holds it back.
        if isinstance(request, lanes.Arrive):
            return [StageGranted(request.stage)]
        return []
    decision = decide(pipeline, request)
    mine: list[Event] = []
    for granted in decision.granted:
        if granted.execution_id == execution.id:
            mine.append(StageGranted(granted.stage))
        else:
            queue_event(session, granted.execution_id, {"granted": granted.stage})
    for overtaken in decision.superseded:
        if overtaken != execution.id:
            queue_event(session, overtaken, {"supersededBy": execution.id})
    return mine


def decide(pipeline: Pipeline, request: lanes.StageRequest) -> lanes.Decision:
    """The pipeline's lanes after `request`, stored on its (locked) row."""
    mode = (pipeline.declaration or {}).get("executionMode", "SUPERSEDED")
    occupancy = (
        lanes.StageOccupancy.from_document(pipeline.lanes)
        if pipeline.lanes
        else lanes.StageOccupancy(disabled=frozenset(pipeline.disabled_transitions or {}))
    )
    decision = lanes.grant(mode, occupancy, request)
    pipeline.lanes = decision.occupancy.to_document()
    return decision
