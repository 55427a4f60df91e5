"""Tags of pipelines (TagResource, UntagResource, ListTagsForResource), kept in the shared
tag table under each pipeline's ARN, and the helpers CreatePipeline uses for its tags."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codepipeline.generated import errors, shapes
from forgeline.codepipeline.tables.pipelines import Pipeline
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import page_size, request_page_tokens

TAG_ERRORS = tagging.TagErrors(
    too_many="TooManyTagsException",
    reserved_key="InvalidTagsException",
    invalid="InvalidTagsException",
)
LIST_PAGE_SIZE = 50


def pipeline_arn(ctx: RequestContext, name: str) -> str:
    return ctx.arn("codepipeline", name)


def tags_from_list(tags: Iterable[shapes.Tag]) -> dict[str, str]:
    """The model's [{key, value}] as a mapping (a key given twice keeps its last value)."""
    return {tag["key"]: tag["value"] for tag in tags}


class TagOperations:
    def tag_resource(
        self, ctx: RequestContext, params: shapes.TagResourceInput
    ) -> shapes.TagResourceOutput:
        with session_scope() as session:
            arn = _require_tagged(session, ctx, params["resourceArn"])
            tagging.put_tags(
                session, ctx.account_id, arn, tags_from_list(params["tags"]), TAG_ERRORS
            )
        return {}

    def untag_resource(
        self, ctx: RequestContext, params: shapes.UntagResourceInput
    ) -> shapes.UntagResourceOutput:
        with session_scope() as session:
            arn = _require_tagged(session, ctx, params["resourceArn"])
            tagging.remove_tags(session, arn, params["tagKeys"], TAG_ERRORS)
        return {}

    def list_tags_for_resource(
        self, ctx: RequestContext, params: shapes.ListTagsForResourceInput
    ) -> shapes.ListTagsForResourceOutput:
        limit = page_size(
            params.get("maxResults"),
            default=LIST_PAGE_SIZE,
            maximum=LIST_PAGE_SIZE,
            member="maxResults",
            invalid=errors.ValidationException,
        )
        with session_scope(readonly=True) as session:
            arn = _require_tagged(session, ctx, params["resourceArn"])
            tags = sorted(tagging.get_tags(session, arn).items())
        page, next_token = request_page_tokens(ctx).page(
            tags, lambda pair: pair[0], {"arn": arn}, params.get("nextToken"), limit
        )
        output: shapes.ListTagsForResourceOutput = {
            "tags": [{"key": key, "value": value} for key, value in page]
        }
        if next_token:
            output["nextToken"] = next_token
        return output


def _require_tagged(session: Session, ctx: RequestContext, arn: str) -> str:
    """The ARN of a pipeline of the caller's account and region that exists."""
    prefix = f"arn:aws:codepipeline:{ctx.region}:{ctx.account_id}:"
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "codepipeline":
        raise errors.InvalidArnException(f"The ARN {arn!r} is not a CodePipeline resource ARN.")
    if not arn.startswith(prefix) or "/" in arn[len(prefix) :]:
        raise errors.ResourceNotFoundException(f"The resource {arn} could not be found.")
    name = arn[len(prefix) :]
    found = session.scalars(
        select(Pipeline.id).where(
            Pipeline.account_id == ctx.account_id,
            Pipeline.region == ctx.region,
            Pipeline.name == name,
        )
    ).first()
    if found is None:
        raise errors.ResourceNotFoundException(f"The pipeline {name} could not be found.")
    return arn
