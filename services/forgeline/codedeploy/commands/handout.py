"""Handing a host its next command: one at a time, oldest first.

AWS's agent keeps polling while a command runs, so the server alone keeps a host to one
command at a time: none is handed out while another of the host's commands is InProgress.
Handing one out marks it InProgress in the same transaction. A command handed out but
never acknowledged for UNACKNOWLEDGED_SECONDS is handed out again: the answer to the poll
was lost (a server stopped before it went out, a connection cut), and an agent acknowledges
within moments of receiving a command.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from forgeline.codedeploy.commands import heartbeats
from forgeline.codedeploy.commands.generated import shapes
from forgeline.codedeploy.tables.deployments import IN_PROGRESS, PENDING, HostCommand
from forgeline.core.db import utcnow

# DeploymentExecutionId: four parts, as the command service's ids have them; the last is
# the deployment's id.
_EXECUTION_PREFIX = "codedeploy"

UNACKNOWLEDGED_SECONDS = 15.0


def execution_id(account_id: str, region: str, deployment_id: str) -> str:
    return f"{_EXECUTION_PREFIX}/{region}/{account_id}/{deployment_id}"


def deployment_id_of(execution: str, account_id: str, region: str) -> str | None:
    """The deployment an execution id names, if it is one of this account and region."""
    parts = execution.split("/", 3)
    if len(parts) != 4 or parts[:3] != [_EXECUTION_PREFIX, region, account_id]:
        return None
    return parts[3]


def _host_commands(
    account_id: str, region: str, host_identifier: str, status: str
) -> tuple[ColumnElement[bool], ...]:
    return (
        HostCommand.account_id == account_id,
        HostCommand.region == region,
        HostCommand.host_identifier == host_identifier,
        HostCommand.status == status,
    )


def has_ready_command(session: Session, account_id: str, region: str, host_identifier: str) -> bool:
    """Whether a command could be handed out now (a cheap read before taking the lock)."""
    pending = exists().where(*_host_commands(account_id, region, host_identifier, PENDING))
    running = exists().where(*_host_commands(account_id, region, host_identifier, IN_PROGRESS))
    lost = exists().where(
        *_host_commands(account_id, region, host_identifier, IN_PROGRESS), _lost_handout()
    )
    return bool(session.scalar(select((pending & ~running) | lost)))


def _lost_handout() -> ColumnElement[bool]:
    cutoff = utcnow() - dt.timedelta(seconds=UNACKNOWLEDGED_SECONDS)
    return HostCommand.acknowledged_at.is_(None) & or_(
        HostCommand.handed_out_at.is_(None), HostCommand.handed_out_at < cutoff
    )


def take_next(
    session: Session, account_id: str, region: str, host_identifier: str
) -> HostCommand | None:
    """Hand out the host's oldest pending command, unless one of its commands is running.

    Records the poll first: on Postgres that locks the host's heartbeat row, so two polls
    of one host decide one after the other (on SQLite writers are serialized anyway)."""
    heartbeats.record_poll(session, account_id, region, host_identifier)
    running = session.scalars(
        select(HostCommand)
        .where(*_host_commands(account_id, region, host_identifier, IN_PROGRESS))
        .limit(1)
    ).first()
    if running is not None:
        lost = session.scalar(
            select(HostCommand.id).where(HostCommand.id == running.id, _lost_handout())
        )
        if lost is None:
            return None
        running.handed_out_at = utcnow()  # the same command again
        return running
    command = session.scalars(
        select(HostCommand)
        .where(*_host_commands(account_id, region, host_identifier, PENDING))
        .order_by(HostCommand.created_at, HostCommand.id)
        .limit(1)
    ).first()
    if command is None:
        return None
    command.status = IN_PROGRESS
    command.handed_out_at = utcnow()
    return command


def host_command_output(command: HostCommand) -> shapes.HostCommandInstance:
    return {
        "HostCommandIdentifier": command.id,
        "HostIdentifier": command.host_identifier,
        "DeploymentExecutionId": execution_id(
            command.account_id, command.region, command.deployment_id
        ),
        "CommandName": command.command_name,
        "Nonce": command.nonce,
    }
