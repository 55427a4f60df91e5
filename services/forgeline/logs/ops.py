"""The CloudWatch Logs API subset builds need: read build logs (GetLogEvents,
FilterLogEvents — what `aws logs tail` polls), list them (DescribeLogGroups,
DescribeLogStreams), and write or delete logs of one's own (CreateLogGroup,
CreateLogStream, PutLogEvents, DeleteLogGroup, DeleteLogStream). Every other operation of
the model answers 501.

GetLogEvents' tokens are CloudWatch-shaped (`f/<digits>/s`, `b/<digits>/s`): the digits
are a position in the stream (logstore.Cursor), so a forward token keeps working as new
events arrive, and when nothing new is there the same token comes back — the signal
clients loop on. FilterLogEvents' nextToken is a signed position in the group's
time-ordered events.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from forgeline.codebuild.logwriter import MAX_EVENT_BYTES
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens
from forgeline.core.protocol.errors import AwsError
from forgeline.logs import store as logstore
from forgeline.logs.filter.patterns import FilterPatternError, parse_filter_pattern
from forgeline.logs.generated import errors
from forgeline.logs.generated.api import CloudWatchLogsApi
from forgeline.logs.tables import LogGroup, LogStream

DESCRIBE_PAGE_SIZE = 50
MAX_EVENTS_PER_PAGE = 10_000
# CloudWatch's response budget: 1 MB of events, each counted with 26 bytes of overhead.
MAX_RESPONSE_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_PUT_BATCH_BYTES = 1_048_576
MAX_PUT_SPAN_MS = 24 * 3600 * 1000
TOO_NEW_MS = 2 * 3600 * 1000
TOO_OLD_MS = 14 * 24 * 3600 * 1000
# FilterLogEvents reads events in chunks and stops after this many were examined, answering
# with a nextToken even when few matched (as CloudWatch does), so one call stays short.
FILTER_CHUNK = 5000
FILTER_SCAN_BUDGET = 20_000

TAG_ERRORS = tagging.TagErrors(
    too_many="InvalidParameterException",
    reserved_key="InvalidParameterException",
    invalid="InvalidParameterException",
)
_TOKEN = re.compile(r"([fb])/(\d{20})(\d{20})/s")


def _group_missing() -> AwsError:
    return errors.ResourceNotFoundException("The specified log group does not exist.")


def _stream_missing() -> AwsError:
    return errors.ResourceNotFoundException("The specified log stream does not exist.")


def _epoch_ms(value: Any) -> int:
    return int(value.timestamp() * 1000)


class LogsProvider(CloudWatchLogsApi):
    # -- groups ----------------------------------------------------------------------
    def create_log_group(self, ctx: RequestContext, params: Any) -> Any:
        name = params["logGroupName"]
        if name.startswith("aws/"):
            raise errors.InvalidParameterException(
                "Log group names can't start with the string aws/ (reserved for AWS services)."
            )
        tags = params.get("tags") or {}
        tagging.validate_tags(tags, TAG_ERRORS)
        with session_scope() as session:
            try:
                group = logstore.create_group(
                    session,
                    ctx.account_id,
                    ctx.region,
                    name,
                    log_group_class=params.get("logGroupClass", "STANDARD"),
                    kms_key_id=params.get("kmsKeyId"),
                    deletion_protection=bool(params.get("deletionProtectionEnabled", False)),
                )
            except logstore.AlreadyExists:
                raise errors.ResourceAlreadyExistsException(
                    "The specified log group already exists"
                ) from None
            if tags:
                arn = logstore.group_arn(group.region, group.account_id, group.name)
                tagging.put_tags(session, ctx.account_id, arn, tags, TAG_ERRORS)
        return {}

    def delete_log_group(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            group = _require_group(session, ctx, params["logGroupName"])
            if group.deletion_protection:
                raise errors.ValidationException(
                    f"Log group {group.name} has deletion protection enabled; turn it off "
                    "before deleting the group."
                )
            logstore.delete_group(session, group)
            tagging.delete_all_tags(
                session, logstore.group_arn(group.region, group.account_id, group.name)
            )
        return {}

    def describe_log_groups(self, ctx: RequestContext, params: Any) -> Any:
        prefix = params.get("logGroupNamePrefix")
        pattern = params.get("logGroupNamePattern")
        identifiers = params.get("logGroupIdentifiers")
        if sum(value is not None for value in (prefix, pattern, identifiers)) > 1:
            raise errors.InvalidParameterException(
                "logGroupNamePrefix, logGroupNamePattern and logGroupIdentifiers are "
                "mutually exclusive parameters."
            )
        with session_scope(readonly=True) as session:
            groups = logstore.list_groups(session, ctx.account_id, ctx.region, prefix)
            if pattern:
                # CloudWatch matches the pattern anywhere in the name, ignoring case.
                needle = pattern.lower()
                groups = [group for group in groups if needle in group.name.lower()]
            if identifiers is not None:
                wanted = {_group_name_of(ctx, identifier) for identifier in identifiers}
                groups = [group for group in groups if group.name in wanted]
            if params.get("logGroupClass"):
                groups = [g for g in groups if g.log_group_class == params["logGroupClass"]]
            scope = {
                "prefix": prefix,
                "pattern": pattern,
                "identifiers": sorted(identifiers or []),
                "class": params.get("logGroupClass"),
            }
            page, token = request_page_tokens(ctx).page(
                groups,
                lambda group: group.name,
                scope,
                params.get("nextToken"),
                params.get("limit", DESCRIBE_PAGE_SIZE),
            )
            sizes = logstore.stored_bytes_of_groups(session, [group.id for group in page])
        output: dict[str, Any] = {"logGroups": [_group_output(g, sizes[g.id]) for g in page]}
        if token:
            output["nextToken"] = token
        return output

    # -- tags (of log groups) ---------------------------------------------------------
    def tag_resource(self, ctx: RequestContext, params: Any) -> Any:
        errors_for_tags = tagging.TagErrors(
            too_many="TooManyTagsException",
            reserved_key="InvalidParameterException",
            invalid="InvalidParameterException",
        )
        with session_scope() as session:
            arn = _tagged_group_arn(session, ctx, params["resourceArn"])
            tagging.put_tags(session, ctx.account_id, arn, params["tags"], errors_for_tags)
        return {}

    def untag_resource(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            arn = _tagged_group_arn(session, ctx, params["resourceArn"])
            tagging.remove_tags(session, arn, params["tagKeys"], TAG_ERRORS)
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope(readonly=True) as session:
            arn = _tagged_group_arn(session, ctx, params["resourceArn"])
            return {"tags": tagging.get_tags(session, arn)}

    # -- streams ---------------------------------------------------------------------
    def create_log_stream(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            group = _require_group(session, ctx, params["logGroupName"])
            try:
                logstore.create_stream(session, group, params["logStreamName"])
            except logstore.AlreadyExists:
                raise errors.ResourceAlreadyExistsException(
                    "The specified log stream already exists"
                ) from None
        return {}

    def delete_log_stream(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            group = _require_group(session, ctx, params["logGroupName"])
            stream = logstore.find_stream(session, group, params["logStreamName"])
            if stream is None:
                raise _stream_missing()
            logstore.delete_stream(session, stream)
        return {}

    def describe_log_streams(self, ctx: RequestContext, params: Any) -> Any:
        order_by = params.get("orderBy", "LogStreamName")
        prefix = params.get("logStreamNamePrefix")
        descending = bool(params.get("descending", False))
        if order_by == "LastEventTime" and prefix:
            raise errors.InvalidParameterException(
                "Cannot order by LastEventTime with a logStreamNamePrefix."
            )
        with session_scope(readonly=True) as session:
            group = _require_group(session, ctx, _group_param(params))
            streams = logstore.list_streams(session, group, prefix=prefix)

        def key(stream: LogStream) -> Any:
            if order_by == "LastEventTime":
                return (stream.last_event_ms or 0, stream.name)
            return stream.name

        streams.sort(key=key, reverse=descending)
        scope = {
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
        output: dict[str, Any] = {"logStreams": [_stream_output(group, s) for s in page]}
        if token:
            output["nextToken"] = token
        return output

    # -- events ----------------------------------------------------------------------
    def put_log_events(self, ctx: RequestContext, params: Any) -> Any:
        events = params["logEvents"]
        timestamps = [event["timestamp"] for event in events]
        if timestamps != sorted(timestamps):
            raise errors.InvalidParameterException(
                "Log events in a single PutLogEvents request must be in chronological order."
            )
        if timestamps[-1] - timestamps[0] > MAX_PUT_SPAN_MS:
            raise errors.InvalidParameterException(
                "The log events in a single PutLogEvents request cannot span more than 24 hours."
            )
        # NUL cannot be stored in a database text column; CloudWatch keeps the event.
        messages = [event["message"].replace("\x00", "\ufffd") for event in events]
        sizes = [len(message.encode("utf-8")) for message in messages]
        if max(sizes) > MAX_EVENT_BYTES:
            raise errors.InvalidParameterException(
                f"Log event too large: an event's message may have at most {MAX_EVENT_BYTES} bytes."
            )
        if sum(sizes) + EVENT_OVERHEAD_BYTES * len(sizes) > MAX_PUT_BATCH_BYTES:
            raise errors.InvalidParameterException(
                "Upload too large: a PutLogEvents batch may have at most 1,048,576 bytes "
                "(messages plus 26 bytes per event)."
            )
        now_ms = _epoch_ms(utcnow())
        too_old_end = sum(1 for timestamp in timestamps if timestamp < now_ms - TOO_OLD_MS)
        too_new_start = next(
            (i for i, timestamp in enumerate(timestamps) if timestamp > now_ms + TOO_NEW_MS),
            len(timestamps),
        )
        accepted = list(zip(timestamps, messages, strict=True))[too_old_end:too_new_start]
        with session_scope() as session:
            group = _require_group(session, ctx, params["logGroupName"])
            stream = logstore.find_stream(session, group, params["logStreamName"])
            if stream is None:
                raise _stream_missing()
            if accepted:
                logstore.append_events(session, stream.id, accepted, now_ms)
            session.refresh(stream)
            output: dict[str, Any] = {"nextSequenceToken": _sequence_token(stream)}
        rejected = {}
        if too_old_end:
            rejected["tooOldLogEventEndIndex"] = too_old_end
        if too_new_start < len(timestamps):
            rejected["tooNewLogEventStartIndex"] = too_new_start
        if rejected:
            output["rejectedLogEventsInfo"] = rejected
        return output

    def get_log_events(self, ctx: RequestContext, params: Any) -> Any:
        lower = (
            logstore.Cursor.at_time(params["startTime"])
            if params.get("startTime") is not None
            else logstore.START
        )
        upper = (
            logstore.Cursor.before_time(params["endTime"])
            if params.get("endTime") is not None
            else logstore.END
        )
        token = params.get("nextToken")
        if token:
            forward, cursor = _decode_stream_token(token)
            after, until = (max(lower, cursor), upper) if forward else (lower, min(upper, cursor))
        else:
            forward = bool(params.get("startFromHead", False))
            cursor, after, until = lower, lower, upper
        limit = params.get("limit", MAX_EVENTS_PER_PAGE)
        with session_scope(readonly=True) as session:
            group = _require_group(session, ctx, _group_param(params))
            stream = logstore.find_stream(session, group, params["logStreamName"])
            if stream is None:
                raise _stream_missing()
            events = logstore.read_stream(
                session, stream.id, after=after, until=until, forward=forward, limit=limit
            )
        events = _within_response_budget(events, keep_first=forward)
        if events:
            next_forward, next_backward = events[-1].cursor, events[0].cursor_before
        else:
            # Nothing there: hand the same position back, so a client polling forward
            # sees its token repeat and later picks up what arrives after it.
            next_forward = next_backward = cursor
        return {
            "events": [
                {
                    "timestamp": event.timestamp_ms,
                    "message": event.message,
                    "ingestionTime": event.ingestion_ms,
                }
                for event in events
            ],
            "nextForwardToken": _stream_token("f", next_forward),
            "nextBackwardToken": _stream_token("b", next_backward),
        }

    def filter_log_events(self, ctx: RequestContext, params: Any) -> Any:
        names = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise errors.InvalidParameterException(
                "logStreamNames and logStreamNamePrefix are mutually exclusive parameters."
            )
        try:
            pattern = parse_filter_pattern(params.get("filterPattern"))
        except FilterPatternError as error:
            raise errors.InvalidParameterException(str(error)) from None
        start_ms = params.get("startTime")
        end_ms = params.get("endTime")
        limit = params.get("limit", MAX_EVENTS_PER_PAGE)
        group_name = _group_param(params)
        scope = {
            "group": group_name,
            "names": sorted(names) if names is not None else None,
            "prefix": prefix,
            "pattern": params.get("filterPattern"),
            "start": start_ms,
            "end": end_ms,
        }
        signer = request_page_tokens(ctx)
        position = logstore.GroupCursor(start_ms or 0, 0, 0)
        if params.get("nextToken"):
            timestamp, stream_id, sequence = signer.decode(scope, params["nextToken"])
            position = logstore.GroupCursor(int(timestamp), int(stream_id), int(sequence))
        matched: list[tuple[logstore.StoredEvent, str]] = []
        budget = MAX_RESPONSE_BYTES
        more = False
        with session_scope(readonly=True) as session:
            group = _require_group(session, ctx, group_name)
            scanned = 0
            while True:
                chunk = logstore.scan_group(
                    session,
                    group.id,
                    names=names,
                    prefix=prefix,
                    after=position,
                    end_ms=end_ms,
                    limit=FILTER_CHUNK,
                )
                for event, stream_name in chunk:
                    size = len(event.message.encode("utf-8")) + EVENT_OVERHEAD_BYTES
                    if pattern.matches(event.message):
                        if len(matched) >= limit or size > budget:
                            more = True
                            break
                        matched.append((event, stream_name))
                        budget -= size
                    position = logstore.GroupCursor(
                        event.timestamp_ms, event.stream_id, event.sequence
                    )
                scanned += len(chunk)
                if more or len(chunk) < FILTER_CHUNK:
                    break
                if scanned >= FILTER_SCAN_BUDGET:
                    more = True
                    break
        # searchedLogStreams is left out: CloudWatch has stopped filling it in too.
        output: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": stream_name,
                    "timestamp": event.timestamp_ms,
                    "message": event.message,
                    "ingestionTime": event.ingestion_ms,
                    "eventId": _event_id(event),
                }
                for event, stream_name in matched
            ]
        }
        if more:
            output["nextToken"] = signer.encode(
                scope, [position.timestamp_ms, position.stream_id, position.sequence]
            )
        return output


# -- helpers -----------------------------------------------------------------------------------
def _group_param(params: dict[str, Any]) -> str:
    """The group a read names, by logGroupName or logGroupIdentifier (name or ARN)."""
    name = params.get("logGroupName")
    identifier = params.get("logGroupIdentifier")
    if name is not None and identifier is not None:
        raise errors.InvalidParameterException(
            "LogGroup name and LogGroup identifier are mutually exclusive parameters."
        )
    if name is None and identifier is None:
        raise errors.InvalidParameterException(
            "Either logGroupName or logGroupIdentifier must be specified."
        )
    return str(name if name is not None else identifier)


def _group_name_of(ctx: RequestContext, identifier: str) -> str | None:
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


def _require_group(session: Session, ctx: RequestContext, name_or_arn: str) -> LogGroup:
    name = _group_name_of(ctx, name_or_arn)
    group = logstore.find_group(session, ctx.account_id, ctx.region, name) if name else None
    if group is None:
        raise _group_missing()
    return group


def _tagged_group_arn(session: Session, ctx: RequestContext, resource_arn: str) -> str:
    """The ARN tags of the log group `resource_arn` are kept under. Forgeline tags log
    groups only (not delivery sources or destinations)."""
    if not resource_arn.startswith("arn:") or ":log-group:" not in resource_arn:
        raise errors.InvalidParameterException(
            f"{resource_arn} is not a log group ARN (arn:aws:logs:region:account:log-group:name)."
        )
    group = _require_group(session, ctx, resource_arn)
    return logstore.group_arn(group.region, group.account_id, group.name)


def _group_output(group: LogGroup, stored_bytes: int) -> dict[str, Any]:
    arn = logstore.group_arn(group.region, group.account_id, group.name)
    output: dict[str, Any] = {
        "logGroupName": group.name,
        "creationTime": _epoch_ms(group.created_at),
        "metricFilterCount": 0,
        "arn": f"{arn}:*",
        "storedBytes": stored_bytes,
        "logGroupClass": group.log_group_class,
        "logGroupArn": arn,
        "deletionProtectionEnabled": group.deletion_protection,
    }
    if group.kms_key_id:
        output["kmsKeyId"] = group.kms_key_id
    return output


def _stream_output(group: LogGroup, stream: LogStream) -> dict[str, Any]:
    output: dict[str, Any] = {
        "logStreamName": stream.name,
        "creationTime": _epoch_ms(stream.created_at),
        "uploadSequenceToken": _sequence_token(stream),
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


def _sequence_token(stream: LogStream) -> str:
    # CloudWatch no longer checks sequence tokens but still returns them; ours counts.
    return f"{stream.next_sequence:056d}"


def _stream_token(direction: str, cursor: logstore.Cursor) -> str:
    return f"{direction}/{cursor.timestamp_ms:020d}{cursor.sequence:020d}/s"


def _decode_stream_token(token: str) -> tuple[bool, logstore.Cursor]:
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise errors.InvalidParameterException("The specified nextToken is invalid.")
    cursor = logstore.Cursor(int(match.group(2)), int(match.group(3)))
    if cursor > logstore.END:
        raise errors.InvalidParameterException("The specified nextToken is invalid.")
    return match.group(1) == "f", cursor


def _within_response_budget(
    events: list[logstore.StoredEvent], *, keep_first: bool
) -> list[logstore.StoredEvent]:
    """As many events as fit CloudWatch's 1 MB response: the first ones reading forward,
    the last ones reading backward."""
    budget = MAX_RESPONSE_BYTES
    ordered = events if keep_first else events[::-1]
    kept = 0
    for event in ordered:
        size = len(event.message.encode("utf-8")) + EVENT_OVERHEAD_BYTES
        if size > budget:
            break
        budget -= size
        kept += 1
    if kept == len(events):
        return events
    return events[:kept] if keep_first else events[len(events) - kept :]


def _event_id(event: logstore.StoredEvent) -> str:
    # Stable and unique per event: `aws logs tail --follow` drops ids it has printed.
    return f"{event.timestamp_ms:020d}{event.stream_id:016d}{event.sequence:020d}"
