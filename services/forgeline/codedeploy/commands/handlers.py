"""The five operations of the command service, as an agent calls them.

An agent's cycle: PollHostCommand (long poll) hands it one command; it fetches the
deployment's specification (GetDeploymentSpecification), acknowledges the command
(PutHostCommandAcknowledgement), runs it, may post progress (PostHostCommandUpdate) and
reports the outcome (PutHostCommandComplete). Every call is checked against the caller's
identity first (identity.py).
"""

from __future__ import annotations

import time

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from forgeline.codedeploy.commands import handout, heartbeats, listeners, signing
from forgeline.codedeploy.commands.doorbell import get_doorbell, host_key, stopping
from forgeline.codedeploy.commands.generated import shapes
from forgeline.codedeploy.commands.generated.errors import ClientException, ServerException
from forgeline.codedeploy.commands.identity import (
    require_agent,
    require_own_command,
    require_registered,
)
from forgeline.codedeploy.commands.queue import ring_after_commit
from forgeline.codedeploy.commands.spec import DeploymentFacts, SpecError, spec_json
from forgeline.codedeploy.tables.deployments import (
    FINAL_COMMAND_STATUSES,
    IN_PROGRESS,
    Deployment,
    HostCommand,
)
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.protocol.provider import long_poll
from forgeline.core.settings import Settings, get_settings

DEPLOYMENT_SYSTEM = "CodeDeploy"
# A waiting poll also looks at the table now and then, in case a ring was lost (a Redis
# reconnect). Server processes that share no fan-out (several, without Redis) do not hear
# each other's rings at all: there it looks every second.
RECHECK_SECONDS = 5.0
RECHECK_SECONDS_UNSHARED = 1.0


def _recheck_seconds(settings: Settings) -> float:
    if settings.resolved_fanout_url is None and settings.server_processes > 1:
        return RECHECK_SECONDS_UNSHARED
    return RECHECK_SECONDS


