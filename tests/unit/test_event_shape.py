from __future__ import annotations

import datetime as dt

from forgeline.core.events import StoredEvent, format_event_time, to_eventbridge

BUILD_ARN = "arn:aws:codebuild:us-east-1:123456789012:build/demo:1b2c"


def make_event(**overrides: object) -> StoredEvent:
    fields: dict[str, object] = {
        "id": 7,
        "event_id": "6a7e8ef6-1f5b-4e0a-9d0e-3f7c0c8f4b11",
        "account_id": "123456789012",
        "region": "us-east-1",
        "source": "aws.codebuild",
        "detail_type": "CodeBuild Build State Change",
        "resources": (BUILD_ARN,),
        "detail": {"build-status": "IN_PROGRESS", "project-name": "demo"},
        "time": dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC),
    }
    fields.update(overrides)
    return StoredEvent(**fields)  # type: ignore[arg-type]


def test_event_has_eventbridge_shape() -> None:
    assert to_eventbridge(make_event()) == {
        "version": "0",
        "id": "6a7e8ef6-1f5b-4e0a-9d0e-3f7c0c8f4b11",
        "detail-type": "CodeBuild Build State Change",
        "source": "aws.codebuild",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [BUILD_ARN],
        "detail": {"build-status": "IN_PROGRESS", "project-name": "demo"},
    }


def test_keys_come_in_eventbridge_order() -> None:
    assert list(to_eventbridge(make_event())) == [
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    ]


def test_time_is_utc_whole_seconds_with_z() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert format_event_time(dt.datetime(2026, 3, 5, 14, 7, 9, 999999, tzinfo=plus_two)) == (
        "2026-03-05T12:07:09Z"
    )
    # Naive datetimes are UTC (SQLite hands them back without a zone).
    assert format_event_time(dt.datetime(2026, 3, 5, 14, 7, 9)) == "2026-03-05T14:07:09Z"


def test_shape_is_a_copy_the_caller_cannot_corrupt() -> None:
    stored = make_event(detail={"phases": [{"phase-type": "BUILD"}]})
    shaped = to_eventbridge(stored)
    shaped["detail"]["phases"][0]["phase-type"] = "CHANGED"
    shaped["resources"].append("arn:aws:codebuild:us-east-1:123456789012:project/other")
    assert stored.detail == {"phases": [{"phase-type": "BUILD"}]}
    assert stored.resources == (BUILD_ARN,)
