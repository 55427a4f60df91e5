"""The driver's side of the command service: queue a lifecycle command for an instance's
agent, or cancel an instance's commands.

Both work inside the caller's transaction. The host's waiting polls are rung after the
commit, so an agent hears of a new command within milliseconds, and never of one that
was rolled back.
"""

from __future__ import annotations

import json
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy.commands.doorbell import get_doorbell, host_key
from forgeline.codedeploy.ops.lookups import find_instance
from forgeline.codedeploy.tables.deployments import (
    FAILED,
    IN_PROGRESS,
    PENDING,
    Deployment,
    HostCommand,
)
from forgeline.core.db import on_commit, utcnow

# What AWS's agent runs, as CommandName: the bundle's download and install, and the hooks.
COMMAND_NAMES = frozenset(
    {
        "DownloadBundle",
        "Install",
        "BeforeBlockTraffic",
        "AfterBlockTraffic",
        "ApplicationStop",
        "BeforeInstall",
        "AfterInstall",
        "ApplicationStart",
        "BeforeAllowTraffic",
        "AfterAllowTraffic",
        "ValidateService",
    }
)

# The diagnostics a cancelled command carries, in the agent's own format (code 5: unknown).
CANCELLED_MESSAGE = "Cancelled by the server: the deployment no longer needs this command."


def enqueue_command(
    session: Session,
    deployment: Deployment,
    instance_name: str,
    command_name: str,
    *,
    host_identifier: str | None = None,
) -> HostCommand:
    """Queue `command_name` for the agent of `instance_name` (an on-premises instance of the
    deployment's account and region; its registered IAM ARN unless `host_identifier` is
    given). The agent gets it once none of its host's other commands is running."""
    if command_name not in COMMAND_NAMES:
        raise ValueError(f"{command_name!r} is not a command an agent runs")
    if host_identifier is None:
        instance = find_instance(session, deployment.account_id, deployment.region, instance_name)
        if instance is None or not instance.registered or not instance.host_identifier:
            raise ValueError(f"on-premises instance {instance_name!r} is not registered")
        host_identifier = instance.host_identifier
    command = HostCommand(
        id=str(uuid.uuid4()),
        deployment_id=deployment.id,
        instance_name=instance_name,
        host_identifier=host_identifier,
        account_id=deployment.account_id,
        region=deployment.region,
        command_name=command_name,
        status=PENDING,
        nonce=secrets.randbelow(2**31 - 1) + 1,
        created_at=utcnow(),
    )
    session.add(command)
    session.flush()
    ring_after_commit(session, deployment.account_id, deployment.region, host_identifier)
    return command


def cancel_commands(
    session: Session, deployment_id: str, instance_name: str | None = None
) -> list[HostCommand]:
    """End the deployment's unfinished commands (of one instance, or all): they become
    Failed with `cancelled_at` set, no `host_command_finished` listener is called, and an
    agent's later report of one is ignored. A running command's scripts are not stopped
    (no agent can be told to); its host is free for its next command at once."""
    query = select(HostCommand).where(
        HostCommand.deployment_id == deployment_id,
        HostCommand.status.in_((PENDING, IN_PROGRESS)),
    )
    if instance_name is not None:
        query = query.where(HostCommand.instance_name == instance_name)
    now = utcnow()
    cancelled = list(session.scalars(query.with_for_update()))
    for command in cancelled:
        command.status = FAILED
        command.cancelled_at = now
        command.completed_at = now
        command.diagnostics = {
            "Format": "JSON",
            "Payload": json.dumps(
                {"error_code": 5, "script_name": "", "message": CANCELLED_MESSAGE, "log": ""}
            ),
        }
        # The host may have other commands waiting behind this one.
        ring_after_commit(session, command.account_id, command.region, command.host_identifier)
    return cancelled


def ring_after_commit(session: Session, account_id: str, region: str, host_identifier: str) -> None:
    key = host_key(account_id, region, host_identifier)
    doorbell = get_doorbell()
    on_commit(session, lambda: doorbell.ring(key), key=f"codedeploy.commands.ring.{key}")
