"""FilterLogEvents with CloudWatch's JSON and space-delimited filter patterns, over HTTP:
events written with PutLogEvents, read back through boto3 and the AWS CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

AWS_CLI = str(Path(sys.executable).parent / "aws")

APACHE = [
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326',
    '10.0.0.7 - - [10/Oct/2000:13:56:01 -0700] "POST /login HTTP/1.1" 503 87',
    '10.0.0.8 - jo [10/Oct/2000:13:57:12 -0700] "GET /index.html HTTP/1.1" 404 1534',
]
JSON_EVENTS = [
    json.dumps({"level": "error", "latency": 812, "user": {"id": 7}, "tags": ["db"]}),
    json.dumps({"level": "info", "latency": 35, "user": {"id": 8}, "tags": []}),
    json.dumps({"level": "error", "latency": 20, "user": None}),
]
PLAIN = ["ERROR plain text line", "level = error, but not JSON"]


@pytest.fixture
def group(logs: Any) -> Iterator[str]:
    name = f"/forgeline/filter-{uuid.uuid4().hex[:10]}"
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="app")
    start = int(time.time() * 1000) - 60_000
    messages = APACHE + JSON_EVENTS + PLAIN
    logs.put_log_events(
        logGroupName=name,
        logStreamName="app",
        logEvents=[{"timestamp": start + i, "message": m} for i, m in enumerate(messages)],
    )
    yield name
    with contextlib.suppress(ClientError):
        logs.delete_log_group(logGroupName=name)


def filtered(logs: Any, group: str, pattern: str) -> list[str]:
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, filterPattern=pattern
    )
    return [event["message"] for page in pages for event in page["events"]]


def test_json_patterns_through_boto3(logs: Any, group: str) -> None:
    assert filtered(logs, group, '{ $.level = "error" }') == [JSON_EVENTS[0], JSON_EVENTS[2]]
    assert filtered(logs, group, '{ $.level = "error" && $.latency > 500 }') == JSON_EVENTS[:1]
    assert filtered(logs, group, "{ $.user IS NULL || $.user.id = 8 }") == JSON_EVENTS[1:]
    assert filtered(logs, group, "{ $.tags[0] NOT EXISTS }") == JSON_EVENTS[1:]
    assert filtered(logs, group, "{ $.level = %^err% }") == [JSON_EVENTS[0], JSON_EVENTS[2]]


def test_space_delimited_patterns_through_boto3(logs: Any, group: str) -> None:
    every_field = "[ip, id, user, timestamp, request, status, size]"
    assert filtered(logs, group, every_field) == APACHE
    assert filtered(logs, group, "[ip, id, user, timestamp, request, status=5*, size]") == [
        APACHE[1]
    ]
    assert filtered(logs, group, '[..., request = "*index.html*", status = 404, size]') == [
        APACHE[2]
    ]
    assert filtered(logs, group, "[ip, ..., status != 200 && status < 500, size > 1000]") == [
        APACHE[2]
    ]
    # The first word decides; `...` takes the rest of each line.
    assert filtered(logs, group, "[w1 = ERROR || w1 = WARN, ...]") == [PLAIN[0]]


@pytest.mark.parametrize(
    "pattern",
    ['{ $.level = "error"', "{ $.latency > fast }", "[ip, user", "%(a|b)%", '"open'],
)
def test_invalid_patterns_are_invalid_parameter_exceptions(
    logs: Any, group: str, pattern: str
) -> None:
    with pytest.raises(ClientError) as raised:
        logs.filter_log_events(logGroupName=group, filterPattern=pattern)
    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidParameterException"
    assert error["Message"].startswith("Invalid filter pattern: ")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def aws_filter(forgeline: Any, group: str, pattern: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        AWS_SHARED_CREDENTIALS_FILE=str(forgeline.credentials_file),
        AWS_CONFIG_FILE="/dev/null",
        AWS_DEFAULT_REGION="us-east-1",
    )
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    command = [AWS_CLI, "--profile", "forgeline", "--endpoint-url", forgeline.url, "logs"]
    return subprocess.run(
        [*command, "filter-log-events", "--log-group-name", group, "--filter-pattern", pattern],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_aws_cli_filter_log_events_with_filter_patterns(forgeline: Any, group: str) -> None:
    by_json = aws_filter(forgeline, group, "{ $.latency >= 35 }")
    assert by_json.returncode == 0, by_json.stderr
    assert [e["message"] for e in json.loads(by_json.stdout)["events"]] == JSON_EVENTS[:2]

    by_fields = aws_filter(forgeline, group, "[ip, id, user=frank, ...]")
    assert by_fields.returncode == 0, by_fields.stderr
    assert [e["message"] for e in json.loads(by_fields.stdout)["events"]] == APACHE[:1]

    refused = aws_filter(forgeline, group, "{ $.latency >= }")
    assert refused.returncode != 0
    assert "InvalidParameterException" in refused.stderr
    assert "Invalid filter pattern" in refused.stderr
