"""Tags of log groups (TagResource, UntagResource, ListTagsForResource). Forgeline tags
log groups only, not delivery sources or destinations."""

from __future__ import annotations

from sqlalchemy.orm import Session

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.logs import store as logstore
from forgeline.logs.generated import errors, shapes
from forgeline.logs.ops.lookups import require_group

TAG_ERRORS = tagging.TagErrors(
    too_many="InvalidParameterException",
    reserved_key="InvalidParameterException",
    invalid="InvalidParameterException",
)
# TagResource declares its own error for too many tags.
TAG_RESOURCE_ERRORS = tagging.TagErrors(
    too_many="TooManyTagsException",
    reserved_key="InvalidParameterException",
    invalid="InvalidParameterException",
)


class TagOperations:
    def tag_resource(self, ctx: RequestContext, params: shapes.TagResourceRequest) -> None:
        with session_scope() as session:
            arn = _tagged_group_arn(session, ctx, params["resourceArn"])
            tagging.put_tags(session, ctx.account_id, arn, params["tags"], TAG_RESOURCE_ERRORS)

    def untag_resource(self, ctx: RequestContext, params: shapes.UntagResourceRequest) -> None:
        with session_scope() as session:
            arn = _tagged_group_arn(session, ctx, params["resourceArn"])
            tagging.remove_tags(session, arn, params["tagKeys"], TAG_ERRORS)

    def list_tags_for_resource(
        self, ctx: RequestContext, params: shapes.ListTagsForResourceRequest
    ) -> shapes.ListTagsForResourceResponse:
        with session_scope(readonly=True) as session:
            arn = _tagged_group_arn(session, ctx, params["resourceArn"])
            return {"tags": tagging.get_tags(session, arn)}


def _tagged_group_arn(session: Session, ctx: RequestContext, resource_arn: str) -> str:
    """The ARN the tags of the log group `resource_arn` are kept under."""
    if not resource_arn.startswith("arn:") or ":log-group:" not in resource_arn:
        raise errors.InvalidParameterException(
            f"{resource_arn} is not a log group ARN (arn:aws:logs:region:account:log-group:name)."
        )
    group = require_group(session, ctx, resource_arn)
    return logstore.group_arn(group.region, group.account_id, group.name)
