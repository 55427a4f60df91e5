"""CloudWatch's alarm rules beyond the model's shapes, the alarm state change event, and
the wire differences of its JSON 1.0, query-compatible protocol."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from forgeline.cloudwatch import alarm_events, alarm_rules
from forgeline.cloudwatch.generated import errors
from forgeline.core.protocol import wire
from forgeline.core.protocol.catalog import service_model

SINGLE: dict[str, Any] = {
    "AlarmName": "cpu-high",
    "MetricName": "CPUUtilization",
    "Namespace": "AWS/EC2",
    "Statistic": "Average",
    "Period": 300,
    "EvaluationPeriods": 2,
    "Threshold": 80.0,
    "ComparisonOperator": "GreaterThanThreshold",
}
MATH: dict[str, Any] = {
    "AlarmName": "error-rate",
    "EvaluationPeriods": 1,
    "Threshold": 5.0,
    "ComparisonOperator": "GreaterThanThreshold",
    "Metrics": [
        {
            "Id": "errors",
            "MetricStat": {
                "Metric": {
                    "Namespace": "App",
                    "MetricName": "Errors",
                    "Dimensions": [{"Name": "Stage", "Value": "prod"}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        },
        {"Id": "rate", "Expression": "errors / 60", "Label": "per second"},
    ],
}
PROMQL: dict[str, Any] = {
    "AlarmName": "latency",
    "EvaluationCriteria": {"PromQLCriteria": {"Query": "up == 0"}},
    "EvaluationInterval": 60,
}


def refusal(params: dict[str, Any]) -> str:
    with pytest.raises(errors.ValidationException) as caught:
        alarm_rules.check_alarm_definition(params)  # type: ignore[arg-type]
    return caught.value.message


# -- definitions -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "kind", "state"),
    [
        (SINGLE, "metric", "INSUFFICIENT_DATA"),
        (MATH, "math", "INSUFFICIENT_DATA"),
        (PROMQL, "promql", "OK"),
    ],
)
def test_each_kind_of_alarm_is_accepted_and_starts_in_its_state(params, kind, state) -> None:
    assert alarm_rules.check_alarm_definition(params) == kind
    assert alarm_rules.initial_state(kind) == state


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"MetricName": None}, "MetricName, a Metrics array or EvaluationCriteria"),
        ({"Metrics": MATH["Metrics"]}, "only one of MetricName, Metrics and EvaluationCriteria"),
        ({"ExtendedStatistic": "p99"}, "exactly one of Statistic and ExtendedStatistic"),
        ({"Statistic": None}, "exactly one of Statistic and ExtendedStatistic"),
        ({"Namespace": None}, "Namespace is required"),
        ({"Period": None}, "Period is required"),
        ({"Period": 45}, "Period must be 10, 20, 30 or a multiple of 60; got 45"),
        ({"EvaluationPeriods": None}, "EvaluationPeriods is required"),
        ({"ComparisonOperator": None}, "ComparisonOperator is required"),
        ({"Threshold": None}, "Threshold is required unless the alarm uses ThresholdMetricId"),
        ({"DatapointsToAlarm": 3}, "DatapointsToAlarm (3) must not exceed EvaluationPeriods (2)"),
        ({"ComparisonOperator": "LessThanLowerThreshold"}, "only for anomaly detection alarms"),
        ({"TreatMissingData": "zero"}, "TreatMissingData must be one of breaching"),
        ({"EvaluateLowSampleCountPercentile": "skip"}, "EvaluateLowSampleCountPercentile"),
        ({"AlarmActions": ["my-topic"]}, "AlarmActions holds 'my-topic', which is not an ARN"),
        ({"EvaluationInterval": 60}, "EvaluationInterval applies only to alarms that use"),
        (
            {"Dimensions": [{"Name": "a", "Value": "1"}, {"Name": "a", "Value": "2"}]},
            "names a dimension more than once: a",
        ),
    ],
)
def test_single_metric_alarms_are_checked(change: dict[str, Any], says: str) -> None:
    params = {**SINGLE, **change}
    params = {member: value for member, value in params.items() if value is not None}
    assert says in refusal(params)


def test_valid_single_metric_variants_pass() -> None:
    for change in (
        {"Period": 10},
        {"Period": 3600, "DatapointsToAlarm": 2},
        {
            "Statistic": None,
            "ExtendedStatistic": "p99",
            "EvaluateLowSampleCountPercentile": "ignore",
        },
        {
            "AlarmActions": ["arn:aws:sns:us-east-1:111111111111:ops"],
            "TreatMissingData": "breaching",
        },
    ):
        params = {k: v for k, v in {**SINGLE, **change}.items() if v is not None}
        assert alarm_rules.check_alarm_definition(params) == "metric"  # type: ignore[arg-type]


def _math(**change: Any) -> dict[str, Any]:
    return {**MATH, **change}


@pytest.mark.parametrize(
    ("params", "says"),
    [
        (_math(Namespace="App"), "Metrics cannot be combined with Namespace"),
        (_math(Metrics=[]), "at least one query"),
        (
            _math(Metrics=[{"Id": "a", "Expression": "1"}, {"Id": "a", "Expression": "2"}]),
            "must be unique: a",
        ),
        (_math(Metrics=[{"Id": "a"}]), "exactly one of MetricStat and Expression"),
        (
            _math(Metrics=[{"Id": "a", "Expression": "1"}, {"Id": "b", "Expression": "2"}]),
            "Exactly one element of the Metrics list must return data",
        ),
        (
            _math(
                Metrics=[
                    {
                        "Id": "m",
                        "MetricStat": {"Metric": {"Namespace": "App"}, "Period": 60, "Stat": "Sum"},
                    }
                ]
            ),
            "needs MetricName and Namespace",
        ),
        (
            _math(
                Threshold=None,
                ThresholdMetricId="band",
                ComparisonOperator="LessThanLowerThreshold",
            ),
            "ThresholdMetricId 'band' does not name a query of Metrics",
        ),
    ],
)
def test_metric_math_alarms_are_checked(params: dict[str, Any], says: str) -> None:
    params = {member: value for member, value in params.items() if value is not None}
    assert says in refusal(params)


def test_an_anomaly_detection_alarm_names_its_band_and_needs_a_band_operator() -> None:
    band = _math(
        Threshold=None,
        ThresholdMetricId="rate",
        ComparisonOperator="LessThanLowerOrGreaterThanUpperThreshold",
    )
    band = {member: value for member, value in band.items() if value is not None}
    assert alarm_rules.check_alarm_definition(band) == "math"  # type: ignore[arg-type]
    assert "needs a ComparisonOperator of" in refusal(
        {**band, "ComparisonOperator": "GreaterThanThreshold"}
    )
    assert "cannot be combined with ThresholdMetricId" in refusal({**band, "Threshold": 1.0})


def test_promql_alarms_define_their_evaluation_inside_the_criteria() -> None:
    assert "EvaluationInterval is required" in refusal(
        {k: v for k, v in PROMQL.items() if k != "EvaluationInterval"}
    )
    assert "cannot be combined with Threshold, EvaluationPeriods" in refusal(
        {**PROMQL, "Threshold": 1.0, "EvaluationPeriods": 1}
    )
    assert "EvaluationInterval must be 10, 20, 30" in refusal({**PROMQL, "EvaluationInterval": 90})


# -- state reason data -----------------------------------------------------------------------
def test_reason_data_must_be_json() -> None:
    assert alarm_rules.parse_reason_data('{"source": "test", "value": 3}') == {
        "source": "test",
        "value": 3,
    }
    assert alarm_rules.parse_reason_data(None) is None
    assert alarm_rules.parse_reason_data("  ") is None
    for bad in ("{not json", '{"a": NaN}', "Infinity", "[" * 100_000):
        with pytest.raises(errors.InvalidFormatFault) as caught:
            alarm_rules.parse_reason_data(bad)
        assert caught.value.message.startswith("StateReasonData is not valid JSON")


# -- DescribeAlarms filters ------------------------------------------------------------------
def test_describe_filters_that_do_not_combine() -> None:
    alarm_rules.check_describe_filters({"AlarmNames": ["a"], "StateValue": "ALARM"})
    alarm_rules.check_describe_filters({"ChildrenOfAlarmName": "c", "MaxRecords": 5})
    with pytest.raises(errors.ValidationException, match="AlarmNames and AlarmNamePrefix"):
        alarm_rules.check_describe_filters({"AlarmNames": ["a"], "AlarmNamePrefix": "a"})
    with pytest.raises(
        errors.ValidationException, match="only with MaxRecords and NextToken; got StateValue"
    ):
        alarm_rules.check_describe_filters({"ParentsOfAlarmName": "p", "StateValue": "OK"})


# -- the state change event ------------------------------------------------------------------
ARN = "arn:aws:cloudwatch:us-east-1:111111111111:alarm:cpu-high"
BEFORE = alarm_events.StateRecord(
    "INSUFFICIENT_DATA",
    "Unchecked: Initial alarm creation",
    None,
    dt.datetime(2024, 5, 1, 12, 0, 0, 5000, tzinfo=dt.UTC),
)
AFTER = alarm_events.StateRecord(
    "ALARM",
    "tripped by a test",
    '{"by":"test"}',
    dt.datetime(2024, 5, 1, 12, 0, 1, 987654, tzinfo=dt.UTC),
)


def test_states_carry_millisecond_timestamps_and_reason_data_only_when_given() -> None:
    assert alarm_events.event_timestamp(AFTER.timestamp) == "2024-05-01T12:00:01.987+0000"
    assert alarm_events.event_timestamp(
        dt.datetime(2024, 5, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    ) == ("2024-05-01T12:00:00.000+0000")
    assert BEFORE.to_event() == {
        "reason": "Unchecked: Initial alarm creation",
        "timestamp": "2024-05-01T12:00:00.005+0000",
        "value": "INSUFFICIENT_DATA",
    }
    assert AFTER.to_event()["reasonData"] == '{"by":"test"}'


def test_a_single_metric_alarm_is_described_as_one_metric_query() -> None:
    document = {k: v for k, v in SINGLE.items() if k != "AlarmName"}
    document["Dimensions"] = [{"Name": "InstanceId", "Value": "i-1"}]
    document["AlarmDescription"] = "CPU too high"
    detail = alarm_events.state_change_detail("cpu-high", ARN, document, BEFORE, AFTER)
    assert detail["alarmName"] == "cpu-high"
    assert detail["previousState"]["value"] == "INSUFFICIENT_DATA"
    assert detail["state"]["value"] == "ALARM"
    configuration = detail["configuration"]
    assert configuration["description"] == "CPU too high"
    (metric,) = configuration["metrics"]
    assert metric["metricStat"] == {
        "metric": {
            "dimensions": {"InstanceId": "i-1"},
            "name": "CPUUtilization",
            "namespace": "AWS/EC2",
        },
        "period": 300,
        "stat": "Average",
    }
    assert metric["returnData"] is True
    # The same alarm gets the same query id in every event.
    again = alarm_events.state_change_detail("cpu-high", ARN, document, AFTER, BEFORE)
    assert again["configuration"]["metrics"][0]["id"] == metric["id"]
    json.dumps(detail)  # what the event stream stores


def test_a_metric_math_alarm_is_described_query_by_query_in_camel_case() -> None:
    document = {k: v for k, v in MATH.items() if k != "AlarmName"}
    metrics = alarm_events.configuration(ARN, document)["metrics"]
    assert metrics == [
        {
            "id": "errors",
            "metricStat": {
                "metric": {"dimensions": {"Stage": "prod"}, "name": "Errors", "namespace": "App"},
                "period": 60,
                "stat": "Sum",
            },
            "returnData": False,
        },
        {"id": "rate", "expression": "errors / 60", "label": "per second", "returnData": True},
    ]


# -- the wire --------------------------------------------------------------------------------
def test_each_api_answers_in_its_own_json_version() -> None:
    assert wire.content_type(service_model("cloudwatch")) == "application/x-amz-json-1.0"
    assert wire.content_type(service_model("codecommit")) == "application/x-amz-json-1.1"
    assert wire.content_type(None) == "application/x-amz-json-1.1"


def test_query_compatible_errors_carry_their_query_code() -> None:
    cloudwatch = service_model("cloudwatch")
    assert wire.error_headers(cloudwatch, "InvalidFormatFault", 400) == {
        "x-amzn-query-error": "InvalidFormat;Sender"
    }
    assert wire.error_headers(cloudwatch, "ResourceNotFound", 404) == {
        "x-amzn-query-error": "ResourceNotFound;Sender"
    }
    assert wire.error_headers(cloudwatch, "ValidationException", 400) == {
        "x-amzn-query-error": "ValidationError;Sender"
    }
    assert wire.error_headers(cloudwatch, "InternalServiceFault", 500) == {
        "x-amzn-query-error": "InternalServiceError;Receiver"
    }
    # Errors outside the model (the protocol's own) and APIs that never spoke query: none.
    assert wire.error_headers(cloudwatch, "SerializationException", 400) == {}
    assert (
        wire.error_headers(service_model("codecommit"), "RepositoryDoesNotExistException", 400)
        == {}
    )
    assert wire.error_headers(None, "ResourceNotFound", 404) == {}
