"""Which host an agent's request speaks for, and whether it may.

An agent signs with the access key of the IAM user (or session) its on-premises instance
was registered with, and names that ARN as its HostIdentifier. So a request is served only
when the key's principal is that ARN and a registered instance of the key's account and
region carries it; commands and deployments of other hosts and accounts stay out of reach.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy.commands.generated.errors import ClientException
from forgeline.codedeploy.ops.lookups import find_instance_by_host_identifier
from forgeline.codedeploy.tables.deployments import HostCommand
from forgeline.codedeploy.tables.instances import OnPremisesInstance
from forgeline.core.context import RequestContext


def require_agent(
    session: Session, ctx: RequestContext, host_identifier: str
) -> OnPremisesInstance:
    """The registered instance `host_identifier` names, if the caller is its agent."""
    if host_identifier != ctx.principal_arn:
        raise ClientException(
            f"HostIdentifier {host_identifier} is not the caller: these credentials belong to "
            f"{ctx.principal_arn}. An agent names the IAM user or session ARN its on-premises "
            "instance was registered with, and signs with that identity's access key."
        )
    return require_registered(session, ctx)


def require_registered(session: Session, ctx: RequestContext) -> OnPremisesInstance:
    """The registered instance whose agent signs as the caller."""
    instance = find_instance_by_host_identifier(
        session, ctx.account_id, ctx.region, ctx.principal_arn
    )
    if instance is None:
        raise ClientException(
            f"No on-premises instance registered in {ctx.region} carries {ctx.principal_arn}: "
            "register the instance (RegisterOnPremisesInstance with this IAM ARN) before its "
            "agent polls, and use the region it was registered in."
        )
    return instance


def require_own_command(
    session: Session, ctx: RequestContext, command_id: str, *, for_update: bool = False
) -> HostCommand:
    """A command of the caller's host. Another host's, or another account's, reads as
    unknown: an agent learns nothing about commands that are not its own."""
    require_registered(session, ctx)
    query = select(HostCommand).where(
        HostCommand.id == command_id,
        HostCommand.account_id == ctx.account_id,
        HostCommand.region == ctx.region,
        HostCommand.host_identifier == ctx.principal_arn,
    )
    if for_update:
        query = query.with_for_update()
    command = session.scalars(query).first()
    if command is None:
        raise ClientException(f"No host command {command_id} exists for this host.")
    return command
