"""CloudWatch's rules for an alarm definition and a state change, beyond what the model's
shapes say (pure: no database).

The model marks only AlarmName required, because an alarm can watch one metric, a metric
math expression or a PromQL query; which members go together is written in its prose.
PutMetricAlarm declares no validation error of its own, so every refusal here is the
service's generic ValidationException (wire code `ValidationError`), as CloudWatch answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from forgeline.cloudwatch.generated import errors, shapes

TREAT_MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
LOW_SAMPLE_COUNT_PERCENTILE = ("evaluate", "ignore")
ANOMALY_OPERATORS = frozenset(
    {
        "LessThanLowerOrGreaterThanUpperThreshold",
        "LessThanLowerThreshold",
        "GreaterThanUpperThreshold",
    }
)
# Members that describe one metric; none of them may accompany Metrics or EvaluationCriteria.
SINGLE_METRIC_MEMBERS = (
    "Namespace",
    "MetricName",
    "Dimensions",
    "Period",
    "Unit",
    "Statistic",
    "ExtendedStatistic",
)
# Evaluation members a PromQL alarm (EvaluationCriteria) defines inside its criteria instead.
THRESHOLD_MEMBERS = (
    "Metrics",
    "Threshold",
    "ComparisonOperator",
    "ThresholdMetricId",
    "EvaluationPeriods",
    "DatapointsToAlarm",
)


def invalid(message: str) -> errors.ValidationException:
    return errors.ValidationException(message)


def alarm_kind(params: shapes.PutMetricAlarmInput) -> str:
    """The alarm's kind: "metric" (MetricName), "math" (Metrics) or "promql" (EvaluationCriteria)."""
    given = [
        kind
        for kind, member in (
            ("metric", "MetricName"),
            ("math", "Metrics"),
            ("promql", "EvaluationCriteria"),
        )
        if member in params
    ]
    if not given:
        raise invalid(
            "An alarm needs something to watch: specify MetricName, a Metrics array or "
            "EvaluationCriteria."
        )
    if len(given) > 1:
        members = {"metric": "MetricName", "math": "Metrics", "promql": "EvaluationCriteria"}
        raise invalid(
            f"Specify only one of MetricName, Metrics and EvaluationCriteria; got "
            f"{' and '.join(members[kind] for kind in given)}."
        )
    return given[0]


def check_alarm_definition(params: shapes.PutMetricAlarmInput) -> str:
    """Refuse a PutMetricAlarm input CloudWatch would refuse; returns the alarm's kind."""
    kind = alarm_kind(params)
    if kind == "metric":
        _check_single_metric(params)
    elif kind == "math":
        _refuse_members(params, SINGLE_METRIC_MEMBERS, "Metrics")
        _check_metric_queries(params["Metrics"], params.get("ThresholdMetricId"))
    else:
        _refuse_members(params, SINGLE_METRIC_MEMBERS + THRESHOLD_MEMBERS, "EvaluationCriteria")
        if "EvaluationInterval" not in params:
            raise invalid("EvaluationInterval is required for alarms that use EvaluationCriteria.")
        _check_period(params["EvaluationInterval"], "EvaluationInterval")
    if kind != "promql":
        if "EvaluationInterval" in params:
            raise invalid("EvaluationInterval applies only to alarms that use EvaluationCriteria.")
        _check_threshold(params)
    _check_choice(params.get("TreatMissingData"), TREAT_MISSING_DATA, "TreatMissingData")
    _check_choice(
        params.get("EvaluateLowSampleCountPercentile"),
        LOW_SAMPLE_COUNT_PERCENTILE,
        "EvaluateLowSampleCountPercentile",
    )
    _check_actions(params.get("OKActions", []), "OKActions")
    _check_actions(params.get("AlarmActions", []), "AlarmActions")
    _check_actions(params.get("InsufficientDataActions", []), "InsufficientDataActions")
    return kind


def initial_state(kind: str) -> str:
    """A new alarm waits for data; a PromQL alarm starts OK (PutMetricAlarm's documentation)."""
    return "OK" if kind == "promql" else "INSUFFICIENT_DATA"


def _check_single_metric(params: shapes.PutMetricAlarmInput) -> None:
    if "Namespace" not in params:
        raise invalid("Namespace is required for an alarm on MetricName.")
    has_statistic = "Statistic" in params
    has_extended = "ExtendedStatistic" in params
    if has_statistic == has_extended:
        raise invalid(
            "An alarm on MetricName needs exactly one of Statistic and ExtendedStatistic."
        )
    if has_extended and not params["ExtendedStatistic"].strip():
        raise invalid("ExtendedStatistic must not be empty.")
    if "Period" not in params:
        raise invalid("Period is required for an alarm on MetricName.")
    _check_period(params["Period"], "Period")
    _check_dimensions(params.get("Dimensions", []), "Dimensions")


