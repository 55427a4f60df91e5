"""CloudWatch metric alarms over HTTP: boto3 and the AWS CLI against the suite's server, the
JSON 1.0 wire with query error codes, the state change event and the state hook."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from forgeline.core.events import EventReader
from tests.support.errors import error_of
from tests.support.signing import signed_post

TARGET = "GraniteServiceVersion20100801"


def unique(prefix: str = "alarm") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def single_metric(name: str, **change: Any) -> dict[str, Any]:
    params = {
        "AlarmName": name,
        "MetricName": "CPUUtilization",
        "Namespace": "AWS/EC2",
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2,
        "Threshold": 80.0,
        "ComparisonOperator": "GreaterThanThreshold",
        **change,
    }
    return {member: value for member, value in params.items() if value is not None}


def describe_one(cloudwatch: Any, name: str) -> dict[str, Any]:
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarm


def near_now(value: dt.datetime) -> bool:
    return abs((dt.datetime.now(dt.UTC) - value).total_seconds()) < 60


@pytest.fixture
def alarm(cloudwatch: Any) -> Iterator[str]:
    name = unique()
    cloudwatch.put_metric_alarm(**single_metric(name))
    yield name
    cloudwatch.delete_alarms(AlarmNames=[name])


@pytest.fixture(scope="module")
def account_id(cloudwatch: Any) -> str:
    name = unique("probe")
    cloudwatch.put_metric_alarm(**single_metric(name))
    arn = describe_one(cloudwatch, name)["AlarmArn"]
    cloudwatch.delete_alarms(AlarmNames=[name])
    return str(arn.split(":")[4])


# -- PutMetricAlarm and DescribeAlarms --------------------------------------------------------
def test_a_new_alarm_is_described_with_its_definition_and_no_data_yet(
    cloudwatch: Any, account_id: str
) -> None:
    name = unique()
    topic = f"arn:aws:sns:us-east-1:{account_id}:ops"
    cloudwatch.put_metric_alarm(
        **single_metric(
            name,
            AlarmDescription="CPU too high",
            AlarmActions=[topic],
            Dimensions=[{"Name": "InstanceId", "Value": "i-0123456789"}],
            TreatMissingData="breaching",
            Unit="Percent",
            Tags=[{"Key": "team", "Value": "ops"}],
        )
    )
    try:
        described = cloudwatch.describe_alarms(AlarmNames=[name])
        assert described["CompositeAlarms"] == []
        (alarm,) = described["MetricAlarms"]
        assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:{account_id}:alarm:{name}"
        assert alarm["StateValue"] == "INSUFFICIENT_DATA"
        assert alarm["StateReason"] == "Unchecked: Initial alarm creation"
        assert "StateReasonData" not in alarm
        for stamp in (
            "StateUpdatedTimestamp",
            "StateTransitionedTimestamp",
            "AlarmConfigurationUpdatedTimestamp",
        ):
            assert near_now(alarm[stamp]), stamp
        assert alarm["ActionsEnabled"] is True
        assert alarm["AlarmActions"] == [topic]
        assert alarm["OKActions"] == [] and alarm["InsufficientDataActions"] == []
        echoed = {
            "AlarmName": name,
            "AlarmDescription": "CPU too high",
            "MetricName": "CPUUtilization",
            "Namespace": "AWS/EC2",
            "Statistic": "Average",
            "Dimensions": [{"Name": "InstanceId", "Value": "i-0123456789"}],
            "Period": 60,
            "Unit": "Percent",
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 2,
            "Threshold": 80.0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "breaching",
        }
        assert {member: alarm[member] for member in echoed} == echoed
        assert "Tags" not in alarm
        tags = cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
        assert tags == [{"Key": "team", "Value": "ops"}]
    finally:
        cloudwatch.delete_alarms(AlarmNames=[name])


def test_a_metric_math_alarm_keeps_its_queries(cloudwatch: Any) -> None:
    name = unique()
    queries = [
        {
            "Id": "errors",
            "MetricStat": {
                "Metric": {"Namespace": "App", "MetricName": "Errors"},
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        },
        {
            "Id": "rate",
            "Expression": "errors / 60",
            "Label": "errors per second",
            "ReturnData": True,
        },
    ]
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Metrics=queries,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    try:
        alarm = describe_one(cloudwatch, name)
        assert alarm["Metrics"] == queries
        assert "MetricName" not in alarm and "Statistic" not in alarm
    finally:
        cloudwatch.delete_alarms(AlarmNames=[name])


def test_putting_an_alarm_again_replaces_its_definition_and_keeps_its_state(
    cloudwatch: Any, alarm: str
) -> None:
    before = describe_one(cloudwatch, alarm)
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="testing")
    cloudwatch.put_metric_alarm(
        **single_metric(
            alarm,
            Threshold=95.5,
            DatapointsToAlarm=None,
            Tags=[{"Key": "ignored", "Value": "on update"}],
        )
    )
    after = describe_one(cloudwatch, alarm)
    assert after["StateValue"] == "ALARM" and after["StateReason"] == "testing"
    assert after["Threshold"] == 95.5
    assert "DatapointsToAlarm" not in after, "an update replaces the whole definition"
    assert (
        after["AlarmConfigurationUpdatedTimestamp"] > before["AlarmConfigurationUpdatedTimestamp"]
    )
    assert cloudwatch.list_tags_for_resource(ResourceARN=after["AlarmArn"])["Tags"] == []


def test_definitions_cloudwatch_refuses_are_validation_errors(raw_cloudwatch: Any) -> None:
    name = unique()
    cases = [
        (single_metric(name, Period=45), "Period must be 10, 20, 30 or a multiple of 60"),
        (
            single_metric(name, ExtendedStatistic="p99"),
            "exactly one of Statistic and ExtendedStatistic",
        ),
        ({"AlarmName": name}, "specify MetricName, a Metrics array or EvaluationCriteria"),
        (single_metric(name, DatapointsToAlarm=4), "must not exceed EvaluationPeriods"),
        (single_metric(name, AlarmActions=["not-an-arn"]), "not an ARN"),
        (single_metric(name, EvaluationPeriods=0), "EvaluationPeriods"),
        (single_metric(name, Statistic="Median"), "Member must satisfy enum value set"),
        (
            single_metric(name, Tags=[{"Key": "aws:reserved", "Value": "x"}]),
            "reserved for system use",
        ),
    ]
    for params, says in cases:
        with pytest.raises(ClientError) as caught:
            raw_cloudwatch.put_metric_alarm(**params)
        code, message = error_of(caught)
        assert code == "ValidationError", (params, message)
        assert says in message, (params, message)
        assert isinstance(caught.value, raw_cloudwatch.exceptions.ValidationException)
    assert raw_cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


def test_describe_filters_by_prefix_state_action_and_type(cloudwatch: Any, account_id: str) -> None:
    prefix = unique("filters")
    topic = f"arn:aws:sns:us-east-1:{account_id}:{prefix}"
    names = [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    cloudwatch.put_metric_alarm(**single_metric(names[0], OKActions=[topic]))
    cloudwatch.put_metric_alarm(**single_metric(names[1], AlarmActions=[topic + "-urgent"]))
    cloudwatch.put_metric_alarm(**single_metric(names[2]))
    try:
        cloudwatch.set_alarm_state(AlarmName=names[1], StateValue="ALARM", StateReason="test")

        def described(**filters: Any) -> list[str]:
            found = cloudwatch.describe_alarms(**filters)
            return [alarm["AlarmName"] for alarm in found["MetricAlarms"]]

        assert described(AlarmNamePrefix=prefix) == names
        assert described(AlarmNamePrefix=prefix.upper()) == [], "prefixes are case-sensitive"
        assert described(AlarmNamePrefix=prefix, StateValue="ALARM") == [names[1]]
        assert described(AlarmNamePrefix=prefix, StateValue="OK") == []
        assert described(ActionPrefix=topic) == names[:2]
        assert described(AlarmNames=[names[2], "no-such-alarm"]) == [names[2]]
        assert described(AlarmNamePrefix=prefix, AlarmTypes=["CompositeAlarm"]) == []
        assert (
            described(AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm", "CompositeAlarm"]) == names
        )
        assert described(ChildrenOfAlarmName=names[0]) == []
        with pytest.raises(ClientError) as caught:
            cloudwatch.describe_alarms(AlarmNames=[names[0]], AlarmNamePrefix=prefix)
        assert error_of(caught) == (
            "ValidationError",
            "AlarmNames and AlarmNamePrefix cannot be used together.",
        )
    finally:
        cloudwatch.delete_alarms(AlarmNames=names)


def test_describe_pages_in_name_order_and_refuses_foreign_tokens(
    cloudwatch: Any, raw_cloudwatch: Any
) -> None:
    prefix = unique("pages")
    names = [f"{prefix}-{i}" for i in range(7)]
    for name in reversed(names):
        cloudwatch.put_metric_alarm(**single_metric(name))
    try:
        first = cloudwatch.describe_alarms(AlarmNamePrefix=prefix, MaxRecords=3)
        assert [a["AlarmName"] for a in first["MetricAlarms"]] == names[:3]
        seen = [
            alarm["AlarmName"]
            for page in cloudwatch.get_paginator("describe_alarms").paginate(
                AlarmNamePrefix=prefix, PaginationConfig={"PageSize": 3}
            )
            for alarm in page["MetricAlarms"]
        ]
        assert seen == names
        for token in (first["NextToken"] + "x", "garbage"):
            with pytest.raises(ClientError) as caught:
                cloudwatch.describe_alarms(AlarmNamePrefix=prefix, NextToken=token)
            assert error_of(caught)[0] == "InvalidNextToken"
        # A token belongs to its query: another prefix cannot continue it.
        with pytest.raises(ClientError) as caught:
            cloudwatch.describe_alarms(AlarmNamePrefix=prefix + "-1", NextToken=first["NextToken"])
        assert isinstance(caught.value, cloudwatch.exceptions.InvalidNextToken)
        with pytest.raises(ClientError) as caught:
            raw_cloudwatch.describe_alarms(MaxRecords=101)
        assert error_of(caught)[0] == "ValidationError"
    finally:
        cloudwatch.delete_alarms(AlarmNames=names)


# -- SetAlarmState -----------------------------------------------------------------------------
def test_set_alarm_state_records_the_state_and_publishes_one_event_per_change(
    forgeline: Any, cloudwatch: Any, alarm: str
) -> None:
    created = describe_one(cloudwatch, alarm)
    data = json.dumps({"source": "integration test", "value": 99.5})
    cloudwatch.set_alarm_state(
        AlarmName=alarm, StateValue="ALARM", StateReason="tripped", StateReasonData=data
    )
    tripped = describe_one(cloudwatch, alarm)
    assert (tripped["StateValue"], tripped["StateReason"]) == ("ALARM", "tripped")
    assert tripped["StateReasonData"] == data
    assert tripped["StateTransitionedTimestamp"] > created["StateTransitionedTimestamp"]
    assert (
        tripped["AlarmConfigurationUpdatedTimestamp"]
        == created["AlarmConfigurationUpdatedTimestamp"]
    )
    # The same state again only records the new reason: no transition, no event.
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="still tripped")
    again = describe_one(cloudwatch, alarm)
    assert again["StateReason"] == "still tripped" and "StateReasonData" not in again
    assert again["StateTransitionedTimestamp"] == tripped["StateTransitionedTimestamp"]
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="recovered")
    assert describe_one(cloudwatch, alarm)["StateValue"] == "OK"

    reader = EventReader(f"cloudwatch-test-{uuid.uuid4().hex}", forgeline.database_url)
    events = []
    while batch := reader.read(
        limit=1000, source="aws.cloudwatch", detail_type="CloudWatch Alarm State Change"
    ):
        events += [event for event in batch if event.detail["alarmName"] == alarm]
    assert [(e.detail["previousState"]["value"], e.detail["state"]["value"]) for e in events] == [
        ("INSUFFICIENT_DATA", "ALARM"),
        ("ALARM", "OK"),
    ]
    first, second = events
    assert first.resources == (created["AlarmArn"],)
    assert first.detail["state"]["reason"] == "tripped"
    assert first.detail["state"]["reasonData"] == data
    assert first.detail["previousState"]["reason"] == "Unchecked: Initial alarm creation"
    assert second.detail["previousState"]["reason"] == "still tripped"
    metric = first.detail["configuration"]["metrics"][0]["metricStat"]
    assert metric["metric"] == {"dimensions": {}, "name": "CPUUtilization", "namespace": "AWS/EC2"}
    assert (metric["period"], metric["stat"]) == (60, "Average")


def test_set_alarm_state_errors_carry_cloudwatch_codes(
    cloudwatch: Any, raw_cloudwatch: Any, alarm: str
) -> None:
    with pytest.raises(cloudwatch.exceptions.ResourceNotFound) as missing:
        cloudwatch.set_alarm_state(AlarmName=unique("missing"), StateValue="ALARM", StateReason="x")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "does not exist" in missing.value.response["Error"]["Message"]

    with pytest.raises(cloudwatch.exceptions.InvalidFormatFault) as bad_json:
        cloudwatch.set_alarm_state(
            AlarmName=alarm, StateValue="ALARM", StateReason="x", StateReasonData="{not json"
        )
    code, message = error_of(bad_json)
    assert code == "InvalidFormat" and message.startswith("StateReasonData is not valid JSON")

    with pytest.raises(ClientError) as bad_state:
        raw_cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="BROKEN", StateReason="x")
    code, message = error_of(bad_state)
    assert code == "ValidationError" and "Member must satisfy enum value set" in message
    with pytest.raises(ClientError) as no_reason:
        raw_cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK")
    assert error_of(no_reason)[0] == "ValidationError"
    assert describe_one(cloudwatch, alarm)["StateValue"] == "INSUFFICIENT_DATA"


def test_state_listeners_run_inside_the_transaction_that_records_the_change(
    cloudwatch: Any, alarm: str, account_id: str, server_settings: None
) -> None:
    from forgeline.cloudwatch import alarm_state, store
    from forgeline.cloudwatch.interface import alarm_states
    from forgeline.core.db import session_scope

    heard: list[tuple[str, str, str]] = []

    def listener(session: Any, row: Any, old: str, new: str) -> None:
        heard.append((row.name, old, new))
        if new == "OK":
            raise RuntimeError("a listener that fails")

    alarm_state.ALARM_STATE_LISTENERS.append(listener)
    try:
        with session_scope() as session:
            row = store.find_alarm(session, account_id, "us-east-1", alarm, for_update=True)
            assert row is not None
            assert alarm_state.change_state(session, row, "ALARM", "from a hook test", None)
            assert not alarm_state.change_state(session, row, "ALARM", "again", None)
        assert heard == [(alarm, "INSUFFICIENT_DATA", "ALARM")]
        # A listener's failure undoes the change it was told about.
        with pytest.raises(RuntimeError), session_scope() as session:
            row = store.find_alarm(session, account_id, "us-east-1", alarm, for_update=True)
            assert row is not None
            alarm_state.change_state(session, row, "OK", "recovering", None)
        assert heard[-1] == (alarm, "ALARM", "OK")
    finally:
        alarm_state.ALARM_STATE_LISTENERS.remove(listener)
    assert describe_one(cloudwatch, alarm)["StateValue"] == "ALARM"
    with session_scope(readonly=True) as session:
        states = alarm_states(session, account_id, "us-east-1", [alarm, "no-such-alarm"])
        assert states == {alarm: "ALARM"}
        stranger = "1" * 12 if account_id != "1" * 12 else "2" * 12
        assert alarm_states(session, stranger, "us-east-1", [alarm]) == {}


# -- DeleteAlarms ------------------------------------------------------------------------------
def test_delete_removes_the_named_alarms_and_skips_names_that_match_none(
    cloudwatch: Any, raw_cloudwatch: Any
) -> None:
    kept, gone = unique(), unique()
    for name in (kept, gone):
        cloudwatch.put_metric_alarm(**single_metric(name, Tags=[{"Key": "k", "Value": "v"}]))
    arn = describe_one(cloudwatch, gone)["AlarmArn"]
    cloudwatch.delete_alarms(AlarmNames=[gone, unique("never-existed")])
    try:
        assert (
            cloudwatch.describe_alarms(AlarmNames=[kept, gone])["MetricAlarms"][0]["AlarmName"]
            == kept
        )
        assert len(cloudwatch.describe_alarms(AlarmNames=[kept, gone])["MetricAlarms"]) == 1
        with pytest.raises(ClientError) as caught:
            cloudwatch.list_tags_for_resource(ResourceARN=arn)
        assert error_of(caught)[0] == "ResourceNotFoundException"
        # A new alarm of the deleted one's name starts afresh, without its tags.
        cloudwatch.put_metric_alarm(**single_metric(gone))
        assert cloudwatch.list_tags_for_resource(ResourceARN=arn)["Tags"] == []
        with pytest.raises(ClientError) as empty:
            raw_cloudwatch.delete_alarms(AlarmNames=[])
        assert error_of(empty) == ("ValidationError", "AlarmNames must name at least one alarm.")
        with pytest.raises(ClientError) as too_many:
            raw_cloudwatch.delete_alarms(AlarmNames=[f"a{i}" for i in range(101)])
        assert error_of(too_many)[0] == "ValidationError"
    finally:
        cloudwatch.delete_alarms(AlarmNames=[kept, gone])


# -- tags --------------------------------------------------------------------------------------
def test_alarm_tags_are_added_listed_and_removed(
    cloudwatch: Any, alarm: str, account_id: str
) -> None:
    arn = describe_one(cloudwatch, alarm)["AlarmArn"]
    cloudwatch.tag_resource(
        ResourceARN=arn, Tags=[{"Key": "team", "Value": "ops"}, {"Key": "tier", "Value": "1"}]
    )
    cloudwatch.tag_resource(ResourceARN=arn, Tags=[{"Key": "tier", "Value": "2"}])
    assert cloudwatch.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "team", "Value": "ops"},
        {"Key": "tier", "Value": "2"},
    ]
    cloudwatch.untag_resource(ResourceARN=arn, TagKeys=["team", "absent"])
    assert cloudwatch.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "tier", "Value": "2"}
    ]

    def code(**params: Any) -> str:
        with pytest.raises(ClientError) as caught:
            cloudwatch.tag_resource(**params)
        return error_of(caught)[0]

    assert code(ResourceARN="not-an-arn", Tags=[]) == "InvalidParameterValue"
    assert code(ResourceARN=arn, Tags=[{"Key": "aws:x", "Value": "1"}]) == "InvalidParameterValue"
    assert code(ResourceARN=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)]) == (
        "InvalidParameterValue"
    )
    missing = f"arn:aws:cloudwatch:us-east-1:{account_id}:alarm:{unique('missing')}"
    assert code(ResourceARN=missing, Tags=[]) == "ResourceNotFoundException"
    elsewhere = arn.replace(":us-east-1:", ":eu-west-1:")
    assert code(ResourceARN=elsewhere, Tags=[]) == "ResourceNotFoundException"
    # Forgeline's CloudWatch holds alarms only: a dashboard's ARN names nothing here.
    dashboard = f"arn:aws:cloudwatch::{account_id}:dashboard/ops"
    assert code(ResourceARN=dashboard, Tags=[]) == "ResourceNotFoundException"


# -- accounts, regions and what is not implemented ----------------------------------------------
def test_alarms_belong_to_one_account_and_region(
    forgeline: Any, cloudwatch: Any, alarm: str
) -> None:
    created = forgeline.cli("accounts", "create", "--name", unique("tenant"))
    assert created.returncode == 0, created.stderr
    other = json.loads(created.stdout)
    theirs = forgeline.client(
        "cloudwatch", credentials=(other["accessKeyId"], other["secretAccessKey"])
    )
    assert theirs.describe_alarms(AlarmNames=[alarm])["MetricAlarms"] == []
    with pytest.raises(theirs.exceptions.ResourceNotFound):
        theirs.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="not mine")
    theirs.delete_alarms(AlarmNames=[alarm])
    west = forgeline.client("cloudwatch", region="eu-west-1")
    assert west.describe_alarms(AlarmNames=[alarm])["MetricAlarms"] == []
    assert describe_one(cloudwatch, alarm)["StateValue"] == "INSUFFICIENT_DATA"


def test_other_cloudwatch_operations_answer_501_naming_themselves(cloudwatch: Any) -> None:
    with pytest.raises(ClientError) as caught:
        cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "q", "Expression": "1"}],
            StartTime=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
            EndTime=dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
        )
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert error_of(caught) == (
        "NotImplementedException",
        "CloudWatch operation GetMetricData is not implemented in Forgeline yet.",
    )


# -- the wire ---------------------------------------------------------------------------------
def test_the_wire_is_json_1_0_with_query_error_codes(forgeline: Any, alarm: str) -> None:
    def post(operation: str, body: dict[str, Any]) -> Any:
        return signed_post(
            forgeline.url,
            json.dumps(body).encode(),
            target=f"{TARGET}.{operation}",
            signing_name="monitoring",
            credentials=forgeline.admin_credentials(),
            content_type="application/x-amz-json-1.0",
        )

    described = post("DescribeAlarms", {"AlarmNames": [alarm]})
    assert described.status_code == 200
    assert described.headers["content-type"] == "application/x-amz-json-1.0"
    assert described.json()["MetricAlarms"][0]["AlarmName"] == alarm
    bad = post(
        "SetAlarmState",
        {"AlarmName": alarm, "StateValue": "OK", "StateReason": "x", "StateReasonData": "{"},
    )
    assert bad.status_code == 400
    assert bad.json()["__type"] == "InvalidFormatFault"
    assert bad.headers["x-amzn-query-error"] == "InvalidFormat;Sender"
    assert bad.headers["content-type"] == "application/x-amz-json-1.0"
    # Errors outside the model keep their own code, with no query code.
    junk = post("DescribeAlarms", {"MaxRecords": "ten"})
    assert junk.status_code == 400 and junk.json()["__type"] == "SerializationException"
    assert "x-amzn-query-error" not in junk.headers


def test_the_gateway_passes_the_query_error_code_on(forgeline: Any, alarm: str) -> None:
    from tests.integration.codecommit.test_git_gateway import gateway_for

    with gateway_for(forgeline) as gateway:
        key, secret = forgeline.admin_credentials()
        client = boto3.client(
            "cloudwatch",
            endpoint_url=gateway,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )
        assert client.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["AlarmName"] == alarm
        with pytest.raises(client.exceptions.InvalidFormatFault) as caught:
            client.set_alarm_state(
                AlarmName=alarm, StateValue="OK", StateReason="x", StateReasonData="{"
            )
        assert error_of(caught)[0] == "InvalidFormat"


# -- the AWS CLI ------------------------------------------------------------------------------
@pytest.fixture
def aws(forgeline: Any) -> Any:
    env = dict(
        os.environ,
        AWS_SHARED_CREDENTIALS_FILE=str(forgeline.credentials_file),
        AWS_CONFIG_FILE="/dev/null",
        AWS_DEFAULT_REGION="us-east-1",
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(name, None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["aws", "--profile", "forgeline", "--endpoint-url", forgeline.url, "--output", "json"]
            + ["cloudwatch", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def test_the_aws_cli_trips_an_alarm(aws: Any) -> None:
    name = unique("cli")
    made = aws(
        "put-metric-alarm",
        "--alarm-name",
        name,
        "--metric-name",
        "Errors",
        "--namespace",
        "App",
        "--statistic",
        "Sum",
        "--period",
        "60",
        "--evaluation-periods",
        "1",
        "--threshold",
        "1",
        "--comparison-operator",
        "GreaterThanOrEqualToThreshold",
    )
    assert made.returncode == 0, made.stderr
    try:
        tripped = aws(
            "set-alarm-state",
            "--alarm-name",
            name,
            "--state-value",
            "ALARM",
            "--state-reason",
            "tripped from the CLI",
            "--state-reason-data",
            '{"by": "cli"}',
        )
        assert tripped.returncode == 0, tripped.stderr
        listed = aws("describe-alarms", "--state-value", "ALARM", "--alarm-name-prefix", name)
        assert listed.returncode == 0, listed.stderr
        (alarm,) = json.loads(listed.stdout)["MetricAlarms"]
        assert (alarm["AlarmName"], alarm["StateReason"]) == (name, "tripped from the CLI")
        assert json.loads(alarm["StateReasonData"]) == {"by": "cli"}
        missing = aws(
            "set-alarm-state",
            "--alarm-name",
            name + "-missing",
            "--state-value",
            "OK",
            "--state-reason",
            "x",
        )
        assert missing.returncode != 0
        assert "(ResourceNotFound)" in missing.stderr and "SetAlarmState" in missing.stderr
    finally:
        deleted = aws("delete-alarms", "--alarm-names", name)
        assert deleted.returncode == 0, deleted.stderr
    assert json.loads(aws("describe-alarms", "--alarm-names", name).stdout)["MetricAlarms"] == []
