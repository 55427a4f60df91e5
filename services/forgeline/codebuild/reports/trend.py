"""GetReportGroupTrend's arithmetic: one value per report, then average, max and min.

The API carries every figure as a string; whole numbers are written without a decimal
point, others with at most two decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forgeline.codebuild.generated import shapes
from forgeline.codebuild.tables.reports import Report

TEST_FIELDS = ("PASS_RATE", "DURATION", "TOTAL")
COVERAGE_FIELDS = (
    "LINE_COVERAGE",
    "LINES_COVERED",
    "LINES_MISSED",
    "BRANCH_COVERAGE",
    "BRANCHES_COVERED",
    "BRANCHES_MISSED",
)


def field_applies(trend_field: str, report_type: str) -> bool:
    return trend_field in (TEST_FIELDS if report_type == "TEST" else COVERAGE_FIELDS)


def value_of(report: Report, trend_field: str) -> float | None:
    """The report's figure for `trend_field`; None when the report has no such data."""
    if trend_field in TEST_FIELDS:
        if report.test_total is None:
            return None
        if trend_field == "TOTAL":
            return report.test_total
        if trend_field == "DURATION":
            return report.test_duration_ns or 0
        passed = (report.test_status_counts or {}).get("SUCCEEDED", 0)
        return passed * 100 / report.test_total if report.test_total else 0.0
    if report.lines_covered is None:
        return None
    values: dict[str, Any] = {
        "LINE_COVERAGE": report.line_coverage_percentage,
        "LINES_COVERED": report.lines_covered,
        "LINES_MISSED": report.lines_missed,
        "BRANCH_COVERAGE": report.branch_coverage_percentage,
        "BRANCHES_COVERED": report.branches_covered,
        "BRANCHES_MISSED": report.branches_missed,
    }
    value = values.get(trend_field)
    return None if value is None else float(value)


def format_number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def trend(reports: Sequence[Report], trend_field: str) -> shapes.GetReportGroupTrendOutput:
    """The GetReportGroupTrend output for `reports` (newest first)."""
    raw: list[shapes.ReportWithRawData] = []
    values: list[float] = []
    for report in reports:
        value = value_of(report, trend_field)
        if value is None:
            continue
        values.append(value)
        raw.append({"reportArn": report.arn, "data": format_number(value)})
    if not values:
        return {"stats": {}, "rawData": []}
    return {
        "stats": {
            "average": format_number(sum(values) / len(values)),
            "max": format_number(max(values)),
            "min": format_number(min(values)),
        },
        "rawData": raw,
    }
