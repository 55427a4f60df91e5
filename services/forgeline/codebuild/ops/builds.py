"""CodeBuild builds: start, look, list, stop, retry, delete."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codebuild import builds, projects
from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.tables.builds import Build
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.idempotency import idempotent
from forgeline.core.pagination import request_page_tokens

LIST_PAGE_SIZE = 100
MAX_BATCH_IDS = 100
INVALID_BUILD_ID = "Invalid build ID provided"


def _check_ids(ids: list[str]) -> None:
    if len(ids) > MAX_BATCH_IDS:
        raise errors.InvalidInputException(
            f"The number of build IDs must be no more than {MAX_BATCH_IDS}."
        )
    for build_id in ids:
        if not build_id.strip():
            raise errors.InvalidInputException("Build ID must not be empty.")


def _page(
    ctx: RequestContext,
    rows: list[Build],
    params: shapes.ListBuildsInput | shapes.ListBuildsForProjectInput,
    extra: str = "",
) -> shapes.ListBuildsOutput:
    descending = params.get("sortOrder", "DESCENDING") == "DESCENDING"
    ordered = sorted(rows, key=lambda b: (b.queued_at.timestamp(), b.id), reverse=descending)
    scope = {
        "descending": descending,
        "extra": extra,
    }
    page, token = request_page_tokens(ctx).page(
        ordered,
        lambda b: (b.queued_at.timestamp(), b.id),
        scope,
        params.get("nextToken"),
        LIST_PAGE_SIZE,
        descending,
    )
    output: shapes.ListBuildsOutput = {"ids": [b.id for b in page]}
    if token:
        output["nextToken"] = token
    return output


def _build_once_per_token(
    session: Session,
    ctx: RequestContext,
    params: shapes.StartBuildInput | shapes.RetryBuildInput,
    start: Callable[[], Build],
) -> shapes.Build:
    """`idempotencyToken`: a repeated request returns the first build, never a new one."""
    token = params.get("idempotencyToken")
    if not token:
        return builds.build_output(start())
    stored = idempotent(
        session,
        ctx,
        token,
        params,
        lambda: {"build": builds.build_output(start())},
        mismatch_error="InvalidInputException",
        token_member="idempotencyToken",
    )
    # The build as first answered (on a repeat, replayed from the JSON kept with the token).
    build: shapes.Build = stored["build"]
    return build


class BuildOperations:
    def start_build(
        self, ctx: RequestContext, params: shapes.StartBuildInput
    ) -> shapes.StartBuildOutput:
        with session_scope() as session:

            def start() -> Build:
                return builds.queue_build(session, ctx, params)

            return {"build": _build_once_per_token(session, ctx, params, start)}

    def batch_get_builds(
        self, ctx: RequestContext, params: shapes.BatchGetBuildsInput
    ) -> shapes.BatchGetBuildsOutput:
        ids = params["ids"]
        _check_ids(ids)
        wanted = [builds.bare_build_id(build_id) for build_id in ids]
        # A malformed id fails the whole call; a well-formed unknown one is "not found".
        if not all(builds.well_formed_build_id(bare) for bare in wanted):
            raise errors.InvalidInputException(INVALID_BUILD_ID)
        with session_scope(readonly=True) as session:
            found = builds.find_builds(session, ctx, wanted)
            output = [builds.build_output(found[i]) for i in dict.fromkeys(wanted) if i in found]
        missing = [
            original for original, bare in zip(ids, wanted, strict=True) if bare not in found
        ]
        return {"builds": output, "buildsNotFound": list(dict.fromkeys(missing))}

    def list_builds(
        self, ctx: RequestContext, params: shapes.ListBuildsInput
    ) -> shapes.ListBuildsOutput:
        with session_scope(readonly=True) as session:
            rows = list(
                session.scalars(
                    select(Build).where(
                        Build.account_id == ctx.account_id, Build.region == ctx.region
                    )
                )
            )
        return _page(ctx, rows, params)

    def list_builds_for_project(
        self, ctx: RequestContext, params: shapes.ListBuildsForProjectInput
    ) -> shapes.ListBuildsForProjectOutput:
        with session_scope(readonly=True) as session:
            project = projects.find_project(
                session, ctx.account_id, ctx.region, params["projectName"]
            )
            if project is None:
                raise errors.ResourceNotFoundException(
                    f"Project cannot be found: "
                    f"{ctx.arn('codebuild', 'project/' + params['projectName'])}"
                )
            rows = list(
                session.scalars(
                    select(Build).where(
                        Build.account_id == ctx.account_id,
                        Build.region == ctx.region,
                        Build.project_name == project.name,
                    )
                )
            )
        return _page(ctx, rows, params, project.name)

    def stop_build(
        self, ctx: RequestContext, params: shapes.StopBuildInput
    ) -> shapes.StopBuildOutput:
        build_id = builds.bare_build_id(params["id"])
        if not builds.well_formed_build_id(build_id):
            raise errors.InvalidInputException(INVALID_BUILD_ID)
        with session_scope() as session:
            build = builds.find_builds(session, ctx, [build_id]).get(build_id)
            if build is None:
                raise errors.ResourceNotFoundException(f"Build {params['id']} does not exist")
            # Lock the row: a worker claiming it at this moment must see the stop, not lose it.
            session.refresh(build, with_for_update=True)
            builds.request_stop(session, build)
            return {"build": builds.build_output(build)}

    def retry_build(
        self, ctx: RequestContext, params: shapes.RetryBuildInput
    ) -> shapes.RetryBuildOutput:
        if "id" not in params:
            raise errors.InvalidInputException("A build ID is required to retry a build.")
        build_id = builds.bare_build_id(params["id"])
        with session_scope() as session:
            original = builds.find_builds(session, ctx, [build_id]).get(build_id)
            if original is None:
                raise errors.ResourceNotFoundException(f"Build {params['id']} does not exist")
            if not original.build_complete:
                raise errors.InvalidInputException(
                    f"Build {original.id} is still in progress; only a finished build can be "
                    "retried."
                )

            def retry() -> Build:
                return builds.retry_build(session, ctx, original)

            return {"build": _build_once_per_token(session, ctx, params, retry)}

    def batch_delete_builds(
        self, ctx: RequestContext, params: shapes.BatchDeleteBuildsInput
    ) -> shapes.BatchDeleteBuildsOutput:
        ids = params["ids"]
        _check_ids(ids)
        deleted: list[str] = []
        not_deleted: list[shapes.BuildNotDeleted] = []
        with session_scope() as session:
            found = builds.find_builds(session, ctx, [builds.bare_build_id(i) for i in ids])
            for original in dict.fromkeys(ids):
                build = found.get(builds.bare_build_id(original))
                if build is None:
                    not_deleted.append({"id": original, "statusCode": "BUILD_NOT_FOUND"})
                elif not build.build_complete:
                    not_deleted.append({"id": original, "statusCode": "BUILD_IN_PROGRESS"})
                else:
                    session.delete(build)
                    deleted.append(original)
        return {"buildsDeleted": deleted, "buildsNotDeleted": not_deleted}