class CommandOperations:
    @long_poll
    def poll_host_command(
        self, ctx: RequestContext, params: shapes.PollHostCommandInput
    ) -> shapes.PollHostCommandOutput:
        host = params["HostIdentifier"]
        settings = get_settings()
        # Listen before the first look, so a command queued in between is not missed.
        with get_doorbell(settings).listening(host_key(ctx.account_id, ctx.region, host)) as bell:
            with session_scope() as session:
                require_agent(session, ctx, host)
                command = handout.take_next(session, ctx.account_id, ctx.region, host)
                if command is not None:
                    return {"HostCommand": handout.host_command_output(command)}
            deadline = time.monotonic() + settings.codedeploy_poll_seconds
            recheck = _recheck_seconds(settings)
            while not stopping():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                bell.wait(min(remaining, recheck))
                bell.clear()
                found = self._take_ready(ctx, host)
                if found is not None:
                    return {"HostCommand": found}
        return {}

    @staticmethod
    def _take_ready(ctx: RequestContext, host: str) -> shapes.HostCommandInstance | None:
        # A read first: most looks find nothing, and a read does not queue behind writers.
        with session_scope(readonly=True) as session:
            if not handout.has_ready_command(session, ctx.account_id, ctx.region, host):
                return None
        with session_scope() as session:
            require_registered(session, ctx)
            command = handout.take_next(session, ctx.account_id, ctx.region, host)
            return None if command is None else handout.host_command_output(command)

    def get_deployment_specification(
        self, ctx: RequestContext, params: shapes.GetDeploymentSpecificationInput
    ) -> shapes.GetDeploymentSpecificationOutput:
        host = params["HostIdentifier"]
        execution = params["DeploymentExecutionId"]
        with session_scope(readonly=True) as session:
            require_agent(session, ctx, host)
            deployment_id = handout.deployment_id_of(execution, ctx.account_id, ctx.region)
            deployment = (
                None
                if deployment_id is None
                else session.scalars(
                    select(Deployment).where(
                        Deployment.id == deployment_id,
                        Deployment.account_id == ctx.account_id,
                        Deployment.region == ctx.region,
                    )
                ).first()
            )
            has_command = deployment is not None and session.scalar(
                select(
                    exists().where(
                        HostCommand.deployment_id == deployment.id,
                        HostCommand.host_identifier == host,
                    )
                )
            )
            if deployment is None or not has_command:
                # Someone else's deployment reads as unknown, like a missing one.
                raise ClientException(
                    f"No deployment execution {execution} has commands for this host."
                )
            facts = deployment_facts(deployment)
        try:
            content = spec_json(facts)
        except SpecError as exc:
            raise ClientException(f"Deployment {facts.deployment_id}: {exc}.") from None
        try:
            payload = signing.get_signer(get_settings()).sign(content)
        except OSError as exc:
            raise ServerException(f"The deployment specification cannot be signed: {exc}") from None
        return {
            "DeploymentSystem": DEPLOYMENT_SYSTEM,
            "DeploymentSpecification": {
                "GenericEnvelope": {"Format": signing.SIGNED_FORMAT, "Payload": payload}
            },
        }

    def put_host_command_acknowledgement(
        self, ctx: RequestContext, params: shapes.PutHostCommandAcknowledgementInput
    ) -> shapes.PutHostCommandAcknowledgementOutput:
        with session_scope() as session:
            # Locked (deployment first): its listeners advance the deployment.
            command = _reported_command(
                session, ctx, params["HostCommandIdentifier"], for_update=True
            )
            if command.status in FINAL_COMMAND_STATUSES:
                # Finished or cancelled: the agent skips it.
                return {"CommandStatus": command.status}
            if command.acknowledged_at is None and command.status == IN_PROGRESS:
                command.acknowledged_at = utcnow()
                listeners.host_command_acknowledged(session, command)
            return {"CommandStatus": IN_PROGRESS}

    def post_host_command_update(
        self, ctx: RequestContext, params: shapes.PostHostCommandUpdateInput
    ) -> shapes.PostHostCommandUpdateOutput:
        with session_scope() as session:
            command = _reported_command(session, ctx, params["HostCommandIdentifier"])
            if command.status not in FINAL_COMMAND_STATUSES:
                command.last_update_at = utcnow()
            return {"CommandStatus": command.status}

    def put_host_command_complete(
        self, ctx: RequestContext, params: shapes.PutHostCommandCompleteInput
    ) -> None:
        status = params["CommandStatus"]
        if status not in FINAL_COMMAND_STATUSES:
            raise ClientException(
                f"CommandStatus {status} is not an outcome: report Succeeded or Failed."
            )
        with session_scope() as session:
            command = _reported_command(
                session, ctx, params["HostCommandIdentifier"], for_update=True
            )
            if command.status in FINAL_COMMAND_STATUSES:
                # AWS's agent reports a failure twice (its detailed code, then a generic
                # one), and a cancelled command may still report: the first outcome stays.
                return None
            if command.status != IN_PROGRESS:
                raise ClientException(
                    f"Host command {command.id} was never handed out; it cannot be completed."
                )
            command.status = status
            command.completed_at = utcnow()
            diagnostics = params.get("Diagnostics")
            command.diagnostics = dict(diagnostics) if diagnostics is not None else None
            listeners.host_command_finished(session, command)
            # The host is free: a poll waiting on it may take its next command.
            ring_after_commit(session, ctx.account_id, ctx.region, command.host_identifier)
        return None


def _reported_command(
    session: Session, ctx: RequestContext, command_id: str, *, for_update: bool = False
) -> HostCommand:
    """The caller's command, once the report is recorded as the agent's heartbeat.

    Locks are taken in one order everywhere: the host's heartbeat row (as a poll does),
    then the command's deployment (as the driver, StopDeployment and the timers do before
    they cancel commands), then the command. A report that locked its command first could
    deadlock with a stop cancelling it."""
    require_registered(session, ctx)
    heartbeats.record_report(session, ctx.account_id, ctx.region, ctx.principal_arn)
    command = require_own_command(session, ctx, command_id)
    if for_update:
        session.execute(
            select(Deployment.id).where(Deployment.id == command.deployment_id).with_for_update()
        )
        session.refresh(command, with_for_update=True)
    return command


def deployment_facts(deployment: Deployment) -> DeploymentFacts:
    """What the specification says, from the deployment's row."""
    request = deployment.request or {}
    # The orchestrator's state document keeps the resolved options (deploymentType).
    options = (deployment.state or {}).get("options") or {}
    return DeploymentFacts(
        deployment_id=deployment.id,
        deployment_group_id=deployment.deployment_group_id,
        deployment_group_name=deployment.deployment_group_name,
        application_name=deployment.application_name,
        revision=deployment.revision or {},
        creator=deployment.creator,
        deployment_type=str(options.get("deploymentType") or "IN_PLACE"),
        file_exists_behavior=request.get("fileExistsBehavior"),
    )
