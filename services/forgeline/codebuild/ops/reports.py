"""CodeBuild report groups and reports: create/update/delete groups, list and read
reports, their test cases and code coverage, and trends across a group's reports."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.reports import groups, records, trend
from forgeline.codebuild.reports.model import TEST_STATUSES
from forgeline.codebuild.tables.reports import (
    Report,
    ReportCodeCoverage,
    ReportGroup,
    ReportTestCase,
)
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 100
DEFAULT_TREND_REPORTS = 100
# Reports whose figures a trend can use: GENERATING ones are not done, INCOMPLETE ones
# hold partial data at best.
_TREND_STATUSES = ("SUCCEEDED", "FAILED")


def _page(
    ctx: RequestContext,
    next_token: str | None,
    max_results: int | None,
    items: Sequence[T],
    key: Callable[[T], Any],
    descending: bool,
    **scope: Any,
) -> tuple[list[T], str | None]:
    """One page of `items` (already in final order) for a paginated list operation, from
    its `nextToken` and `maxResults`."""
    return request_page_tokens(ctx).page(
        items, key, scope, next_token, max_results or DEFAULT_PAGE_SIZE, descending
    )


def _ordered(items: Sequence[T], key: Callable[[T], Any], descending: bool) -> list[T]:
    return sorted(items, key=key, reverse=descending)


class ReportOperations:
    # -- report groups --------------------------------------------------------------
    def create_report_group(
        self, ctx: RequestContext, params: shapes.CreateReportGroupInput
    ) -> shapes.CreateReportGroupOutput:
        name = params["name"]
        groups.check_name(name)
        export_config = groups.normalize_export_config(params["exportConfig"])
        tags = groups.tags_from_list(params.get("tags") or [])
        tagging.validate_tags(tags, groups.TAG_ERRORS)
        arn = groups.group_arn(ctx.account_id, ctx.region, name)
        already = errors.ResourceAlreadyExistsException(f"Report group {arn} already exists")
        try:
            with session_scope() as session:
                if groups.find_by_name(session, ctx.account_id, ctx.region, name) is not None:
                    raise already
                group = groups.new_group(
                    ctx.account_id, ctx.region, name, params["type"], export_config
                )
                session.add(group)
                session.flush()
                if tags:
                    tagging.put_tags(session, ctx.account_id, group.arn, tags, groups.TAG_ERRORS)
                return {"reportGroup": groups.output(session, group, empty_tags="tags" in params)}
        except IntegrityError:
            # Created by a concurrent request between our check and our insert.
            raise already from None

    def update_report_group(
        self, ctx: RequestContext, params: shapes.UpdateReportGroupInput
    ) -> shapes.UpdateReportGroupOutput:
        export_config = params.get("exportConfig")
        normalized = (
            None if export_config is None else groups.normalize_export_config(export_config)
        )
        tags = None if params.get("tags") is None else groups.tags_from_list(params["tags"])
        if tags is not None:
            tagging.validate_tags(tags, groups.TAG_ERRORS)
        with session_scope() as session:
            group = groups.get(session, ctx.account_id, ctx.region, params["arn"])
            if normalized is not None:
                group.export_config = normalized
            if tags is not None:
                # The given list replaces the group's tags.
                tagging.delete_all_tags(session, group.arn)
                tagging.put_tags(session, ctx.account_id, group.arn, tags, groups.TAG_ERRORS)
            group.updated_at = utcnow()
            session.flush()
            return {"reportGroup": groups.output(session, group)}

    def delete_report_group(
        self, ctx: RequestContext, params: shapes.DeleteReportGroupInput
    ) -> shapes.DeleteReportGroupOutput:
        arn = params["arn"]
        groups.check_arn(arn)
        with session_scope() as session:
            group = groups.find(session, ctx.account_id, ctx.region, arn)
            if group is None:
                return {}
            report_ids = session.scalars(
                select(Report.id).where(Report.report_group_id == group.id)
            ).all()
            if report_ids and not params.get("deleteReports"):
                raise errors.InvalidInputException(
                    f"Report group {arn} has {len(report_ids)} report(s): delete them first "
                    "(DeleteReport) or set deleteReports to true"
                )
            records.delete_reports(session, report_ids)
            tagging.delete_all_tags(session, group.arn)
            session.delete(group)
        return {}

    def batch_get_report_groups(
        self, ctx: RequestContext, params: shapes.BatchGetReportGroupsInput
    ) -> shapes.BatchGetReportGroupsOutput:
        found: list[shapes.ReportGroup] = []
        missing: list[str] = []
        with session_scope(readonly=True) as session:
            for arn in dict.fromkeys(params["reportGroupArns"]):
                group = groups.find(session, ctx.account_id, ctx.region, arn)
                if group is None:
                    missing.append(arn)
                else:
                    found.append(groups.output(session, group))
        result: shapes.BatchGetReportGroupsOutput = {"reportGroupsNotFound": missing}
        if found:  # the model's ReportGroups list has min 1
            result["reportGroups"] = found
        return result

    def list_report_groups(
        self, ctx: RequestContext, params: shapes.ListReportGroupsInput
    ) -> shapes.ListReportGroupsOutput:
        sort_by = params.get("sortBy") or "NAME"
        descending = params.get("sortOrder") == "DESCENDING"
        with session_scope(readonly=True) as session:
            rows = session.scalars(
                select(ReportGroup).where(
                    ReportGroup.account_id == ctx.account_id, ReportGroup.region == ctx.region
                )
            ).all()

        def key(group: ReportGroup) -> tuple[Any, ...]:
            if sort_by == "CREATED_TIME":
                return (group.created_at.timestamp(), group.name)
            if sort_by == "LAST_MODIFIED_TIME":
                return (group.updated_at.timestamp(), group.name)
            return (group.name,)

        page, token = _page(
            ctx,
            params.get("nextToken"),
            params.get("maxResults"),
            _ordered(rows, key, descending),
            key,
            descending,
            sortBy=sort_by,
            order="DESCENDING" if descending else "ASCENDING",
        )
        output: shapes.ListReportGroupsOutput = {"reportGroups": [group.arn for group in page]}
        if token:
            output["nextToken"] = token
        return output

    def list_shared_report_groups(
        self, ctx: RequestContext, params: shapes.ListSharedReportGroupsInput
    ) -> shapes.ListSharedReportGroupsOutput:
        # Forgeline has no cross-account sharing (AWS RAM), so nothing is shared with anyone.
        return {"reportGroups": []}

    # -- reports ----------------------------------------------------------------------
    def batch_get_reports(
        self, ctx: RequestContext, params: shapes.BatchGetReportsInput
    ) -> shapes.BatchGetReportsOutput:
        found: list[shapes.Report] = []
        missing: list[str] = []
        now = utcnow()
        with session_scope(readonly=True) as session:
            for arn in dict.fromkeys(params["reportArns"]):
                report = records.find(session, ctx.account_id, ctx.region, arn, now)
                if report is None:
                    missing.append(arn)
                else:
                    found.append(records.output(report))
        result: shapes.BatchGetReportsOutput = {"reportsNotFound": missing}
        if found:  # the model's Reports list has min 1
            result["reports"] = found
        return result

    def list_reports(
        self, ctx: RequestContext, params: shapes.ListReportsInput
    ) -> shapes.ListReportsOutput:
        return self._list_reports(ctx, params, None)

    def list_reports_for_report_group(
        self, ctx: RequestContext, params: shapes.ListReportsForReportGroupInput
    ) -> shapes.ListReportsForReportGroupOutput:
        with session_scope(readonly=True) as session:
            group = groups.get(session, ctx.account_id, ctx.region, params["reportGroupArn"])
        return self._list_reports(ctx, params, group)

    def _list_reports(
        self,
        ctx: RequestContext,
        params: shapes.ListReportsInput | shapes.ListReportsForReportGroupInput,
        group: ReportGroup | None,
    ) -> shapes.ListReportsOutput:
        # Newest first unless ASCENDING (chronological) is asked for.
        descending = params.get("sortOrder") != "ASCENDING"
        status = (params.get("filter") or {}).get("status")
        query = select(Report.arn, Report.created_at).where(
            Report.account_id == ctx.account_id,
            Report.region == ctx.region,
            Report.expires_at > utcnow(),
        )
        if group is not None:
            query = query.where(Report.report_group_id == group.id)
        if status:
            query = query.where(Report.status == status)
        with session_scope(readonly=True) as session:
            rows = [(arn, created.timestamp()) for arn, created in session.execute(query)]

        def key(row: tuple[str, float]) -> tuple[float, str]:
            return (row[1], row[0])

        page, token = _page(
            ctx,
            params.get("nextToken"),
            params.get("maxResults"),
            _ordered(rows, key, descending),
            key,
            descending,
            group=group.arn if group else None,
            status=status,
            order="DESCENDING" if descending else "ASCENDING",
        )
        output: shapes.ListReportsOutput = {"reports": [arn for arn, _ in page]}
        if token:
            output["nextToken"] = token
        return output

    def delete_report(
        self, ctx: RequestContext, params: shapes.DeleteReportInput
    ) -> shapes.DeleteReportOutput:
        arn = params["arn"]
        if not records.is_report_arn(arn):
            raise errors.InvalidInputException(f"Invalid report ARN: {arn}")
        with session_scope() as session:
            ids = session.scalars(
                select(Report.id).where(
                    Report.arn == arn,
                    Report.account_id == ctx.account_id,
                    Report.region == ctx.region,
                )
            ).all()
            records.delete_reports(session, ids)
        return {}

    # -- report contents ------------------------------------------------------------------
    def describe_test_cases(
        self, ctx: RequestContext, params: shapes.DescribeTestCasesInput
    ) -> shapes.DescribeTestCasesOutput:
        arn = params["reportArn"]
        if not records.is_report_arn(arn):
            raise errors.InvalidInputException(f"Invalid report ARN: {arn}")
        case_filter = params.get("filter") or {}
        status, keyword = case_filter.get("status"), case_filter.get("keyword")
        if status and status not in TEST_STATUSES:
            raise errors.InvalidInputException(
                f"Invalid test case status filter {status!r}: expected one of "
                + ", ".join(TEST_STATUSES)
            )
        with session_scope(readonly=True) as session:
            report = records.find(session, ctx.account_id, ctx.region, arn, utcnow())
            if report is None:
                raise errors.ResourceNotFoundException(f"Report {arn} does not exist")
            query = select(ReportTestCase).where(ReportTestCase.report_id == report.id)
            if status:
                query = query.where(ReportTestCase.status == status)
            cases = session.scalars(query.order_by(ReportTestCase.seq)).all()
        if keyword:
            # A plain, case-sensitive substring test (SQL LIKE would ignore case on SQLite).
            cases = [c for c in cases if keyword in c.name or keyword in (c.prefix or "")]

        def key(case: ReportTestCase) -> int:
            return case.seq

        page, token = _page(
            ctx,
            params.get("nextToken"),
            params.get("maxResults"),
            cases,
            key,
            False,
            report=arn,
            status=status,
            keyword=keyword,
        )
        output: shapes.DescribeTestCasesOutput = {
            "testCases": [records.test_case_output(report, case) for case in page]
        }
        if token:
            output["nextToken"] = token
        return output

    def describe_code_coverages(
        self, ctx: RequestContext, params: shapes.DescribeCodeCoveragesInput
    ) -> shapes.DescribeCodeCoveragesOutput:
        arn = params["reportArn"]
        if not records.is_report_arn(arn):
            raise errors.InvalidInputException(f"Invalid report ARN: {arn}")
        low = params.get("minLineCoveragePercentage")
        high = params.get("maxLineCoveragePercentage")
        if low is not None and high is not None and low > high:
            raise errors.InvalidInputException(
                "minLineCoveragePercentage must not be greater than maxLineCoveragePercentage"
            )
        sort_by = params.get("sortBy") or "FILE_PATH"
        descending = params.get("sortOrder") == "DESCENDING"
        with session_scope(readonly=True) as session:
            report = records.find(session, ctx.account_id, ctx.region, arn, utcnow())
            if report is None:
                # The model declares no ResourceNotFoundException for this operation.
                raise errors.InvalidInputException(f"Report {arn} does not exist")
            query = select(ReportCodeCoverage).where(ReportCodeCoverage.report_id == report.id)
            if low is not None:
                query = query.where(ReportCodeCoverage.line_coverage_percentage >= low)
            if high is not None:
                query = query.where(ReportCodeCoverage.line_coverage_percentage <= high)
            coverages = session.scalars(query).all()

        def key(coverage: ReportCodeCoverage) -> tuple[Any, ...]:
            if sort_by == "LINE_COVERAGE_PERCENTAGE":
                return (coverage.line_coverage_percentage, coverage.file_path, coverage.id)
            return (coverage.file_path, coverage.id)

        page, token = _page(
            ctx,
            params.get("nextToken"),
            params.get("maxResults"),
            _ordered(coverages, key, descending),
            key,
            descending,
            report=arn,
            low=low,
            high=high,
            sortBy=sort_by,
            order="DESCENDING" if descending else "ASCENDING",
        )
        output: shapes.DescribeCodeCoveragesOutput = {
            "codeCoverages": [records.coverage_output(report, c) for c in page]
        }
        if token:
            output["nextToken"] = token
        return output

    def get_report_group_trend(
        self, ctx: RequestContext, params: shapes.GetReportGroupTrendInput
    ) -> shapes.GetReportGroupTrendOutput:
        field = params["trendField"]
        limit = params.get("numOfReports") or DEFAULT_TREND_REPORTS
        with session_scope(readonly=True) as session:
            group = groups.get(session, ctx.account_id, ctx.region, params["reportGroupArn"])
            if not trend.field_applies(field, group.type):
                raise errors.InvalidInputException(
                    f"trendField {field} does not apply to report group {group.name}, "
                    f"whose type is {group.type}"
                )
            reports = session.scalars(
                select(Report)
                .where(
                    Report.report_group_id == group.id,
                    Report.status.in_(_TREND_STATUSES),
                    Report.expires_at > utcnow(),
                )
                .order_by(Report.created_at.desc(), Report.arn.desc())
                .limit(limit)
            ).all()
        return trend.trend(reports, field)