def _check_threshold(params: shapes.PutMetricAlarmInput) -> None:
    for member in ("EvaluationPeriods", "ComparisonOperator"):
        if member not in params:
            raise invalid(f"{member} is required for alarms on MetricName or Metrics.")
    anomaly_band = params.get("ThresholdMetricId")
    operator = params["ComparisonOperator"]
    if anomaly_band is None:
        if "Threshold" not in params:
            raise invalid("Threshold is required unless the alarm uses ThresholdMetricId.")
        if operator in ANOMALY_OPERATORS:
            raise invalid(
                f"ComparisonOperator {operator} is only for anomaly detection alarms "
                "(with ThresholdMetricId)."
            )
    else:
        if "Threshold" in params:
            raise invalid("Threshold cannot be combined with ThresholdMetricId.")
        if "Metrics" not in params:
            raise invalid("ThresholdMetricId requires a Metrics array.")
        if operator not in ANOMALY_OPERATORS:
            raise invalid(
                "An anomaly detection alarm (ThresholdMetricId) needs a ComparisonOperator of "
                f"{' | '.join(sorted(ANOMALY_OPERATORS))}; got {operator}."
            )
    datapoints = params.get("DatapointsToAlarm")
    if datapoints is not None and datapoints > params["EvaluationPeriods"]:
        raise invalid(
            f"DatapointsToAlarm ({datapoints}) must not exceed EvaluationPeriods "
            f"({params['EvaluationPeriods']})."
        )


def _check_metric_queries(
    queries: list[shapes.MetricDataQuery], threshold_metric_id: str | None
) -> None:
    if not queries:
        raise invalid("Metrics must contain at least one query.")
    ids = [query["Id"] for query in queries]
    duplicates = sorted({query_id for query_id in ids if ids.count(query_id) > 1})
    if duplicates:
        raise invalid(f"The Id of each query in Metrics must be unique: {', '.join(duplicates)}.")
    for index, query in enumerate(queries, start=1):
        where = f"Metrics[{index}] ({query['Id']})"
        if ("MetricStat" in query) == ("Expression" in query):
            raise invalid(f"{where} must have exactly one of MetricStat and Expression.")
        stat = query.get("MetricStat")
        if stat is not None:
            _check_period(stat["Period"], f"{where}.MetricStat.Period")
            metric = stat["Metric"]
            if "MetricName" not in metric or "Namespace" not in metric:
                raise invalid(f"{where}.MetricStat.Metric needs MetricName and Namespace.")
            _check_dimensions(metric.get("Dimensions", []), f"{where}.MetricStat.Metric")
        if "Period" in query:
            _check_period(query["Period"], f"{where}.Period")
    returning = [query["Id"] for query in queries if query.get("ReturnData", True)]
    if len(returning) != 1:
        raise invalid(
            "Exactly one element of the Metrics list must return data (ReturnData true); "
            f"{len(returning)} do."
        )
    if threshold_metric_id is not None and threshold_metric_id not in ids:
        raise invalid(
            f"ThresholdMetricId {threshold_metric_id!r} does not name a query of Metrics."
        )


def _check_period(seconds: int, member: str) -> None:
    if seconds not in (10, 20, 30) and seconds % 60 != 0:
        raise invalid(f"{member} must be 10, 20, 30 or a multiple of 60; got {seconds}.")


def _check_dimensions(dimensions: list[shapes.Dimension], where: str) -> None:
    names = [dimension["Name"] for dimension in dimensions]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise invalid(f"{where} names a dimension more than once: {', '.join(repeated)}.")


def _check_choice(value: str | None, allowed: tuple[str, ...], member: str) -> None:
    if value is not None and value not in allowed:
        raise invalid(f"{member} must be one of {' | '.join(allowed)}; got {value!r}.")


def _check_actions(actions: Iterable[str], member: str) -> None:
    for action in actions:
        if not action.startswith("arn:") or action.count(":") < 5:
            raise invalid(f"{member} holds {action!r}, which is not an ARN.")


def _refuse_members(params: shapes.PutMetricAlarmInput, members: Iterable[str], used: str) -> None:
    present = [member for member in members if member in params]
    if present:
        raise invalid(f"{used} cannot be combined with {', '.join(present)}.")


# -- state changes -------------------------------------------------------------------------


def parse_reason_data(text: str | None) -> Any:
    """StateReasonData must be JSON (CloudWatch answers InvalidFormat otherwise); an empty
    or absent value means none. Returns the parsed value (None for none)."""
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise errors.InvalidFormatFault(f"StateReasonData is not valid JSON: {reason}") from None


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are JavaScript, not JSON.
    raise ValueError(f"{name} is not a JSON value")


# -- DescribeAlarms filters ------------------------------------------------------------------


def check_describe_filters(params: shapes.DescribeAlarmsInput) -> None:
    """The combinations DescribeAlarms refuses."""
    if "AlarmNames" in params and "AlarmNamePrefix" in params:
        raise invalid("AlarmNames and AlarmNamePrefix cannot be used together.")
    for member in ("ChildrenOfAlarmName", "ParentsOfAlarmName"):
        if member in params:
            others = sorted(set(params) - {member, "MaxRecords", "NextToken"})
            if others:
                raise invalid(
                    f"{member} can be combined only with MaxRecords and NextToken; "
                    f"got {', '.join(others)}."
                )
