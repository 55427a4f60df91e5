"""Time-driven events: due machine timers, and agents that went silent mid-command.

A watcher thread beside each worker looks once a second (an indexed query when nothing is
due). Every step locks its deployment's row, so watchers of several worker processes may
run at once: a deployment advances once per due time, whoever gets there first.

A silent agent: AWS's agent (and Forgeline's) keeps polling while it runs a command, so a
host whose command is out and that has not called for `codedeploy_agent_silence_seconds`
has lost its agent; the instance fails then instead of at the hour-long run deadline.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import select

from forgeline.codedeploy.commands import heartbeats
from forgeline.codedeploy.deploying import driver
from forgeline.codedeploy.orchestrator.events import AgentTimedOut, Tick
from forgeline.codedeploy.orchestrator.state import FINAL_STATUSES
from forgeline.codedeploy.tables.deployments import IN_PROGRESS, Deployment, HostCommand
from forgeline.core.db import session_scope, utcnow
from forgeline.core.settings import Settings, get_settings
from forgeline.core.work import celery_app
from forgeline.core.work.watch import PeriodicWatch, WatchSlot

logger = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0
BATCH = 100


def tick_due(now: dt.datetime | None = None) -> int:
    """Feed a Tick to every deployment whose earliest timer is due; returns how many."""
    moment = now or utcnow()
    with session_scope(readonly=True) as session:
        due = session.scalars(
            select(Deployment.id)
            .where(
                Deployment.wake_at <= moment, Deployment.deployment_status.not_in(FINAL_STATUSES)
            )
            .order_by(Deployment.wake_at)
            .limit(BATCH)
        ).all()
    for deployment_id in due:
        with session_scope() as session:
            deployment = driver.lock(session, deployment_id)
            if deployment is not None and deployment.wake_at and deployment.wake_at <= moment:
                driver.apply(session, deployment, Tick(), now=moment)
    return len(due)


def fail_silent_agents(
    silence_seconds: float,
    now: dt.datetime | None = None,
    *,
    watching_since: dt.datetime | None = None,
    poll_seconds: float = 0.0,
) -> int:
    """Time out instances whose command is out to an agent that stopped calling.

    Silence is counted from `watching_since` at the earliest (when this watcher started):
    while the server was down no agent could call, and that is not the agent's fault. A
    poll is recorded when it starts and may wait `poll_seconds` for a command: the agent
    is heard until its poll would have answered."""
    moment = now or utcnow()
    with session_scope(readonly=True) as session:
        out = session.scalars(
            select(HostCommand).where(
                HostCommand.status == IN_PROGRESS, HostCommand.cancelled_at.is_(None)
            )
        ).all()
        heard_of = heartbeats.last_heard_of(
            session, {(c.account_id, c.region, c.host_identifier) for c in out}
        )
        silent = []
        for command in out:
            heard = heard_of.get((command.account_id, command.region, command.host_identifier))
            since = command.handed_out_at or command.created_at
            if heard is not None:
                since = max(since, heard + dt.timedelta(seconds=poll_seconds))
            if watching_since is not None:
                since = max(since, watching_since)
            if (moment - since).total_seconds() > silence_seconds:
                silent.append((command.deployment_id, command.instance_name))
    for deployment_id, instance_name in silent:
        with session_scope() as session:
            deployment = driver.lock(session, deployment_id)
            if deployment is not None:
                driver.apply(session, deployment, AgentTimedOut(instance_name), now=moment)
    return len(silent)


def _watch_step(settings: Settings) -> Callable[[], None]:
    started_at = utcnow()

    def step() -> None:
        tick_due()
        fail_silent_agents(
            settings.codedeploy_agent_silence_seconds,
            watching_since=started_at,
            poll_seconds=settings.codedeploy_poll_seconds,
        )

    return step


_slot = WatchSlot()


def start_watching(settings: Settings) -> None:
    _slot.start(lambda: PeriodicWatch("codedeploy-timers", INTERVAL_SECONDS, _watch_step(settings)))


def stop_watching() -> None:
    _slot.stop()


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    # A separate Celery worker process (the production shape) watches too.
    app = getattr(sender, "app", None)
    start_watching(celery_app.settings_of(app) if app is not None else get_settings())


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    stop_watching()
