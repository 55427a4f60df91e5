"""Log streams: CreateLogStream, DeleteLogStream, DescribeLogStreams."""

from __future__ import annotations

from typing import Any

from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import request_page_tokens
from forgeline.logs import store as logstore
from forgeline.logs.generated import errors, shapes
from forgeline.logs.ops.lookups import epoch_ms, group_param, require_group, require_stream
from forgeline.logs.tables import LogGroup, LogStream

DESCRIBE_PAGE_SIZE = 50


class StreamOperations:
    def create_log_stream(self, ctx: RequestContext, params: shapes.CreateLogStreamRequest) -> None:
        with session_scope() as session:
            group = require_group(session, ctx, params["logGroupName"])
            try:
                logstore.create_stream(session, group, params["logStreamName"])
            except logstore.AlreadyExists:
                raise errors.ResourceAlreadyExistsException(
                    "The specified log stream already exists"
                ) from None

    def delete_log_stream(self, ctx: RequestContext, params: shapes.DeleteLogStreamRequest) -> None:
        with session_scope() as session:
            group = require_group(session, ctx, params["logGroupName"])
            logstore.delete_stream(session, require_stream(session, group, params["logStreamName"]))

    def describe_log_streams(
        self, ctx: RequestContext, params: shapes.DescribeLogStreamsRequest
    ) -> shapes.DescribeLogStreamsResponse:
        order_by = params.get("orderBy", "LogStreamName")
        prefix = params.get("logStreamNamePrefix")
        descending = bool(params.get("descending", False))
        if order_by == "LastEventTime" and prefix:
            raise errors.InvalidParameterException(
                "Cannot order by LastEventTime with a logStreamNamePrefix."
            )
        with session_scope(readonly=True) as session:
            group = require_group(session, ctx, group_param(params))
            streams = logstore.list_streams(session, group, prefix=prefix)

        def key(stream: LogStream) -> Any:
            if order_by == "LastEventTime":
                return (stream.last_event_ms or 0, stream.name)
            return stream.name

        streams.sort(key=key, reverse=descending)
        scope: dict[str, Any] = {
            "group": group.id,
            "prefix": prefix,
            "orderBy": order_by,
            "descending": descending,
        }
        page, token = request_page_tokens(ctx).page(
            streams,
            key,
            scope,
            params.get("nextToken"),
            params.get("limit", DESCRIBE_PAGE_SIZE),
            descending,
        )
        output: shapes.DescribeLogStreamsResponse = {
            "logStreams": [_stream_output(group, stream) for stream in page]
        }
        if token:
            output["nextToken"] = token
        return output


def sequence_token(stream: LogStream) -> str:
    # CloudWatch no longer checks sequence tokens but still returns them; ours counts.
    return f"{stream.next_sequence:056d}"


def _stream_output(group: LogGroup, stream: LogStream) -> shapes.LogStream:
    output: shapes.LogStream = {
        "logStreamName": stream.name,
        "creationTime": epoch_ms(stream.created_at),
        "uploadSequenceToken": sequence_token(stream),
        "arn": logstore.stream_arn(group.region, group.account_id, group.name, stream.name),
        "storedBytes": stream.stored_bytes,
    }
    if stream.first_event_ms is not None:
        output["firstEventTimestamp"] = stream.first_event_ms
    if stream.last_event_ms is not None:
        output["lastEventTimestamp"] = stream.last_event_ms
    if stream.last_ingestion_ms is not None:
        output["lastIngestionTime"] = stream.last_ingestion_ms
    return output
