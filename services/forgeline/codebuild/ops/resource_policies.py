"""CodeBuild resource policies: one JSON policy per project or report group ARN.

Forgeline stores and returns the policy; it does not yet evaluate it for
cross-account access (ListSharedProjects answers nothing shared).
"""

from __future__ import annotations

import json

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from forgeline.codebuild import projects
from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.tables.source_credentials import ResourcePolicy
from forgeline.core.context import RequestContext
from forgeline.core.db import Base, session_scope, utcnow

RESOURCE_KINDS = ("project", "report-group")


def delete_policy(session: Session, resource_arn: str) -> None:
    session.execute(delete(ResourcePolicy).where(ResourcePolicy.resource_arn == resource_arn))


def _parse_arn(ctx: RequestContext, arn: str) -> tuple[str, str]:
    """(kind, name) of a project or report group ARN of the caller's account/region."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "codebuild"]:
        raise errors.InvalidInputException(
            f"Invalid input: {arn!r} is not the ARN of a project or report group"
        )
    kind, _, name = parts[5].partition("/")
    if kind not in RESOURCE_KINDS or not name:
        raise errors.InvalidInputException(
            f"Invalid input: {arn!r} is not the ARN of a project or report group"
        )
    if parts[3] != ctx.region or parts[4] != ctx.account_id:
        raise errors.ResourceNotFoundException(f"Resource not found: {arn}")
    return kind, name


def _resource_exists(session: Session, ctx: RequestContext, arn: str) -> bool:
    kind, name = _parse_arn(ctx, arn)
    if kind == "project":
        return projects.find_project(session, ctx.account_id, ctx.region, name) is not None
    # Report groups are another module's table; look it up when it is loaded.
    table = Base.metadata.tables.get("build_report_groups")
    if table is None or "arn" not in table.c:
        return True
    return session.execute(select(table.c.arn).where(table.c.arn == arn)).first() is not None


def _check_policy(policy: str) -> None:
    try:
        document = json.loads(policy)
    except ValueError:
        raise errors.InvalidInputException("Invalid input: policy is not valid JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("Statement"), list | dict):
        raise errors.InvalidInputException(
            "Invalid input: policy must be a JSON policy document with a Statement"
        )


class ResourcePolicyOperations:
    def put_resource_policy(
        self, ctx: RequestContext, params: shapes.PutResourcePolicyInput
    ) -> shapes.PutResourcePolicyOutput:
        arn, policy = params["resourceArn"], params["policy"]
        _check_policy(policy)
        with session_scope() as session:
            if not _resource_exists(session, ctx, arn):
                raise errors.ResourceNotFoundException(f"Resource not found: {arn}")
            session.merge(
                ResourcePolicy(
                    resource_arn=arn,
                    account_id=ctx.account_id,
                    region=ctx.region,
                    policy=policy,
                    updated_at=utcnow(),
                )
            )
        return {"resourceArn": arn}

    def get_resource_policy(
        self, ctx: RequestContext, params: shapes.GetResourcePolicyInput
    ) -> shapes.GetResourcePolicyOutput:
        arn = params["resourceArn"]
        _parse_arn(ctx, arn)
        with session_scope(readonly=True) as session:
            row = session.get(ResourcePolicy, arn)
            if row is None or row.account_id != ctx.account_id:
                raise errors.ResourceNotFoundException(f"Resource policy not found: {arn}")
            return {"policy": row.policy}

    def delete_resource_policy(
        self, ctx: RequestContext, params: shapes.DeleteResourcePolicyInput
    ) -> shapes.DeleteResourcePolicyOutput:
        arn = params["resourceArn"]
        try:
            _parse_arn(ctx, arn)
        except errors.ResourceNotFoundException:
            return {}  # another account's resource: nothing of ours to delete
        with session_scope() as session:
            delete_policy(session, arn)
        return {}
