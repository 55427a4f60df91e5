"""CodeBuild batch build operations: StartBuildBatch, BatchGetBuildBatches, the two
listings, StopBuildBatch, RetryBuildBatch and DeleteBuildBatch.

The handlers only validate and route; services/forgeline/codebuild/batch_coordinator.py does the work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from forgeline.codebuild import batch_coordinator as coordinator
from forgeline.codebuild import projects
from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.tables.batches import BuildBatch
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.idempotency import idempotent
from forgeline.core.pagination import request_page_tokens

DEFAULT_PAGE_SIZE = 100


def _sort_key(row: BuildBatch) -> tuple[str, str]:
    return (row.start_time.isoformat(), row.id)


class BatchOperations:
    def start_build_batch(
        self, ctx: RequestContext, params: shapes.StartBuildBatchInput
    ) -> shapes.StartBuildBatchOutput:
        with session_scope() as session:

            def start() -> dict[str, Any]:
                return {"id": coordinator.start_batch(session, ctx, params).id}

            stored = idempotent(
                session,
                ctx,
                params.get("idempotencyToken"),
                params,
                start,
                mismatch_error="InvalidInputException",
                token_member="idempotencyToken",
            )
            batch = coordinator.get_batch(session, ctx, stored["id"])
            return {"buildBatch": coordinator.batch_output(session, batch)}

    def batch_get_build_batches(
        self, ctx: RequestContext, params: shapes.BatchGetBuildBatchesInput
    ) -> shapes.BatchGetBuildBatchesOutput:
        ids = list(dict.fromkeys(params["ids"]))
        with session_scope(readonly=True) as session:
            found = coordinator.find_batches(session, ctx.account_id, ctx.region, ids)
            prefix = ctx.arn("codebuild", "build-batch/")
            shown: list[shapes.BuildBatch] = []
            missing: list[str] = []
            for raw in ids:
                batch = found.get(raw.removeprefix(prefix))
                if batch is None:
                    missing.append(raw)
                else:
                    shown.append(coordinator.batch_output(session, batch))
            return {"buildBatches": shown, "buildBatchesNotFound": missing}

    def list_build_batches(
        self, ctx: RequestContext, params: shapes.ListBuildBatchesInput
    ) -> shapes.ListBuildBatchesOutput:
        return self._list(ctx, params, project_name=None)

    def list_build_batches_for_project(
        self, ctx: RequestContext, params: shapes.ListBuildBatchesForProjectInput
    ) -> shapes.ListBuildBatchesForProjectOutput:
        name = params.get("projectName")
        if not name:
            raise errors.InvalidInputException("projectName is required.")
        with session_scope(readonly=True) as session:
            project = projects.get_project(session, ctx.account_id, ctx.region, name)
            project_name = project.name
        return self._list(ctx, params, project_name=project_name)

    @staticmethod
    def _list(
        ctx: RequestContext,
        params: shapes.ListBuildBatchesInput | shapes.ListBuildBatchesForProjectInput,
        *,
        project_name: str | None,
    ) -> shapes.ListBuildBatchesOutput:
        status = (params.get("filter") or {}).get("status")
        descending = params.get("sortOrder", "DESCENDING") == "DESCENDING"
        query = select(BuildBatch).where(
            BuildBatch.account_id == ctx.account_id, BuildBatch.region == ctx.region
        )
        if project_name is not None:
            query = query.where(BuildBatch.project_name == project_name)
        if status is not None:
            query = query.where(BuildBatch.status == status)
        with session_scope(readonly=True) as session:
            rows = sorted(session.scalars(query).all(), key=_sort_key, reverse=descending)
        scope = {
            "project": project_name,
            "status": status,
            "descending": descending,
        }
        page, token = request_page_tokens(ctx).page(
            rows,
            _sort_key,
            scope,
            params.get("nextToken"),
            params.get("maxResults", DEFAULT_PAGE_SIZE),
            descending,
        )
        output: shapes.ListBuildBatchesOutput = {"ids": [row.id for row in page]}
        if token:
            output["nextToken"] = token
        return output

    def stop_build_batch(
        self, ctx: RequestContext, params: shapes.StopBuildBatchInput
    ) -> shapes.StopBuildBatchOutput:
        with session_scope() as session:
            batch = coordinator.get_batch(session, ctx, params["id"], lock=True)
            coordinator.stop_batch(session, batch)
            return {"buildBatch": coordinator.batch_output(session, batch)}

    def retry_build_batch(
        self, ctx: RequestContext, params: shapes.RetryBuildBatchInput
    ) -> shapes.RetryBuildBatchOutput:
        batch_id = params.get("id")
        if not batch_id:
            raise errors.InvalidInputException("The id of the build batch to retry is required.")
        retry_type = params.get("retryType", "RETRY_ALL_BUILDS")
        with session_scope() as session:

            def retry() -> dict[str, Any]:
                batch = coordinator.get_batch(session, ctx, batch_id, lock=True)
                coordinator.retry_batch(session, batch, retry_type)
                return {"id": batch.id}

            stored = idempotent(
                session,
                ctx,
                params.get("idempotencyToken"),
                params,
                retry,
                mismatch_error="InvalidInputException",
                token_member="idempotencyToken",
            )
            batch = coordinator.get_batch(session, ctx, stored["id"])
            return {"buildBatch": coordinator.batch_output(session, batch)}

    def delete_build_batch(
        self, ctx: RequestContext, params: shapes.DeleteBuildBatchInput
    ) -> shapes.DeleteBuildBatchOutput:
        with session_scope() as session:
            found = coordinator.find_batches(session, ctx.account_id, ctx.region, [params["id"]])
            if not found:
                raise errors.InvalidInputException(f"Build batch {params['id']} does not exist.")
            batch = next(iter(found.values()))
            coordinator.lock_batch(session, batch)
            return coordinator.delete_batch(session, batch)
