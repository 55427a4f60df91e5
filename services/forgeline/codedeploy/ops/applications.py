"""Applications: CreateApplication, GetApplication, BatchGetApplications, ListApplications,
UpdateApplication (rename) and DeleteApplication (with its groups and revisions)."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.codedeploy import arns
from forgeline.codedeploy.generated import errors, shapes
from forgeline.codedeploy.ops.lookups import (
    application_name_param,
    find_application,
    groups_of,
    require_application,
)
from forgeline.codedeploy.ops.tags import TAG_ERRORS, move_tags, put_resource_tags, tags_from_list
from forgeline.codedeploy.tables.applications import Application, ApplicationRevision
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens

# AWS's quota of applications per account and region.
MAX_APPLICATIONS = 1000
# BatchGetApplications takes at most this many names.
MAX_BATCH = 100
LIST_PAGE_SIZE = 100


def application_info(application: Application) -> shapes.ApplicationInfo:
    info: shapes.ApplicationInfo = {
        "applicationId": application.id,
        "applicationName": application.name,
        "createTime": application.created_at,
        "linkedToGitHub": application.linked_to_github,
        "computePlatform": application.compute_platform,
    }
    if application.github_account_name:
        info["gitHubAccountName"] = application.github_account_name
    return info


def already_exists(name: str) -> errors.ApplicationAlreadyExistsException:
    return errors.ApplicationAlreadyExistsException(
        f"An application named {name} already exists with the user or AWS account."
    )


class ApplicationOperations:
    def create_application(
        self, ctx: RequestContext, params: shapes.CreateApplicationInput
    ) -> shapes.CreateApplicationOutput:
        name = params["applicationName"]
        tags = params.get("tags") or []
        tagging.validate_tags(tags_from_list(tags), TAG_ERRORS)
        try:
            with session_scope() as session:
                if find_application(session, ctx.account_id, ctx.region, name) is not None:
                    raise already_exists(name)
                if _application_count(session, ctx) >= MAX_APPLICATIONS:
                    raise errors.ApplicationLimitExceededException(
                        f"An account can have at most {MAX_APPLICATIONS} applications per region."
                    )
                application = Application(
                    id=str(uuid.uuid4()),
                    account_id=ctx.account_id,
                    region=ctx.region,
                    name=name,
                    compute_platform=params.get("computePlatform", "Server"),
                    created_at=utcnow(),
                    linked_to_github=False,
                )
                session.add(application)
                session.flush()
                arn = arns.application_arn(ctx.region, ctx.account_id, name)
                put_resource_tags(session, ctx.account_id, arn, tags)
                return {"applicationId": application.id}
        except IntegrityError:
            # A concurrent CreateApplication of the same name won the unique constraint.
            raise already_exists(name) from None

    def get_application(
        self, ctx: RequestContext, params: shapes.GetApplicationInput
    ) -> shapes.GetApplicationOutput:
        with session_scope(readonly=True) as session:
            application = require_application(
                session, ctx.account_id, ctx.region, params["applicationName"]
            )
            return {"application": application_info(application)}

    def batch_get_applications(
        self, ctx: RequestContext, params: shapes.BatchGetApplicationsInput
    ) -> shapes.BatchGetApplicationsOutput:
        names = list(dict.fromkeys(params["applicationNames"]))
        if len(names) > MAX_BATCH:
            raise errors.BatchLimitExceededException(
                f"BatchGetApplications takes at most {MAX_BATCH} application names."
            )
        with session_scope(readonly=True) as session:
            rows = session.scalars(
                select(Application).where(
                    Application.account_id == ctx.account_id,
                    Application.region == ctx.region,
                    Application.name.in_(names),
                )
            )
            found = {row.name: application_info(row) for row in rows}
        missing = [name for name in names if name not in found]
        if missing:
            raise errors.ApplicationDoesNotExistException(
                f"Applications not found with the user or AWS account: {', '.join(missing)}"
            )
        return {"applicationsInfo": [found[name] for name in names]}

    def list_applications(
        self, ctx: RequestContext, params: shapes.ListApplicationsInput
    ) -> shapes.ListApplicationsOutput:
        with session_scope(readonly=True) as session:
            names = list(
                session.scalars(
                    select(Application.name)
                    .where(
                        Application.account_id == ctx.account_id,
                        Application.region == ctx.region,
                    )
                    .order_by(Application.name)
                )
            )
        page, token = request_page_tokens(ctx).page(
            names, lambda name: name, {}, params.get("nextToken"), LIST_PAGE_SIZE
        )
        output: shapes.ListApplicationsOutput = {"applications": page}
        if token:
            output["nextToken"] = token
        return output

    def update_application(
        self, ctx: RequestContext, params: shapes.UpdateApplicationInput
    ) -> None:
        name = application_name_param(params.get("applicationName"))
        new_name = params.get("newApplicationName")
        if not new_name:
            raise errors.ApplicationNameRequiredException(
                "UpdateApplication needs the new application name (newApplicationName)."
            )
        try:
            with session_scope() as session:
                application = require_application(
                    session, ctx.account_id, ctx.region, name, for_update=True
                )
                if new_name == application.name:
                    return
                if find_application(session, ctx.account_id, ctx.region, new_name) is not None:
                    raise already_exists(new_name)
                _rename(session, ctx, application, new_name)
        except IntegrityError:
            raise already_exists(new_name) from None

    def delete_application(
        self, ctx: RequestContext, params: shapes.DeleteApplicationInput
    ) -> None:
        # Deleting an application that does not exist succeeds, as on AWS.
        with session_scope() as session:
            application = find_application(
                session, ctx.account_id, ctx.region, params["applicationName"], for_update=True
            )
            if application is None:
                return
            for group in groups_of(session, application):
                tagging.delete_all_tags(
                    session,
                    arns.deployment_group_arn(
                        ctx.region, ctx.account_id, application.name, group.name
                    ),
                )
            tagging.delete_all_tags(
                session, arns.application_arn(ctx.region, ctx.account_id, application.name)
            )
            session.execute(
                delete(DeploymentGroup).where(DeploymentGroup.application_id == application.id)
            )
            session.execute(
                delete(ApplicationRevision).where(
                    ApplicationRevision.application_id == application.id
                )
            )
            session.delete(application)


def _application_count(session: Session, ctx: RequestContext) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(Application)
        .where(Application.account_id == ctx.account_id, Application.region == ctx.region)
    )
    return count or 0


def _rename(session: Session, ctx: RequestContext, application: Application, new_name: str) -> None:
    """Rename the application; its tags and its groups' tags follow the new ARNs."""
    old_name = application.name
    move_tags(
        session,
        arns.application_arn(ctx.region, ctx.account_id, old_name),
        arns.application_arn(ctx.region, ctx.account_id, new_name),
    )
    for group in groups_of(session, application):
        move_tags(
            session,
            arns.deployment_group_arn(ctx.region, ctx.account_id, old_name, group.name),
            arns.deployment_group_arn(ctx.region, ctx.account_id, new_name, group.name),
        )
    application.name = new_name
    session.flush()
