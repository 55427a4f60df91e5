"""Tags of metric alarms: TagResource, UntagResource, ListTagsForResource.

Forgeline serves alarms only, so an ARN of any other CloudWatch resource (dashboard,
insight rule, metric stream) names nothing here.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from forgeline.cloudwatch import store
from forgeline.cloudwatch.generated import errors, shapes
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.protocol.errors import AwsError

# The tag operations declare InvalidParameterValueException for every bad tag.
TAG_ERRORS = tagging.TagErrors(
    too_many="InvalidParameterValueException",
    reserved_key="InvalidParameterValueException",
    invalid="InvalidParameterValueException",
)
# PutMetricAlarm declares no such error: its tags get the generic validation error.
PUT_ALARM_TAG_ERRORS = tagging.TagErrors(
    too_many="ValidationException",
    reserved_key="ValidationException",
    invalid="ValidationException",
)


class TagOperations:
    def tag_resource(
        self, ctx: RequestContext, params: shapes.TagResourceInput
    ) -> shapes.TagResourceOutput:
        tags = tag_map(params["Tags"], TAG_ERRORS)
        with session_scope() as session:
            arn = _alarm_arn(session, ctx, params["ResourceARN"])
            tagging.put_tags(session, ctx.account_id, arn, tags, TAG_ERRORS)
        return {}

    def untag_resource(
        self, ctx: RequestContext, params: shapes.UntagResourceInput
    ) -> shapes.UntagResourceOutput:
        with session_scope() as session:
            arn = _alarm_arn(session, ctx, params["ResourceARN"])
            tagging.remove_tags(session, arn, params["TagKeys"], TAG_ERRORS)
        return {}

    def list_tags_for_resource(
        self, ctx: RequestContext, params: shapes.ListTagsForResourceInput
    ) -> shapes.ListTagsForResourceOutput:
        with session_scope(readonly=True) as session:
            arn = _alarm_arn(session, ctx, params["ResourceARN"])
            tags = tagging.get_tags(session, arn)
        return {"Tags": [{"Key": key, "Value": value} for key, value in tags.items()]}


def tag_map(tags: list[shapes.Tag], tag_errors: tagging.TagErrors) -> dict[str, str]:
    """A Tags list as a mapping; the same key twice is refused."""
    mapped: dict[str, str] = {}
    for tag in tags:
        if tag["Key"] in mapped:
            raise AwsError(
                f"Tag key {tag['Key']!r} is given more than once.", code=tag_errors.invalid
            )
        mapped[tag["Key"]] = tag["Value"]
    return mapped


def _alarm_arn(session: Session, ctx: RequestContext, resource_arn: str) -> str:
    """The ARN of the caller's alarm that `resource_arn` names."""
    parts = resource_arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "cloudwatch":
        raise errors.InvalidParameterValueException(
            f"{resource_arn} is not a CloudWatch ARN "
            "(arn:aws:cloudwatch:<region>:<account>:alarm:<name>)."
        )
    region, account_id, resource = parts[3], parts[4], parts[5]
    alarm = None
    if resource.startswith("alarm:") and (region, account_id) == (ctx.region, ctx.account_id):
        alarm = store.find_alarm(session, ctx.account_id, ctx.region, resource[len("alarm:") :])
    if alarm is None:
        raise errors.ResourceNotFoundException(f"No alarm has the ARN {resource_arn}.")
    return alarm.arn
