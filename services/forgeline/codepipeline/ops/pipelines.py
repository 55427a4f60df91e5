"""Pipelines: CreatePipeline, GetPipeline (any version), UpdatePipeline (a new version),
DeletePipeline and ListPipelines.

A declaration is checked by structure.py before it is stored; what is stored (and answered)
is the declaration with its version and AWS's defaults filled in (pipelineType V1,
executionMode SUPERSEDED), as GetPipeline shows it on AWS.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any, cast

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from forgeline.codepipeline import custom_types, structure
from forgeline.codepipeline.generated import errors, shapes
from forgeline.codepipeline.ops.tags import TAG_ERRORS, pipeline_arn, tags_from_list
from forgeline.codepipeline.running.starting import start_execution
from forgeline.codepipeline.tables.executions import ActionExecution, PipelineExecution
from forgeline.codepipeline.tables.pipelines import Pipeline, PipelineVersion
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import page_size, request_page_tokens

# AWS's quota of pipelines per account and region.
MAX_PIPELINES = 1000
LIST_PAGE_SIZE = 1000
DEFAULT_PIPELINE_TYPE = "V1"
DEFAULT_EXECUTION_MODE = "SUPERSEDED"


def find_pipeline(
    session: Session, ctx: RequestContext, name: str, *, for_update: bool = False
) -> Pipeline | None:
    query = select(Pipeline).where(
        Pipeline.account_id == ctx.account_id,
        Pipeline.region == ctx.region,
        Pipeline.name == name,
    )
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def require_pipeline(
    session: Session, ctx: RequestContext, name: str, *, for_update: bool = False
) -> Pipeline:
    pipeline = find_pipeline(session, ctx, name, for_update=for_update)
    if pipeline is None:
        raise errors.PipelineNotFoundException(
            f"Account '{ctx.account_id}' does not have a pipeline with name '{name}'"
        )
    return pipeline


def stored_declaration(declaration: shapes.PipelineDeclaration, version: int) -> dict[str, Any]:
    """The declaration as kept and answered: its version and AWS's defaults filled in."""
    stored: dict[str, Any] = copy.deepcopy(dict(declaration))
    stored["version"] = version
    stored.setdefault("pipelineType", DEFAULT_PIPELINE_TYPE)
    stored.setdefault("executionMode", DEFAULT_EXECUTION_MODE)
    return stored


def _validate(
    session: Session, ctx: RequestContext, declaration: shapes.PipelineDeclaration
) -> None:
    structure.validate_pipeline(
        declaration,
        region=ctx.region,
        custom_action_types=custom_types.lookup(session, ctx.account_id, ctx.region),
    )


def _metadata(ctx: RequestContext, pipeline: Pipeline) -> shapes.PipelineMetadata:
    return {
        "pipelineArn": pipeline_arn(ctx, pipeline.name),
        "created": pipeline.created_at,
        "updated": pipeline.updated_at,
    }


