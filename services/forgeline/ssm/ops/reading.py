"""Reading parameters: GetParameter, GetParameters, GetParametersByPath,
DescribeParameters and GetParameterHistory."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import request_page_tokens
from forgeline.ssm import parameters as store
from forgeline.ssm.filters import ParameterFilter, legacy_filters, parse_filters
from forgeline.ssm.generated import errors, shapes
from forgeline.ssm.tables import SsmParameter, SsmParameterVersion

BY_PATH_PAGE_SIZE = 10
DESCRIBE_PAGE_SIZE = 50
HISTORY_PAGE_SIZE = 50

Row = tuple[SsmParameter, SsmParameterVersion]


class ReadOperations:
    def get_parameter(
        self, ctx: RequestContext, params: shapes.GetParameterRequest
    ) -> shapes.GetParameterResult:
        with session_scope(readonly=True) as session:
            parameter, version, reference = store.resolve(
                session, ctx.account_id, ctx.region, params["Name"]
            )
            return {
                "Parameter": store.parameter_output(
                    parameter, version, reference, params.get("WithDecryption", False)
                )
            }

    def get_parameters(
        self, ctx: RequestContext, params: shapes.GetParametersRequest
    ) -> shapes.GetParametersResult:
        found: list[shapes.Parameter] = []
        invalid: list[str] = []
        decrypt = params.get("WithDecryption", False)
        with session_scope(readonly=True) as session:
            for requested in dict.fromkeys(params["Names"]):
                try:
                    parameter, version, reference = store.resolve(
                        session, ctx.account_id, ctx.region, requested
                    )
                except (errors.ParameterNotFound, errors.ParameterVersionNotFound):
                    invalid.append(requested)
                    continue
                found.append(store.parameter_output(parameter, version, reference, decrypt))
        return {"Parameters": found, "InvalidParameters": invalid}

    def get_parameters_by_path(
        self, ctx: RequestContext, params: shapes.GetParametersByPathRequest
    ) -> shapes.GetParametersByPathResult:
        path = params["Path"]
        _check_path(path)
        prefix = path if path.endswith("/") else path + "/"
        recursive = params.get("Recursive", False)
        raw_filters = params.get("ParameterFilters")
        filters = parse_filters(raw_filters or [], by_path=True)
        decrypt = params.get("WithDecryption", False)
        labels = {value for f in filters if f.key == "Label" for value in f.values}
        with session_scope(readonly=True) as session:
            rows = [
                (parameter, version)
                for parameter, version in _current_rows(session, ctx, prefix)
                if recursive or "/" not in parameter.name[len(prefix) :]
            ]
            if labels:
                # A Label filter returns the labelled version, not the current one.
                rows = _labelled_versions(session, rows, labels)
            rows = [(p, v) for p, v in rows if _matches(session, filters, p, v)]
            scope = _scope(path, recursive, filters=raw_filters, decrypt=decrypt)
            page, token = request_page_tokens(ctx).page(
                rows,
                lambda row: row[0].name,
                scope,
                params.get("NextToken"),
                params.get("MaxResults") or BY_PATH_PAGE_SIZE,
            )
            output: shapes.GetParametersByPathResult = {
                "Parameters": [store.parameter_output(p, v, None, decrypt) for p, v in page]
            }
        if token:
            output["NextToken"] = token
        return output

    def describe_parameters(
        self, ctx: RequestContext, params: shapes.DescribeParametersRequest
    ) -> shapes.DescribeParametersResult:
        legacy = params.get("Filters")
        raw_filters = params.get("ParameterFilters")
        if legacy and raw_filters:
            raise errors.ValidationException(
                "You can use either Filters or ParameterFilters in a single request, not both."
            )
        filters = legacy_filters(legacy or []) + parse_filters(raw_filters or [], by_path=False)
        if params.get("Shared"):
            return {"Parameters": []}  # no parameter is ever shared with another account here
        with session_scope(readonly=True) as session:
            rows = [
                (parameter, version)
                for parameter, version in _current_rows(session, ctx, "")
                if _matches(session, filters, parameter, version)
            ]
            scope = _scope("", False, filters=raw_filters, legacy=legacy)
            page, token = request_page_tokens(ctx).page(
                rows,
                lambda row: row[0].name,
                scope,
                params.get("NextToken"),
                params.get("MaxResults") or DESCRIBE_PAGE_SIZE,
            )
            output: shapes.DescribeParametersResult = {
                "Parameters": [store.metadata_output(p, v) for p, v in page]
            }
        if token:
            output["NextToken"] = token
        return output

    def get_parameter_history(
        self, ctx: RequestContext, params: shapes.GetParameterHistoryRequest
    ) -> shapes.GetParameterHistoryResult:
        decrypt = params.get("WithDecryption", False)
        with session_scope(readonly=True) as session:
            parameter = store.find_exact(session, ctx.account_id, ctx.region, params["Name"])
            if parameter is None:
                raise store.not_found(params["Name"])
            scope = _scope(parameter.id, False, decrypt=decrypt)
            page, token = request_page_tokens(ctx).page(
                store.versions(session, parameter),
                lambda version: version.version,
                scope,
                params.get("NextToken"),
                params.get("MaxResults") or HISTORY_PAGE_SIZE,
            )
            output: shapes.GetParameterHistoryResult = {
                "Parameters": [
                    store.history_output(parameter, version, decrypt) for version in page
                ]
            }
        if token:
            output["NextToken"] = token
        return output


def _check_path(path: str) -> None:
    if not path.startswith("/"):
        raise errors.ValidationException(
            f"The path {path!r} is not valid: a parameter path must begin with '/'."
        )
    levels = [segment for segment in path.strip("/").split("/") if segment]
    if len(levels) > store.MAX_HIERARCHY_LEVELS:
        raise errors.ValidationException(
            f"The path {path!r} has {len(levels)} levels; a hierarchy has at most "
            f"{store.MAX_HIERARCHY_LEVELS}."
        )
    if "//" in path.rstrip("/") or not all(store.SEGMENT.fullmatch(s) for s in levels):
        raise errors.ValidationException(
            f"The path {path!r} is not valid: each level can contain only letters, numbers "
            "and the symbols . - _, separated by single slashes."
        )


def _current_rows(session: Session, ctx: RequestContext, prefix: str) -> list[Row]:
    query = (
        select(SsmParameter, SsmParameterVersion)
        .join(
            SsmParameterVersion,
            (SsmParameterVersion.parameter_id == SsmParameter.id)
            & (SsmParameterVersion.version == SsmParameter.version),
        )
        .where(SsmParameter.account_id == ctx.account_id, SsmParameter.region == ctx.region)
        .order_by(SsmParameter.name)
    )
    if prefix:
        query = query.where(SsmParameter.name.startswith(prefix, autoescape=True))
    # SQLite's LIKE ignores case, and collations may not order by code point: names are
    # case-sensitive and pages need one order, so both are settled here.
    rows = [
        (parameter, version)
        for parameter, version in session.execute(query).all()
        if parameter.name.startswith(prefix)
    ]
    return sorted(rows, key=lambda row: row[0].name)


def _labelled_versions(session: Session, rows: list[Row], labels: set[str]) -> list[Row]:
    chosen = []
    for parameter, current in rows:
        candidates = [current, *reversed(store.versions(session, parameter))]
        labelled = next((v for v in candidates if labels & set(v.labels or [])), None)
        if labelled is not None:
            chosen.append((parameter, labelled))
    return chosen


def _matches(
    session: Session,
    filters: list[ParameterFilter],
    parameter: SsmParameter,
    version: SsmParameterVersion,
) -> bool:
    tags: dict[str, str] | None = None
    for parameter_filter in filters:
        if parameter_filter.needs_tags and tags is None:
            tags = tagging.get_tags(session, store.arn_of(parameter))
        if not parameter_filter.accepts(parameter.name, version, tags or {}):
            return False
    return True


def _scope(
    subject: str,
    recursive: bool,
    *,
    filters: list[shapes.ParameterStringFilter] | None = None,
    legacy: list[shapes.ParametersFilter] | None = None,
    decrypt: bool = False,
) -> dict[str, Any]:
    """What a page token is bound to: the query's subject and its own parameters."""
    return {
        "subject": subject,
        "recursive": recursive,
        "filters": filters,
        "legacy": legacy,
        "decrypt": decrypt,
    }
