"""The "CloudWatch Alarm State Change" event, in the shape EventBridge delivers it (pure).

CloudWatch writes states with millisecond timestamps in `+0000` form, and describes the
alarm's metrics in camelCase (`metricStat.metric.name`), unlike the API's PascalCase.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

SOURCE = "aws.cloudwatch"
STATE_CHANGE = "CloudWatch Alarm State Change"


@dataclasses.dataclass(frozen=True)
class StateRecord:
    value: str
    reason: str
    reason_data: str | None
    timestamp: dt.datetime

    def to_event(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "reason": self.reason,
            "timestamp": event_timestamp(self.timestamp),
            "value": self.value,
        }
        if self.reason_data is not None:
            record["reasonData"] = self.reason_data
        return record


def event_timestamp(value: dt.datetime) -> str:
    """2019-10-01T13:56:40.987+0000: UTC, milliseconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    utc = value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def state_change_detail(
    name: str,
    arn: str,
    document: dict[str, Any],
    previous: StateRecord,
    current: StateRecord,
) -> dict[str, Any]:
    return {
        "alarmName": name,
        "state": current.to_event(),
        "previousState": previous.to_event(),
        "configuration": configuration(arn, document),
    }


def configuration(arn: str, document: dict[str, Any]) -> dict[str, Any]:
    """The alarm's description and the metrics it watches, as the event describes them."""
    described: dict[str, Any] = {}
    if document.get("AlarmDescription"):
        described["description"] = document["AlarmDescription"]
    if "MetricName" in document:
        described["metrics"] = [_single_metric(arn, document)]
    elif "Metrics" in document:
        described["metrics"] = [_query(query) for query in document["Metrics"]]
    return described


def _single_metric(arn: str, document: dict[str, Any]) -> dict[str, Any]:
    # CloudWatch names the one query of a single-metric alarm with a generated id; a
    # name-based UUID keeps it the same in every event of one alarm.
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, arn)),
        "metricStat": {
            "metric": _metric(document),
            "period": document["Period"],
            "stat": document.get("Statistic") or document.get("ExtendedStatistic"),
        },
        "returnData": True,
    }


def _metric(metric: dict[str, Any]) -> dict[str, Any]:
    return {
        "dimensions": {item["Name"]: item["Value"] for item in metric.get("Dimensions", [])},
        "name": metric["MetricName"],
        "namespace": metric["Namespace"],
    }


def _query(query: dict[str, Any]) -> dict[str, Any]:
    described: dict[str, Any] = {"id": query["Id"]}
    if "Expression" in query:
        described["expression"] = query["Expression"]
    if "Label" in query:
        described["label"] = query["Label"]
    stat = query.get("MetricStat")
    if stat is not None:
        described["metricStat"] = {
            "metric": _metric(stat["Metric"]),
            "period": stat["Period"],
            "stat": stat["Stat"],
        }
        if "Unit" in stat:
            described["metricStat"]["unit"] = stat["Unit"]
    if "Period" in query:
        described["period"] = query["Period"]
    described["returnData"] = query.get("ReturnData", True)
    return described