class PipelineOperations:
    def create_pipeline(
        self, ctx: RequestContext, params: shapes.CreatePipelineInput
    ) -> shapes.CreatePipelineOutput:
        declaration = params["pipeline"]
        tags = tags_from_list(params.get("tags") or [])
        name = declaration["name"]
        with session_scope() as session:
            _validate(session, ctx, declaration)
            tagging.validate_tags(tags, TAG_ERRORS)
            if find_pipeline(session, ctx, name) is not None:
                raise errors.PipelineNameInUseException(
                    f"A pipeline with the name '{name}' already exists in account "
                    f"'{ctx.account_id}'"
                )
            count = session.scalar(
                select(func.count())
                .select_from(Pipeline)
                .where(Pipeline.account_id == ctx.account_id, Pipeline.region == ctx.region)
            )
            if (count or 0) >= MAX_PIPELINES:
                raise errors.LimitExceededException(
                    f"An account can have at most {MAX_PIPELINES} pipelines in a region."
                )
            stored = stored_declaration(declaration, 1)
            now = utcnow()
            pipeline = Pipeline(
                id=str(uuid.uuid4()),
                account_id=ctx.account_id,
                region=ctx.region,
                name=name,
                version=1,
                declaration=stored,
                created_at=now,
                updated_at=now,
                disabled_transitions={},
                lanes={},
            )
            session.add(pipeline)
            session.add(
                PipelineVersion(
                    pipeline_id=pipeline.id, version=1, declaration=stored, created_at=now
                )
            )
            session.flush()
            if tags:
                tagging.put_tags(session, ctx.account_id, pipeline_arn(ctx, name), tags, TAG_ERRORS)
            # As on AWS, a new pipeline runs once at once.
            start_execution(
                session,
                pipeline,
                {"triggerType": "CreatePipeline", "triggerDetail": ctx.principal_arn},
            )
        output: shapes.CreatePipelineOutput = {"pipeline": cast(shapes.PipelineDeclaration, stored)}
        if params.get("tags"):
            output["tags"] = params["tags"]
        return output

    def get_pipeline(
        self, ctx: RequestContext, params: shapes.GetPipelineInput
    ) -> shapes.GetPipelineOutput:
        wanted = params.get("version")
        with session_scope(readonly=True) as session:
            pipeline = require_pipeline(session, ctx, params["name"])
            declaration = pipeline.declaration
            if wanted is not None and wanted != pipeline.version:
                kept = session.get(PipelineVersion, (pipeline.id, wanted))
                if kept is None:
                    raise errors.PipelineVersionNotFoundException(
                        f"Pipeline '{pipeline.name}' has no version {wanted}; its latest "
                        f"version is {pipeline.version}."
                    )
                declaration = kept.declaration
            return {
                "pipeline": cast(shapes.PipelineDeclaration, declaration),
                "metadata": _metadata(ctx, pipeline),
            }

    def update_pipeline(
        self, ctx: RequestContext, params: shapes.UpdatePipelineInput
    ) -> shapes.UpdatePipelineOutput:
        declaration = params["pipeline"]
        with session_scope() as session:
            _validate(session, ctx, declaration)
            pipeline = require_pipeline(session, ctx, declaration["name"], for_update=True)
            version = pipeline.version + 1
            stored = stored_declaration(declaration, version)
            now = utcnow()
            pipeline.version = version
            pipeline.declaration = stored
            pipeline.updated_at = now
            # A stage that no longer exists keeps no disabled transition.
            stages = {stage["name"] for stage in declaration["stages"]}
            pipeline.disabled_transitions = {
                name: value
                for name, value in (pipeline.disabled_transitions or {}).items()
                if name in stages
            }
            session.add(
                PipelineVersion(
                    pipeline_id=pipeline.id, version=version, declaration=stored, created_at=now
                )
            )
        return {"pipeline": cast(shapes.PipelineDeclaration, stored)}

    def delete_pipeline(self, ctx: RequestContext, params: shapes.DeletePipelineInput) -> None:
        with session_scope() as session:
            pipeline = find_pipeline(session, ctx, params["name"], for_update=True)
            if pipeline is None:
                return  # AWS answers a pipeline that is not there with success
            session.execute(
                delete(ActionExecution).where(ActionExecution.pipeline_id == pipeline.id)
            )
            session.execute(
                delete(PipelineExecution).where(PipelineExecution.pipeline_id == pipeline.id)
            )
            session.execute(
                delete(PipelineVersion).where(PipelineVersion.pipeline_id == pipeline.id)
            )
            tagging.delete_all_tags(session, pipeline_arn(ctx, pipeline.name))
            session.delete(pipeline)

    def list_pipelines(
        self, ctx: RequestContext, params: shapes.ListPipelinesInput
    ) -> shapes.ListPipelinesOutput:
        limit = page_size(
            params.get("maxResults"),
            default=LIST_PAGE_SIZE,
            maximum=LIST_PAGE_SIZE,
            member="maxResults",
            invalid=errors.ValidationException,
        )
        with session_scope(readonly=True) as session:
            pipelines = list(
                session.scalars(
                    select(Pipeline)
                    .where(Pipeline.account_id == ctx.account_id, Pipeline.region == ctx.region)
                    .order_by(Pipeline.name)
                )
            )
        page, next_token = request_page_tokens(ctx).page(
            pipelines, lambda p: p.name, {}, params.get("nextToken"), limit
        )
        output: shapes.ListPipelinesOutput = {"pipelines": [_summary(p) for p in page]}
        if next_token:
            output["nextToken"] = next_token
        return output


def _summary(pipeline: Pipeline) -> shapes.PipelineSummary:
    declaration = pipeline.declaration
    return {
        "name": pipeline.name,
        "version": pipeline.version,
        "pipelineType": declaration.get("pipelineType", DEFAULT_PIPELINE_TYPE),
        "executionMode": declaration.get("executionMode", DEFAULT_EXECUTION_MODE),
        "created": pipeline.created_at,
        "updated": pipeline.updated_at,
    }
