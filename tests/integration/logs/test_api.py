"""Build logs through the CloudWatch Logs API over HTTP: boto3, the AWS CLI v2's
`aws logs tail --follow`, and the live build log writer feeding a running server."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import select as sql_select

from forgeline.codebuild.logwriter import BuildLogWriter, open_build_log
from forgeline.core.db import dispose_engines, session_scope
from forgeline.core.settings import Settings
from forgeline.logs.tables import LogGroup
from tests.support.errors import error_code
from tests.support.paths import REPO_ROOT


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def group(logs: Any) -> Iterator[str]:
    name = unique("/aws/codebuild/test")
    logs.create_log_group(logGroupName=name)
    yield name
    with contextlib.suppress(ClientError):
        logs.delete_log_group(logGroupName=name)


def put(logs: Any, group: str, stream: str, messages: list[str], start: int | None = None) -> int:
    start = now_ms() if start is None else start
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": start + i, "message": m} for i, m in enumerate(messages)],
    )
    return start


# -- groups and streams ----------------------------------------------------------------------
def test_groups_and_streams_are_created_described_and_deleted(logs: Any, group: str) -> None:
    with pytest.raises(ClientError) as again:
        logs.create_log_group(logGroupName=group)
    assert error_code(again) == "ResourceAlreadyExistsException"

    described = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in described] == [group]
    account = described[0]["logGroupArn"].split(":")[4]
    assert described[0]["logGroupArn"] == f"arn:aws:logs:us-east-1:{account}:log-group:{group}"
    assert described[0]["arn"] == described[0]["logGroupArn"] + ":*"
    assert abs(described[0]["creationTime"] - now_ms()) < 60_000
    assert described[0]["storedBytes"] == 0

    logs.create_log_stream(logGroupName=group, logStreamName="build-a")
    with pytest.raises(ClientError) as twice:
        logs.create_log_stream(logGroupName=group, logStreamName="build-a")
    assert error_code(twice) == "ResourceAlreadyExistsException"
    put(logs, group, "build-a", ["12345", "678"])
    stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]
    assert stream["logStreamName"] == "build-a"
    assert stream["arn"].endswith(f"log-group:{group}:log-stream:build-a")
    assert stream["lastEventTimestamp"] - stream["firstEventTimestamp"] == 1
    assert stream["storedBytes"] == 8
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == 8

    logs.delete_log_stream(logGroupName=group, logStreamName="build-a")
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
    with pytest.raises(ClientError) as gone:
        logs.get_log_events(logGroupName=group, logStreamName="build-a")
    assert error_code(gone) == "ResourceNotFoundException"

    logs.delete_log_group(logGroupName=group)
    with pytest.raises(ClientError) as missing:
        logs.delete_log_group(logGroupName=group)
    assert error_code(missing) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as no_group:
        logs.create_log_stream(logGroupName=group, logStreamName="x")
    assert error_code(no_group) == "ResourceNotFoundException"


def test_log_group_tags(logs: Any) -> None:
    name = unique("/tagged")
    logs.create_log_group(logGroupName=name, tags={"team": "build", "env": "ci"})
    try:
        arn = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]["logGroupArn"]
        assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {
            "team": "build",
            "env": "ci",
        }
        logs.tag_resource(resourceArn=arn, tags={"owner": "me"})
        logs.untag_resource(resourceArn=arn, tagKeys=["env"])
        assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {
            "team": "build",
            "owner": "me",
        }
        with pytest.raises(ClientError) as too_many:
            logs.tag_resource(resourceArn=arn, tags={f"k{n}": "v" for n in range(49)})
        assert error_code(too_many) == "TooManyTagsException"
        with pytest.raises(ClientError) as reserved:
            logs.tag_resource(resourceArn=arn, tags={"aws:x": "v"})
        assert error_code(reserved) == "InvalidParameterException"
    finally:
        logs.delete_log_group(logGroupName=name)
    logs.create_log_group(logGroupName=name)  # tags went with the deleted group
    try:
        assert logs.list_tags_for_resource(resourceArn=arn)["tags"] == {}
    finally:
        logs.delete_log_group(logGroupName=name)
    with pytest.raises(ClientError) as missing:
        logs.list_tags_for_resource(resourceArn=arn)
    assert error_code(missing) == "ResourceNotFoundException"


def test_describe_log_groups_pages_by_name(logs: Any) -> None:
    prefix = unique("/paging")
    names = [f"{prefix}/{n:02d}" for n in range(7)]
    for name in reversed(names):
        logs.create_log_group(logGroupName=name)
    try:
        pages = list(
            logs.get_paginator("describe_log_groups").paginate(
                logGroupNamePrefix=prefix, PaginationConfig={"PageSize": 3}
            )
        )
        assert [len(page["logGroups"]) for page in pages] == [3, 3, 1]
        assert [g["logGroupName"] for page in pages for g in page["logGroups"]] == names
        pattern = logs.describe_log_groups(logGroupNamePattern=prefix.upper()[1:] + "/03")
        assert [g["logGroupName"] for g in pattern["logGroups"]] == [names[3]]
        with pytest.raises(ClientError) as both:
            logs.describe_log_groups(logGroupNamePrefix=prefix, logGroupNamePattern="x")
        assert error_code(both) == "InvalidParameterException"
    finally:
        for name in names:
            logs.delete_log_group(logGroupName=name)


def test_describe_log_streams_orders_by_name_or_last_event(logs: Any, group: str) -> None:
    start = now_ms() - 10_000
    for index, name in enumerate(["c", "a", "b"]):
        logs.create_log_stream(logGroupName=group, logStreamName=name)
        put(logs, group, name, [f"from {name}"], start=start + index * 1000)

    def names(**params: Any) -> list[str]:
        streams = logs.describe_log_streams(logGroupName=group, **params)["logStreams"]
        return [s["logStreamName"] for s in streams]

    assert names() == ["a", "b", "c"]
    assert names(descending=True) == ["c", "b", "a"]
    assert names(orderBy="LastEventTime") == ["c", "a", "b"]
    assert names(orderBy="LastEventTime", descending=True) == ["b", "a", "c"]
    assert names(logStreamNamePrefix="b") == ["b"]
    paged = logs.get_paginator("describe_log_streams").paginate(
        logGroupName=group, orderBy="LastEventTime", PaginationConfig={"PageSize": 1}
    )
    assert [s["logStreamName"] for page in paged for s in page["logStreams"]] == ["c", "a", "b"]
    with pytest.raises(ClientError) as conflict:
        logs.describe_log_streams(
            logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="b"
        )
    assert error_code(conflict) == "InvalidParameterException"


# -- GetLogEvents ----------------------------------------------------------------------------
def test_forward_token_reads_everything_and_repeats_at_the_end(logs: Any, group: str) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    start = put(logs, group, "s", [f"line {n}" for n in range(25)])
    seen: list[str] = []
    response = logs.get_log_events(
        logGroupName=group, logStreamName="s", startFromHead=True, limit=10
    )
    while True:
        seen += [event["message"] for event in response["events"]]
        token = response["nextForwardToken"]
        response = logs.get_log_events(
            logGroupName=group, logStreamName="s", nextToken=token, limit=10
        )
        if response["nextForwardToken"] == token:
            assert response["events"] == []
            break
    assert seen == [f"line {n}" for n in range(25)]
    assert token.startswith("f/")

    # New events show up behind the token that had stopped moving.
    # (Events are ordered by timestamp: these come after the 25 above.)
    put(logs, group, "s", ["late 1", "late 2"], start + 1000)
    later = logs.get_log_events(logGroupName=group, logStreamName="s", nextToken=token)
    assert [e["message"] for e in later["events"]] == ["late 1", "late 2"]
    assert all(e["ingestionTime"] >= e["timestamp"] - 5000 for e in later["events"])


def test_default_read_is_the_tail_and_backward_tokens_walk_back(logs: Any, group: str) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    put(logs, group, "s", [f"line {n}" for n in range(25)])
    tail = logs.get_log_events(logGroupName=group, logStreamName="s", limit=10)
    assert [e["message"] for e in tail["events"]] == [f"line {n}" for n in range(15, 25)]
    assert tail["nextBackwardToken"].startswith("b/")
    back = logs.get_log_events(
        logGroupName=group, logStreamName="s", nextToken=tail["nextBackwardToken"], limit=10
    )
    assert [e["message"] for e in back["events"]] == [f"line {n}" for n in range(5, 15)]
    back = logs.get_log_events(
        logGroupName=group, logStreamName="s", nextToken=back["nextBackwardToken"], limit=10
    )
    assert [e["message"] for e in back["events"]] == [f"line {n}" for n in range(5)]
    end = logs.get_log_events(
        logGroupName=group, logStreamName="s", nextToken=back["nextBackwardToken"], limit=10
    )
    assert end["events"] == [] and end["nextBackwardToken"] == back["nextBackwardToken"]
    # Forward again from the middle.
    forward = logs.get_log_events(
        logGroupName=group, logStreamName="s", nextToken=back["nextForwardToken"], limit=3
    )
    assert [e["message"] for e in forward["events"]] == ["line 5", "line 6", "line 7"]


def test_time_range_and_errors_of_get_log_events(logs: Any, group: str) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    start = put(logs, group, "s", [f"line {n}" for n in range(10)])
    ranged = logs.get_log_events(
        logGroupName=group,
        logStreamName="s",
        startTime=start + 3,
        endTime=start + 6,
        startFromHead=True,
    )
    assert [e["message"] for e in ranged["events"]] == ["line 3", "line 4", "line 5"]
    assert [e["timestamp"] for e in ranged["events"]] == [start + 3, start + 4, start + 5]

    arn = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["logGroupArn"]
    by_arn = logs.get_log_events(logGroupIdentifier=arn, logStreamName="s", limit=1)
    assert [e["message"] for e in by_arn["events"]] == ["line 9"]

    for bad in ("f/123/s", "garbage", "b/" + "9" * 40 + "/s"):
        with pytest.raises(ClientError) as invalid:
            logs.get_log_events(logGroupName=group, logStreamName="s", nextToken=bad)
        assert error_code(invalid) == "InvalidParameterException"
    with pytest.raises(ClientError) as both:
        logs.get_log_events(logGroupName=group, logGroupIdentifier=group, logStreamName="s")
    assert error_code(both) == "InvalidParameterException"
    with pytest.raises(ClientError) as neither:
        logs.get_log_events(logStreamName="s")
    assert error_code(neither) == "InvalidParameterException"
    with pytest.raises(ClientError) as no_stream:
        logs.get_log_events(logGroupName=group, logStreamName="nope")
    assert error_code(no_stream) == "ResourceNotFoundException"


def test_put_log_events_checks_order_size_and_age(logs: Any, group: str) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = now_ms()
    with pytest.raises(ClientError) as unordered:
        logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}],
        )
    assert error_code(unordered) == "InvalidParameterException"
    with pytest.raises(ClientError) as huge:
        logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": now, "message": "x" * 300_000}],
        )
    assert error_code(huge) == "InvalidParameterException"

    old = now - 15 * 24 * 3600 * 1000
    response = logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": old, "message": "too old"}],
    )
    assert response["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1}
    response = logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[
            {"timestamp": now, "message": "kept"},
            {"timestamp": now + 3 * 3600 * 1000, "message": "too new"},
        ],
    )
    assert response["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}
    with pytest.raises(ClientError) as span:
        logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": old, "message": "a"}, {"timestamp": now, "message": "b"}],
        )
    assert error_code(span) == "InvalidParameterException"
    assert response["nextSequenceToken"]
    events = logs.get_log_events(logGroupName=group, logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["kept"]


# -- FilterLogEvents -------------------------------------------------------------------------
def test_filter_log_events_patterns_streams_and_paging(logs: Any, group: str) -> None:
    start = now_ms() - 60_000
    logs.create_log_stream(logGroupName=group, logStreamName="build-1")
    logs.create_log_stream(logGroupName=group, logStreamName="build-2")
    logs.create_log_stream(logGroupName=group, logStreamName="other")
    put(
        logs,
        group,
        "build-1",
        ["ERROR disk full", "INFO ok", "ERROR connection reset by peer", "WARN slow"],
        start,
    )
    put(logs, group, "build-2", ["ERROR DEBUG noise", "INFO ERROR later"], start + 1)
    put(logs, group, "other", ["ERROR elsewhere"], start + 2)

    def messages(**params: Any) -> list[str]:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group, **params)
        return [e["message"] for page in pages for e in page["events"]]

    # Interleaved by time across streams.
    assert messages(logStreamNames=["build-1", "build-2"]) == [
        "ERROR disk full",
        "INFO ok",
        "ERROR DEBUG noise",
        "ERROR connection reset by peer",
        "INFO ERROR later",
        "WARN slow",
    ]
    assert messages(filterPattern="ERROR", logStreamNamePrefix="build") == [
        "ERROR disk full",
        "ERROR DEBUG noise",
        "ERROR connection reset by peer",
        "INFO ERROR later",
    ]
    assert messages(filterPattern='"connection reset"') == ["ERROR connection reset by peer"]
    assert messages(filterPattern="ERROR -DEBUG -elsewhere") == [
        "ERROR disk full",
        "ERROR connection reset by peer",
        "INFO ERROR later",
    ]
    assert messages(filterPattern="?WARN ?disk") == ["ERROR disk full", "WARN slow"]
    assert messages(filterPattern="error") == []  # case-sensitive, as CloudWatch
    assert messages(filterPattern="%disk|else%") == ["ERROR disk full", "ERROR elsewhere"]
    assert messages(startTime=start + 2, endTime=start + 3) == [
        "ERROR connection reset by peer",
        "INFO ERROR later",
        "ERROR elsewhere",
    ]
    # One event per page: the paginator follows nextToken to the end.
    assert len(messages(PaginationConfig={"PageSize": 1})) == 7
    first = logs.filter_log_events(logGroupName=group, limit=2)
    assert len(first["events"]) == 2 and first["nextToken"]
    ids = {e["eventId"] for e in first["events"]}
    rest = logs.filter_log_events(logGroupName=group, nextToken=first["nextToken"])
    assert len(rest["events"]) == 5 and "nextToken" not in rest
    assert ids.isdisjoint(e["eventId"] for e in rest["events"])
    assert {e["logStreamName"] for e in rest["events"]} == {"build-1", "build-2", "other"}

    for pattern in ('{ $.level = "error"', "[ip, user", '"unclosed', "%(a|b)%"):
        with pytest.raises(ClientError) as unsupported:
            logs.filter_log_events(logGroupName=group, filterPattern=pattern)
        assert error_code(unsupported) == "InvalidParameterException"
        assert unsupported.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as both:
        logs.filter_log_events(logGroupName=group, logStreamNames=["a"], logStreamNamePrefix="a")
    assert error_code(both) == "InvalidParameterException"
    with pytest.raises(ClientError) as forged:
        logs.filter_log_events(logGroupName=group, nextToken="bm90IGEgdG9rZW4")
    assert error_code(forged) == "InvalidParameterException"


def test_polling_filter_log_events_like_tail_follow(logs: Any, group: str) -> None:
    """What `aws logs tail --follow` does: poll from the newest timestamp seen, skipping
    event ids already printed."""
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    printed: list[str] = []
    seen_ids: set[str] = set()
    base = start = now_ms() - 1000
    for batch in range(4):
        # Each batch later than the last (quick calls could share milliseconds).
        put(logs, group, "s", [f"batch {batch} line {n}" for n in range(3)], base + batch * 10)
        response = logs.filter_log_events(logGroupName=group, startTime=start)
        for event in response["events"]:
            if event["eventId"] not in seen_ids:
                seen_ids.add(event["eventId"])
                printed.append(event["message"])
                start = max(start, event["timestamp"])
    assert printed == [f"batch {b} line {n}" for b in range(4) for n in range(3)]


# -- accounts --------------------------------------------------------------------------------
def test_log_groups_of_another_account_stay_invisible(
    forgeline: Any, logs: Any, group: str
) -> None:
    import json

    created = json.loads(forgeline.cli("accounts", "create", "--name", unique("logs")).stdout)
    other = forgeline.client(
        "logs", credentials=(created["accessKeyId"], created["secretAccessKey"])
    )
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    put(logs, group, "s", ["secret of account A"])
    assert other.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    arn = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["logGroupArn"]
    for call in (
        lambda: other.get_log_events(logGroupName=group, logStreamName="s"),
        lambda: other.get_log_events(logGroupIdentifier=arn, logStreamName="s"),
        lambda: other.filter_log_events(logGroupIdentifier=arn),
        lambda: other.delete_log_group(logGroupName=group),
    ):
        with pytest.raises(ClientError) as hidden:
            call()
        assert error_code(hidden) == "ResourceNotFoundException"
    other.create_log_group(logGroupName=group)  # same name, another account: no clash
    assert other.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0]["storedBytes"] == 0


# -- the live writer feeding a running server ------------------------------------------------
def account_of(forgeline: Any, group: str) -> str:
    with session_scope(forgeline.database_url, readonly=True) as session:
        return str(
            session.scalars(sql_select(LogGroup.account_id).where(LogGroup.name == group)).one()
        )


@pytest.fixture
def live_writer(forgeline: Any, group: str) -> Iterator[BuildLogWriter]:
    settings = Settings(data_dir=forgeline.data_dir, database_url=forgeline.database_url)
    writer = open_build_log(
        settings, account_of(forgeline, group), "us-east-1", group, "live", mask=["s3cr3t"]
    )
    try:
        yield writer
    finally:
        writer.close()
        dispose_engines()


def test_printed_lines_are_readable_through_get_log_events_within_500ms(
    logs: Any, group: str, live_writer: BuildLogWriter
) -> None:
    live_writer.write_line("[Container] 2024/01/01 12:00:00.000000 Entering phase BUILD")
    token = None
    latencies = []
    for n in range(30):
        written = time.monotonic()
        live_writer.write(f"step {n} token=s3cr3t\n".encode())
        found = False
        while not found:
            params: dict[str, Any] = {"logGroupName": group, "logStreamName": "live"}
            params.update({"nextToken": token} if token else {"startFromHead": True})
            response = logs.get_log_events(**params)
            token = response["nextForwardToken"]
            found = any(e["message"] == f"step {n} token=***" for e in response["events"])
            assert time.monotonic() - written < 5, f"line {n} not readable after 5 s"
        latencies.append(time.monotonic() - written)
        time.sleep(0.02 * (n % 4))
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(
        f"write->GetLogEvents latency: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms"
    )
    assert p95 < 0.5


# -- aws logs tail (AWS CLI v2) --------------------------------------------------------------
@pytest.fixture(scope="module")
def aws_v2() -> str:
    """The AWS CLI v2 executable, installed into .cache/awscli-v2 if missing."""
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "install-awscli-v2.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"installing AWS CLI v2 failed:\n{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


def test_aws_logs_tail_follow_prints_lines_as_the_build_writes_them(
    forgeline: Any, aws_v2: str, group: str, live_writer: BuildLogWriter
) -> None:
    live_writer.write(b"before tail started\n")
    assert live_writer.flush(5)
    env = dict(
        os.environ,
        AWS_SHARED_CREDENTIALS_FILE=str(forgeline.credentials_file),
        AWS_CONFIG_FILE="/dev/null",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_PAGER="",
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(name, None)
    # A terminal, so the CLI prints each line as it gets it instead of buffering.
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [
            aws_v2,
            "--profile",
            "forgeline",
            "--endpoint-url",
            forgeline.url,
            "logs",
            "tail",
            group,
            "--follow",
            "--format",
            "short",
            "--color",
            "off",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = b""

    def read_until(text: str, timeout: float) -> bool:
        nonlocal output
        deadline = time.monotonic() + timeout
        while text.encode() not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([leader], [], [], remaining)
            if ready:
                with contextlib.suppress(OSError):
                    output += os.read(leader, 65536)
        return True

    try:
        assert read_until("before tail started", 30), output.decode(errors="replace")
        for n in range(3):
            live_writer.write(f"while following {n} s3cr3t\n".encode())
            time.sleep(1)
        # tail --follow polls every 5 seconds.
        assert read_until("while following 2 ***", 20), output.decode(errors="replace")
        text = output.decode(errors="replace")
        assert text.count("before tail started") == 1  # printed once, not per poll
        assert all(text.count(f"while following {n} ***") == 1 for n in range(3))
        assert "s3cr3t" not in text
    finally:
        process.terminate()
        process.wait(timeout=10)
        os.close(leader)
