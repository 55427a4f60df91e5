"""Log groups: CreateLogGroup, DeleteLogGroup, DescribeLogGroups."""

from __future__ import annotations

from typing import Any

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import request_page_tokens
from forgeline.logs import store as logstore
from forgeline.logs.generated import errors, shapes
from forgeline.logs.ops.lookups import epoch_ms, group_name_of, require_group
from forgeline.logs.ops.tags import TAG_ERRORS
from forgeline.logs.tables import LogGroup

DESCRIBE_PAGE_SIZE = 50


class GroupOperations:
    def create_log_group(self, ctx: RequestContext, params: shapes.CreateLogGroupRequest) -> None:
        name = params["logGroupName"]
        if name.startswith("aws/"):
            raise errors.InvalidParameterException(
                "Log group names can't start with the string aws/ (reserved for AWS services)."
            )
        tags = params.get("tags") or {}
        tagging.validate_tags(tags, TAG_ERRORS)
        with session_scope() as session:
            try:
                group = logstore.create_group(
                    session,
                    ctx.account_id,
                    ctx.region,
                    name,
                    log_group_class=params.get("logGroupClass", "STANDARD"),
                    kms_key_id=params.get("kmsKeyId"),
                    deletion_protection=bool(params.get("deletionProtectionEnabled", False)),
                )
            except logstore.AlreadyExists:
                raise errors.ResourceAlreadyExistsException(
                    "The specified log group already exists"
                ) from None
            if tags:
                arn = logstore.group_arn(group.region, group.account_id, group.name)
                tagging.put_tags(session, ctx.account_id, arn, tags, TAG_ERRORS)

    def delete_log_group(self, ctx: RequestContext, params: shapes.DeleteLogGroupRequest) -> None:
        with session_scope() as session:
            group = require_group(session, ctx, params["logGroupName"])
            if group.deletion_protection:
                raise errors.ValidationException(
                    f"Log group {group.name} has deletion protection enabled; turn it off "
                    "before deleting the group."
                )
            logstore.delete_group(session, group)
            tagging.delete_all_tags(
                session, logstore.group_arn(group.region, group.account_id, group.name)
            )

    def describe_log_groups(
        self, ctx: RequestContext, params: shapes.DescribeLogGroupsRequest
    ) -> shapes.DescribeLogGroupsResponse:
        prefix = params.get("logGroupNamePrefix")
        pattern = params.get("logGroupNamePattern")
        identifiers = params.get("logGroupIdentifiers")
        group_class = params.get("logGroupClass")
        if sum(value is not None for value in (prefix, pattern, identifiers)) > 1:
            raise errors.InvalidParameterException(
                "logGroupNamePrefix, logGroupNamePattern and logGroupIdentifiers are "
                "mutually exclusive parameters."
            )
        with session_scope(readonly=True) as session:
            groups = logstore.list_groups(session, ctx.account_id, ctx.region, prefix)
            if pattern:
                # CloudWatch matches the pattern anywhere in the name, ignoring case.
                needle = pattern.lower()
                groups = [group for group in groups if needle in group.name.lower()]
            if identifiers is not None:
                wanted = {group_name_of(ctx, identifier) for identifier in identifiers}
                groups = [group for group in groups if group.name in wanted]
            if group_class:
                groups = [group for group in groups if group.log_group_class == group_class]
            scope: dict[str, Any] = {
                "prefix": prefix,
                "pattern": pattern,
                "identifiers": sorted(identifiers or []),
                "class": group_class,
            }
            page, token = request_page_tokens(ctx).page(
                groups,
                lambda group: group.name,
                scope,
                params.get("nextToken"),
                params.get("limit", DESCRIBE_PAGE_SIZE),
            )
            sizes = logstore.stored_bytes_of_groups(session, [group.id for group in page])
        output: shapes.DescribeLogGroupsResponse = {
            "logGroups": [_group_output(group, sizes[group.id]) for group in page]
        }
        if token:
            output["nextToken"] = token
        return output


def _group_output(group: LogGroup, stored_bytes: int) -> shapes.LogGroup:
    arn = logstore.group_arn(group.region, group.account_id, group.name)
    output: shapes.LogGroup = {
        "logGroupName": group.name,
        "creationTime": epoch_ms(group.created_at),
        "metricFilterCount": 0,
        "arn": f"{arn}:*",
        "storedBytes": stored_bytes,
        "logGroupClass": group.log_group_class,
        "logGroupArn": arn,
        "deletionProtectionEnabled": group.deletion_protection,
    }
    if group.kms_key_id:
        output["kmsKeyId"] = group.kms_key_id
    return output
