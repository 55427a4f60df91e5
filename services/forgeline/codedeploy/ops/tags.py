"""Tags of applications, deployment groups and custom deployment configurations
(TagResource, UntagResource, ListTagsForResource), kept in the shared tag table under each
resource's ARN; and the helpers CreateApplication and CreateDeploymentGroup use for the
tags they take. On-premises instance tags are the instance's own (ops/on_premises.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from forgeline.codedeploy import arns, configs
from forgeline.codedeploy.generated import errors, shapes
from forgeline.codedeploy.ops.lookups import (
    application_missing,
    require_application,
    require_deployment_group,
)
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.resources import ResourceTag

TAG_ERRORS = tagging.TagErrors(
    too_many="InvalidTagsToAddException",
    reserved_key="InvalidTagsToAddException",
    invalid="InvalidTagsToAddException",
)
TAGGABLE = ("application", "deploymentgroup", "deploymentconfig")
NOT_FOUND = (
    errors.ApplicationDoesNotExistException,
    errors.DeploymentGroupDoesNotExistException,
    errors.DeploymentConfigDoesNotExistException,
)


def tags_from_list(tags: Iterable[shapes.Tag]) -> dict[str, str]:
    """The model's [{Key, Value}] as a mapping (a key given twice keeps its last value)."""
    pairs: dict[str, str] = {}
    for tag in tags:
        key = tag.get("Key")
        if not key:
            raise errors.InvalidTagsToAddException("Every tag needs a non-empty Key.")
        pairs[key] = tag.get("Value") or ""
    return pairs


def put_resource_tags(
    session: Session, account_id: str, arn: str, tags: Iterable[shapes.Tag]
) -> None:
    pairs = tags_from_list(tags)
    if pairs:
        tagging.put_tags(session, account_id, arn, pairs, TAG_ERRORS)


def move_tags(session: Session, old_arn: str, new_arn: str) -> None:
    """A renamed resource's tags follow it to its new ARN."""
    if old_arn != new_arn:
        session.execute(
            update(ResourceTag)
            .where(ResourceTag.resource_arn == old_arn)
            .values(resource_arn=new_arn)
        )


class TagOperations:
    def tag_resource(
        self, ctx: RequestContext, params: shapes.TagResourceInput
    ) -> shapes.TagResourceOutput:
        if not params["Tags"]:
            raise errors.TagRequiredException("Give at least one tag to add.")
        with session_scope() as session:
            arn = _tagged_arn(session, ctx, params["ResourceArn"], writing=True)
            tagging.put_tags(
                session, ctx.account_id, arn, tags_from_list(params["Tags"]), TAG_ERRORS
            )
        return {}

    def untag_resource(
        self, ctx: RequestContext, params: shapes.UntagResourceInput
    ) -> shapes.UntagResourceOutput:
        if not params["TagKeys"]:
            raise errors.TagRequiredException("Give at least one tag key to remove.")
        with session_scope() as session:
            arn = _tagged_arn(session, ctx, params["ResourceArn"], writing=True)
            tagging.remove_tags(session, arn, params["TagKeys"], TAG_ERRORS)
        return {}

    def list_tags_for_resource(
        self, ctx: RequestContext, params: shapes.ListTagsForResourceInput
    ) -> shapes.ListTagsForResourceOutput:
        with session_scope(readonly=True) as session:
            try:
                arn = _tagged_arn(session, ctx, params["ResourceArn"], writing=False)
            except NOT_FOUND:
                # The model declares no not-found error here: a resource that does not
                # exist (or is not the caller's) has no tags.
                return {"Tags": []}
            tags = tagging.get_tags(session, arn)
        # At most 50 tags: one page holds them all.
        return {"Tags": [{"Key": key, "Value": value} for key, value in tags.items()]}


def _tagged_arn(session: Session, ctx: RequestContext, resource_arn: str, *, writing: bool) -> str:
    """The ARN a resource's tags are kept under, once the resource is known to exist in
    the caller's account and region."""
    if not resource_arn:
        raise errors.ResourceArnRequiredException("The resource ARN is required.")
    try:
        parsed = arns.parse(resource_arn)
    except arns.MalformedArn as problem:
        raise errors.InvalidArnException(str(problem)) from None
    if parsed.kind not in TAGGABLE:
        raise errors.ArnNotSupportedException(
            f"Tags are supported on applications, deployment groups and deployment "
            f"configurations, not on {parsed.kind} ARNs: {resource_arn}"
        )
    # Another account's or region's resource is as invisible as a missing one.
    elsewhere = parsed.account_id != ctx.account_id or parsed.region != ctx.region
    if parsed.kind == "deploymentconfig":
        return _config_arn(session, ctx, parsed.name, elsewhere, writing)
    if elsewhere:
        raise application_missing(parsed.name)
    application = require_application(session, ctx.account_id, ctx.region, parsed.name)
    if parsed.kind == "application":
        return arns.application_arn(ctx.region, ctx.account_id, application.name)
    group = require_deployment_group(session, application, parsed.group or "")
    return arns.deployment_group_arn(ctx.region, ctx.account_id, application.name, group.name)


def _config_arn(
    session: Session, ctx: RequestContext, name: str, elsewhere: bool, writing: bool
) -> str:
    if not elsewhere and name in configs.PREDEFINED:
        if writing:
            raise errors.ArnNotSupportedException(
                f"The predefined deployment configuration {name} cannot be tagged."
            )
        return arns.deployment_config_arn(ctx.region, ctx.account_id, name)
    row = None if elsewhere else configs.find_custom(session, ctx.account_id, ctx.region, name)
    if row is None:
        raise errors.DeploymentConfigDoesNotExistException(
            f"No deployment configuration named {name} exists with the user or AWS account."
        )
    return arns.deployment_config_arn(ctx.region, ctx.account_id, row.name)
