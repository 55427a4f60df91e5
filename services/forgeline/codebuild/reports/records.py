"""Reports: ARNs, lookup, deletion and the API views of a report and its contents.

A report expires 30 days after it is created and is then no longer shown (AWS: "An
expired report is not available to view in CodeBuild").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from forgeline.codebuild.generated import shapes
from forgeline.codebuild.reports.groups import export_config_output
from forgeline.codebuild.reports.model import TEST_STATUSES
from forgeline.codebuild.tables.reports import Report, ReportCodeCoverage, ReportTestCase

REPORT_LIFETIME = dt.timedelta(days=30)


def report_arn(account_id: str, region: str, group_name: str, report_id: str) -> str:
    return f"arn:aws:codebuild:{region}:{account_id}:report/{group_name}:{report_id}"


def is_report_arn(arn: str) -> bool:
    parts = arn.split(":", 5)
    return (
        len(parts) == 6
        and parts[:3] == ["arn", "aws", "codebuild"]
        and parts[5].startswith("report/")
        and ":" in parts[5]
    )


def find(
    session: Session, account_id: str, region: str, arn: str, now: dt.datetime
) -> Report | None:
    """The unexpired report with this ARN in this account and region."""
    return session.scalars(
        select(Report).where(
            Report.arn == arn,
            Report.account_id == account_id,
            Report.region == region,
            Report.expires_at > now,
        )
    ).first()


def delete_reports(session: Session, report_ids: Iterable[str]) -> None:
    """Delete reports with their test cases and coverage rows."""
    ids = list(report_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        session.execute(delete(ReportTestCase).where(ReportTestCase.report_id.in_(chunk)))
        session.execute(delete(ReportCodeCoverage).where(ReportCodeCoverage.report_id.in_(chunk)))
        session.execute(delete(Report).where(Report.id.in_(chunk)))


def output(report: Report) -> shapes.Report:
    """The botocore `Report` shape."""
    result: shapes.Report = {
        "arn": report.arn,
        "type": report.type,
        "name": report.name,
        "reportGroupArn": report.report_group_arn,
        "status": report.status,
        "created": report.created_at,
        "expired": report.expires_at,
        "exportConfig": export_config_output(report.export_config),
        "truncated": report.truncated,
    }
    if report.execution_id:
        result["executionId"] = report.execution_id
    if report.type == "TEST" and report.test_total is not None:
        counts = dict.fromkeys(TEST_STATUSES, 0)
        counts.update(report.test_status_counts or {})
        result["testSummary"] = {
            "total": report.test_total,
            "statusCounts": counts,
            "durationInNanoSeconds": report.test_duration_ns or 0,
        }
    if report.type == "CODE_COVERAGE" and report.lines_covered is not None:
        result["codeCoverageSummary"] = {
            "lineCoveragePercentage": report.line_coverage_percentage or 0.0,
            "linesCovered": report.lines_covered,
            "linesMissed": report.lines_missed or 0,
            "branchCoveragePercentage": report.branch_coverage_percentage or 0.0,
            "branchesCovered": report.branches_covered or 0,
            "branchesMissed": report.branches_missed or 0,
        }
    return result


def test_case_output(report: Report, case: ReportTestCase) -> shapes.TestCase:
    """The botocore `TestCase` shape."""
    result: shapes.TestCase = {
        "reportArn": report.arn,
        "testRawDataPath": case.test_raw_data_path,
        "name": case.name,
        "status": case.status,
        "durationInNanoSeconds": case.duration_ns,
        "expired": report.expires_at,
    }
    if case.prefix is not None:
        result["prefix"] = case.prefix
    if case.message is not None:
        result["message"] = case.message
    if case.suite_name is not None:
        result["testSuiteName"] = case.suite_name
    return result


def coverage_output(report: Report, coverage: ReportCodeCoverage) -> shapes.CodeCoverage:
    """The botocore `CodeCoverage` shape."""
    return {
        "id": coverage.id,
        "reportARN": report.arn,
        "filePath": coverage.file_path,
        "lineCoveragePercentage": coverage.line_coverage_percentage,
        "linesCovered": coverage.lines_covered,
        "linesMissed": coverage.lines_missed,
        "branchCoveragePercentage": coverage.branch_coverage_percentage,
        "branchesCovered": coverage.branches_covered,
        "branchesMissed": coverage.branches_missed,
        "expired": report.expires_at,
    }
