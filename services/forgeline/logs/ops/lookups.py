"""The log group and stream a request names: a group by name or by ARN, a stream by name
within its group; and the not-found errors CloudWatch answers with."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from forgeline.core.context import RequestContext
from forgeline.core.protocol.errors import AwsError
from forgeline.logs import store as logstore
from forgeline.logs.generated import errors, shapes
from forgeline.logs.tables import LogGroup, LogStream

# The reads that name their group by logGroupName or logGroupIdentifier.
GroupReadRequest = (
    shapes.DescribeLogStreamsRequest | shapes.GetLogEventsRequest | shapes.FilterLogEventsRequest
)


def group_missing() -> AwsError:
    return errors.ResourceNotFoundException("The specified log group does not exist.")


def stream_missing() -> AwsError:
    return errors.ResourceNotFoundException("The specified log stream does not exist.")


def epoch_ms(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def group_param(params: GroupReadRequest) -> str:
    """The group a read names, by logGroupName or logGroupIdentifier (name or ARN)."""
    name = params.get("logGroupName")
    identifier = params.get("logGroupIdentifier")
    if name is not None and identifier is not None:
        raise errors.InvalidParameterException(
            "LogGroup name and LogGroup identifier are mutually exclusive parameters."
        )
    if name is not None:
        return name
    if identifier is not None:
        return identifier
    raise errors.InvalidParameterException(
        "Either logGroupName or logGroupIdentifier must be specified."
    )


def group_name_of(ctx: RequestContext, identifier: str) -> str | None:
    """The group name an identifier (a name, or an ARN with or without `:*`) names in
    this account and region; None for an ARN of another account or region."""
    if not identifier.startswith("arn:"):
        return identifier
    parts = identifier.split(":", 6)
    if len(parts) < 7 or parts[2] != "logs" or parts[5] != "log-group":
        raise errors.InvalidParameterException(
            f"{identifier} is not a log group ARN (arn:aws:logs:region:account:log-group:name)."
        )
    if parts[3] != ctx.region or parts[4] != ctx.account_id:
        return None
    name = parts[6]
    return name[:-2] if name.endswith(":*") else name


def require_group(session: Session, ctx: RequestContext, name_or_arn: str) -> LogGroup:
    name = group_name_of(ctx, name_or_arn)
    group = logstore.find_group(session, ctx.account_id, ctx.region, name) if name else None
    if group is None:
        raise group_missing()
    return group


def require_stream(session: Session, group: LogGroup, name: str) -> LogStream:
    stream = logstore.find_stream(session, group, name)
    if stream is None:
        raise stream_missing()
    return stream
