"""Log events: PutLogEvents, GetLogEvents and FilterLogEvents (what `aws logs tail`
polls).

GetLogEvents' tokens are CloudWatch-shaped (`f/<digits>/s`, `b/<digits>/s`): the digits
are a position in the stream (logstore.Cursor), so a forward token keeps working as new
events arrive, and when nothing new is there the same token comes back — the signal
clients loop on. FilterLogEvents' nextToken is a signed position in the group's
time-ordered events.
"""

from __future__ import annotations

import re
from typing import Any

from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens
from forgeline.logs import store as logstore
from forgeline.logs.filter.patterns import FilterPatternError, parse_filter_pattern
from forgeline.logs.generated import errors, shapes
from forgeline.logs.ops.lookups import epoch_ms, group_param, require_group, require_stream
from forgeline.logs.ops.streams import sequence_token

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

_TOKEN = re.compile(r"([fb])/(\d{20})(\d{20})/s")


class EventOperations:
    def put_log_events(
        self, ctx: RequestContext, params: shapes.PutLogEventsRequest
    ) -> shapes.PutLogEventsResponse:
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
        if max(sizes) > logstore.MAX_EVENT_BYTES:
            raise errors.InvalidParameterException(
                f"Log event too large: an event's message may have at most {logstore.MAX_EVENT_BYTES} bytes."
            )
        if sum(sizes) + EVENT_OVERHEAD_BYTES * len(sizes) > MAX_PUT_BATCH_BYTES:
            raise errors.InvalidParameterException(
                "Upload too large: a PutLogEvents batch may have at most 1,048,576 bytes "
                "(messages plus 26 bytes per event)."
            )
        now_ms = epoch_ms(utcnow())
        too_old_end = sum(1 for timestamp in timestamps if timestamp < now_ms - TOO_OLD_MS)
        too_new_start = next(
            (i for i, timestamp in enumerate(timestamps) if timestamp > now_ms + TOO_NEW_MS),
            len(timestamps),
        )
        accepted = list(zip(timestamps, messages, strict=True))[too_old_end:too_new_start]
        with session_scope() as session:
            group = require_group(session, ctx, params["logGroupName"])
            stream = require_stream(session, group, params["logStreamName"])
            if accepted:
                logstore.append_events(session, stream.id, accepted, now_ms)
            session.refresh(stream)
            output: shapes.PutLogEventsResponse = {"nextSequenceToken": sequence_token(stream)}
        rejected: shapes.RejectedLogEventsInfo = {}
        if too_old_end:
            rejected["tooOldLogEventEndIndex"] = too_old_end
        if too_new_start < len(timestamps):
            rejected["tooNewLogEventStartIndex"] = too_new_start
        if rejected:
            output["rejectedLogEventsInfo"] = rejected
        return output

    def get_log_events(
        self, ctx: RequestContext, params: shapes.GetLogEventsRequest
    ) -> shapes.GetLogEventsResponse:
        start_ms, end_ms = params.get("startTime"), params.get("endTime")
        lower = logstore.Cursor.at_time(start_ms) if start_ms is not None else logstore.START
        upper = logstore.Cursor.before_time(end_ms) if end_ms is not None else logstore.END
        token = params.get("nextToken")
        if token:
            forward, cursor = _decode_stream_token(token)
            after, until = (max(lower, cursor), upper) if forward else (lower, min(upper, cursor))
        else:
            forward = bool(params.get("startFromHead", False))
            cursor, after, until = lower, lower, upper
        limit = params.get("limit", MAX_EVENTS_PER_PAGE)
        with session_scope(readonly=True) as session:
            group = require_group(session, ctx, group_param(params))
            stream = require_stream(session, group, params["logStreamName"])
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

    def filter_log_events(
        self, ctx: RequestContext, params: shapes.FilterLogEventsRequest
    ) -> shapes.FilterLogEventsResponse:
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
        group_name = group_param(params)
        scope: dict[str, Any] = {
            "group": group_name,
            "names": sorted(names) if names is not None else None,
            "prefix": prefix,
            "pattern": params.get("filterPattern"),
            "start": start_ms,
            "end": end_ms,
        }
        signer = request_page_tokens(ctx)
        position = logstore.GroupCursor(start_ms or 0, 0, 0)
        token = params.get("nextToken")
        if token:
            timestamp, stream_id, sequence = signer.decode(scope, token)
            position = logstore.GroupCursor(int(timestamp), int(stream_id), int(sequence))
        matched: list[shapes.FilteredLogEvent] = []
        budget = MAX_RESPONSE_BYTES
        more = False
        with session_scope(readonly=True) as session:
            group = require_group(session, ctx, group_name)
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
                        matched.append(_filtered_event(event, stream_name))
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
        output: shapes.FilterLogEventsResponse = {"events": matched}
        if more:
            output["nextToken"] = signer.encode(
                scope, [position.timestamp_ms, position.stream_id, position.sequence]
            )
        return output


def _filtered_event(event: logstore.StoredEvent, stream_name: str) -> shapes.FilteredLogEvent:
    return {
        "logStreamName": stream_name,
        "timestamp": event.timestamp_ms,
        "message": event.message,
        "ingestionTime": event.ingestion_ms,
        "eventId": _event_id(event),
    }


def _event_id(event: logstore.StoredEvent) -> str:
    # Stable and unique per event: `aws logs tail --follow` drops ids it has printed.
    return f"{event.timestamp_ms:020d}{event.stream_id:016d}{event.sequence:020d}"


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
