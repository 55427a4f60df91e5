"""Tags of parameters: AddTagsToResource, RemoveTagsFromResource, ListTagsForResource
(ResourceType Parameter only)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.ssm import parameters as store
from forgeline.ssm.generated import errors, shapes
from forgeline.ssm.tables import SsmParameter

TaggingRequest = (
    shapes.AddTagsToResourceRequest
    | shapes.RemoveTagsFromResourceRequest
    | shapes.ListTagsForResourceRequest
)


class TagOperations:
    def add_tags_to_resource(
        self, ctx: RequestContext, params: shapes.AddTagsToResourceRequest
    ) -> shapes.AddTagsToResourceResult:
        with session_scope() as session:
            parameter = _tagged_parameter(session, ctx, params)
            tagging.put_tags(
                session,
                ctx.account_id,
                store.arn_of(parameter),
                {tag["Key"]: tag["Value"] for tag in params["Tags"]},
                store.TAG_ERRORS,
            )
        return {}

    def remove_tags_from_resource(
        self, ctx: RequestContext, params: shapes.RemoveTagsFromResourceRequest
    ) -> shapes.RemoveTagsFromResourceResult:
        with session_scope() as session:
            parameter = _tagged_parameter(session, ctx, params)
            tagging.remove_tags(
                session, store.arn_of(parameter), params["TagKeys"], store.TAG_ERRORS
            )
        return {}

    def list_tags_for_resource(
        self, ctx: RequestContext, params: shapes.ListTagsForResourceRequest
    ) -> shapes.ListTagsForResourceResult:
        with session_scope(readonly=True) as session:
            parameter = _tagged_parameter(session, ctx, params)
            tags = tagging.get_tags(session, store.arn_of(parameter))
        return {"TagList": [{"Key": key, "Value": value} for key, value in tags.items()]}


def _tagged_parameter(
    session: Session, ctx: RequestContext, params: TaggingRequest
) -> SsmParameter:
    if params["ResourceType"] != "Parameter":
        raise errors.InvalidResourceType(
            f"Forgeline's SSM supports tags on parameters only, not {params['ResourceType']}."
        )
    parameter = store.find_exact(session, ctx.account_id, ctx.region, params["ResourceId"])
    if parameter is None:
        raise errors.InvalidResourceId(f"The parameter {params['ResourceId']} does not exist.")
    return parameter
