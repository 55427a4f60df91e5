"""One step of a deployment: load its state, advance the pure machine, perform the effects.

Everything a transition writes (the new state, the instances' rows, queued or cancelled
host commands, events, a rollback deployment) goes into the caller's transaction, with the
deployment's row locked: a transition commits whole or not at all, so a server stopped
between two steps loses nothing and the next event (an agent's report, a timer) carries
on from the state on disk. Effects that answer at once (a server step with nothing to do)
come back as follow-up events and are advanced in the same transaction.
"""

from __future__ import annotations

import collections
import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy.commands.queue import cancel_commands, enqueue_command
from forgeline.codedeploy.deploying import (
    hook_calls,
    notifications,
    platform_traffic,
    traffic_steps,
)
from forgeline.codedeploy.deploying.creation import (
    record_outcome,
    retire_instances,
    start_rollback,
)
from forgeline.codedeploy.orchestrator import effects as fx
from forgeline.codedeploy.orchestrator.events import Event, ServerStepDone
from forgeline.codedeploy.orchestrator.machine import advance
from forgeline.codedeploy.orchestrator.state import FINAL_STATUSES, DeploymentState, InstanceState
from forgeline.codedeploy.tables.deployments import Deployment, DeploymentInstance
from forgeline.core.db import utcnow


def lock(session: Session, deployment_id: str) -> Deployment | None:
    """The deployment's row, locked for this transaction (Postgres; SQLite writers queue)."""
    return session.scalars(
        select(Deployment).where(Deployment.id == deployment_id).with_for_update()
    ).first()


def state_of(deployment: Deployment) -> DeploymentState:
    return DeploymentState.from_document(deployment.state)


def apply(
    session: Session, deployment: Deployment, event: Event, *, now: dt.datetime | None = None
) -> DeploymentState:
    """Advance the locked `deployment` by `event` and everything that follows from it."""
    moment = now or utcnow()
    pending: collections.deque[Event] = collections.deque([event])
    state = state_of(deployment)
    while pending:
        transition = advance(state, pending.popleft(), moment)
        before, state = state, transition.state
        _save(deployment, state)
        _sync_instances(session, deployment, before, state)
        for effect in transition.effects:
            pending.extend(_perform(session, deployment, state, effect))
    return state


def _save(deployment: Deployment, state: DeploymentState) -> None:
    deployment.state = state.to_document()
    deployment.deployment_status = state.status
    deployment.start_time = state.start_time
    deployment.complete_time = state.complete_time
    deployment.error_info = None if state.error is None else state.error.to_document()
    deployment.wake_at = min((timer.at for timer in state.timers), default=None)
    if state.status in FINAL_STATUSES:
        deployment.wake_at = None


def _sync_instances(
    session: Session, deployment: Deployment, before: DeploymentState, after: DeploymentState
) -> None:
    """Mirror the instances whose state changed into their rows (what the API reads)."""
    previous = {instance.instance_id: instance for instance in before.instances}
    changed = [
        instance for instance in after.instances if previous.get(instance.instance_id) != instance
    ]
    if not changed:
        return
    rows = {
        row.instance_name: row
        for row in session.scalars(
            select(DeploymentInstance).where(
                DeploymentInstance.deployment_id == deployment.id,
                DeploymentInstance.instance_name.in_([i.instance_id for i in changed]),
            )
        )
    }
    for instance in changed:
        row = rows.get(instance.instance_id)
        if row is None:
            continue  # created by starting.py before the first transition that names it
        _copy_instance(row, instance)


def _copy_instance(row: DeploymentInstance, instance: InstanceState) -> None:
    row.status = instance.status
    row.instance_label = instance.label
    row.lifecycle_events = [event.to_document() for event in instance.events]
    row.last_updated_at = instance.last_updated_at or utcnow()


def _perform(
    session: Session, deployment: Deployment, state: DeploymentState, effect: fx.Effect
) -> list[Event]:
    if isinstance(effect, fx.SendCommand):
        enqueue_command(session, deployment, effect.instance_id, effect.lifecycle_event)
    elif isinstance(effect, fx.RunServerStep):
        if state.options.shift is not None:
            return [platform_traffic.server_step(state, effect.lifecycle_event)]
        if not state.options.target_groups:
            # No load balancer to take the instance out of or put back in: done at once.
            return [ServerStepDone(effect.instance_id, effect.lifecycle_event)]
        traffic_steps.enqueue_step(session, deployment, effect.instance_id, effect.lifecycle_event)
    elif isinstance(effect, fx.CancelCommands):
        cancel_commands(session, deployment.id, effect.instance_id)
    elif isinstance(effect, fx.InstanceChanged):
        notifications.instance_changed(session, deployment, effect.instance_id, effect.status)
    elif isinstance(effect, fx.DeploymentChanged):
        notifications.deployment_changed(session, deployment, effect.status)
    elif isinstance(effect, fx.Finished):
        record_outcome(session, deployment, state)
    elif isinstance(effect, fx.StartRollback):
        start_rollback(session, deployment, effect.reason)
    elif isinstance(effect, fx.RetireInstances):
        retire_instances(session, deployment, effect.instance_ids)
    elif isinstance(effect, fx.InvokeHook):
        hook_calls.enqueue_invocation(session, deployment, effect)
    elif isinstance(effect, fx.ShiftTraffic):
        return [platform_traffic.shift(state, effect.weight)]
    # SetTimer needs nothing more: `_save` keeps the earliest timer in `wake_at`.
    return []
