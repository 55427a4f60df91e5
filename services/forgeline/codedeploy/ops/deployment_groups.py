"""Deployment groups: CreateDeploymentGroup, GetDeploymentGroup, BatchGetDeploymentGroups,
ListDeploymentGroups, UpdateDeploymentGroup (with rename) and DeleteDeploymentGroup.

The rules of each member are group_rules'; this module checks what needs the database
(the application, the config and its platform, names taken, ECS services in use)."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.codedeploy import arns, configs, group_rules, revisions
from forgeline.codedeploy.generated import errors, shapes
from forgeline.codedeploy.ops.lookups import (
    application_name_param,
    find_application,
    find_deployment_group,
    groups_of,
    require_application,
    require_config,
    require_deployment_group,
)
from forgeline.codedeploy.ops.tags import TAG_ERRORS, move_tags, put_resource_tags, tags_from_list
from forgeline.codedeploy.tables.applications import Application
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens

# AWS's quota of deployment groups per application.
MAX_GROUPS_PER_APPLICATION = 1000
MAX_BATCH = 100
LIST_PAGE_SIZE = 100


def group_output(application: Application, group: DeploymentGroup) -> shapes.DeploymentGroupInfo:
    """The group as GetDeploymentGroup answers it."""
    document = group.document
    output = cast(
        shapes.DeploymentGroupInfo,
        {member: value for member, value in document.items() if member != "autoScalingGroups"},
    )
    output.update(
        {
            "applicationName": application.name,
            "deploymentGroupId": group.id,
            "deploymentGroupName": group.name,
            "deploymentConfigName": group.deployment_config_name,
            "serviceRoleArn": group.service_role_arn,
            "computePlatform": application.compute_platform,
            "autoScalingGroups": [{"name": name} for name in document.get("autoScalingGroups", [])],
        }
    )
    if group.target_revision is not None:
        output["targetRevision"] = cast(shapes.RevisionLocation, group.target_revision)
    if group.last_successful_deployment is not None:
        output["lastSuccessfulDeployment"] = cast(
            shapes.LastDeploymentInfo, group.last_successful_deployment
        )
    if group.last_attempted_deployment is not None:
        output["lastAttemptedDeployment"] = cast(
            shapes.LastDeploymentInfo, group.last_attempted_deployment
        )
    return output


def already_exists(
    application: Application, name: str
) -> errors.DeploymentGroupAlreadyExistsException:
    return errors.DeploymentGroupAlreadyExistsException(
        f"A deployment group named {name} already exists for application {application.name}."
    )


class DeploymentGroupOperations:
    def create_deployment_group(
        self, ctx: RequestContext, params: shapes.CreateDeploymentGroupInput
    ) -> shapes.CreateDeploymentGroupOutput:
        name = params["deploymentGroupName"]
        role = group_rules.check_role_arn(params["serviceRoleArn"])
        tags = params.get("tags") or []
        tagging.validate_tags(tags_from_list(tags), TAG_ERRORS)
        try:
            with session_scope() as session:
                application = require_application(
                    session, ctx.account_id, ctx.region, params["applicationName"]
                )
                if find_deployment_group(session, application, name) is not None:
                    raise already_exists(application, name)
                if _group_count(session, application) >= MAX_GROUPS_PER_APPLICATION:
                    raise errors.DeploymentGroupLimitExceededException(
                        f"An application can have at most {MAX_GROUPS_PER_APPLICATION} "
                        "deployment groups."
                    )
                config_name = _config_for(
                    session, ctx, application, params.get("deploymentConfigName")
                )
                document = group_rules.normalize_group(
                    params,
                    application.compute_platform,
                    ctx.region,
                    ecs_services_in_use=_ecs_services_in_use(session, ctx, exclude=None),
                )
                group = DeploymentGroup(
                    id=str(uuid.uuid4()),
                    application_id=application.id,
                    account_id=ctx.account_id,
                    region=ctx.region,
                    name=name,
                    deployment_config_name=config_name,
                    service_role_arn=role,
                    document=document,
                    created_at=utcnow(),
                )
                session.add(group)
                session.flush()
                arn = arns.deployment_group_arn(ctx.region, ctx.account_id, application.name, name)
                put_resource_tags(session, ctx.account_id, arn, tags)
                return {"deploymentGroupId": group.id}
        except IntegrityError:
            raise errors.DeploymentGroupAlreadyExistsException(
                f"A deployment group named {name} already exists for application "
                f"{params['applicationName']}."
            ) from None

    def get_deployment_group(
        self, ctx: RequestContext, params: shapes.GetDeploymentGroupInput
    ) -> shapes.GetDeploymentGroupOutput:
        with session_scope(readonly=True) as session:
            application = require_application(
                session, ctx.account_id, ctx.region, params["applicationName"]
            )
            group = require_deployment_group(session, application, params["deploymentGroupName"])
            return {"deploymentGroupInfo": group_output(application, group)}

    def batch_get_deployment_groups(
        self, ctx: RequestContext, params: shapes.BatchGetDeploymentGroupsInput
    ) -> shapes.BatchGetDeploymentGroupsOutput:
        names = list(dict.fromkeys(params["deploymentGroupNames"]))
        if len(names) > MAX_BATCH:
            raise errors.BatchLimitExceededException(
                f"BatchGetDeploymentGroups takes at most {MAX_BATCH} deployment group names."
            )
        with session_scope(readonly=True) as session:
            application = require_application(
                session, ctx.account_id, ctx.region, params["applicationName"]
            )
            groups = {group.name: group for group in groups_of(session, application)}
            infos = [group_output(application, groups[name]) for name in names if name in groups]
            output: shapes.BatchGetDeploymentGroupsOutput = {"deploymentGroupsInfo": infos}
            missing = [name for name in names if name not in groups]
            if missing:
                output["errorMessage"] = (
                    f"Deployment groups not found for application {application.name}: "
                    + ", ".join(missing)
                )
        return output

    def list_deployment_groups(
        self, ctx: RequestContext, params: shapes.ListDeploymentGroupsInput
    ) -> shapes.ListDeploymentGroupsOutput:
        with session_scope(readonly=True) as session:
            application = require_application(
                session, ctx.account_id, ctx.region, params["applicationName"]
            )
            names = [group.name for group in groups_of(session, application)]
        page, token = request_page_tokens(ctx).page(
            names,
            lambda name: name,
            {"application": application.id},
            params.get("nextToken"),
            LIST_PAGE_SIZE,
        )
        output: shapes.ListDeploymentGroupsOutput = {
            "applicationName": application.name,
            "deploymentGroups": page,
        }
        if token:
            output["nextToken"] = token
        return output

    def update_deployment_group(
        self, ctx: RequestContext, params: shapes.UpdateDeploymentGroupInput
    ) -> shapes.UpdateDeploymentGroupOutput:
        application_name = application_name_param(params.get("applicationName"))
        new_name = params.get("newDeploymentGroupName")
        role = params.get("serviceRoleArn")
        if role is not None:
            group_rules.check_role_arn(role)
        try:
            with session_scope() as session:
                application = require_application(
                    session, ctx.account_id, ctx.region, application_name
                )
                group = require_deployment_group(
                    session, application, params["currentDeploymentGroupName"], for_update=True
                )
                if "deploymentConfigName" in params:
                    group.deployment_config_name = _config_for(
                        session, ctx, application, params["deploymentConfigName"]
                    )
                if role is not None:
                    group.service_role_arn = role
                group.document = group_rules.normalize_group(
                    params,
                    application.compute_platform,
                    ctx.region,
                    current=group.document,
                    ecs_services_in_use=_ecs_services_in_use(session, ctx, exclude=group.id),
                )
                if new_name and new_name != group.name:
                    _rename(session, ctx, application, group, new_name)
                session.flush()
        except IntegrityError:
            raise errors.DeploymentGroupAlreadyExistsException(
                f"A deployment group named {new_name} already exists for application "
                f"{application_name}."
            ) from None
        # Forgeline installs no Auto Scaling lifecycle hooks, so none is ever left behind.
        return {"hooksNotCleanedUp": []}

    def delete_deployment_group(
        self, ctx: RequestContext, params: shapes.DeleteDeploymentGroupInput
    ) -> shapes.DeleteDeploymentGroupOutput:
        # Deleting a group that does not exist, even of an application that does not,
        # succeeds: the model declares no not-found error for DeleteDeploymentGroup.
        with session_scope() as session:
            application = find_application(
                session, ctx.account_id, ctx.region, params["applicationName"]
            )
            group = (
                find_deployment_group(
                    session, application, params["deploymentGroupName"], for_update=True
                )
                if application is not None
                else None
            )
            if application is not None and group is not None:
                tagging.delete_all_tags(
                    session,
                    arns.deployment_group_arn(
                        ctx.region, ctx.account_id, application.name, group.name
                    ),
                )
                session.delete(group)
        return {"hooksNotCleanedUp": []}


def _group_count(session: Session, application: Application) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(DeploymentGroup)
        .where(DeploymentGroup.application_id == application.id)
    )
    return count or 0


def _config_for(
    session: Session, ctx: RequestContext, application: Application, name: str | None
) -> str:
    """The config a group uses: the one named (which must exist and fit the application's
    compute platform), else the platform's default."""
    if not name:
        return configs.DEFAULT_CONFIG[application.compute_platform]
    info = require_config(session, ctx.account_id, ctx.region, name)
    if info.compute_platform != application.compute_platform:
        raise errors.InvalidDeploymentConfigNameException(
            f"The deployment configuration {name} is for the {info.compute_platform} compute "
            f"platform; application {application.name} deploys to {application.compute_platform}."
        )
    return info.name


def _ecs_services_in_use(
    session: Session, ctx: RequestContext, exclude: str | None
) -> set[tuple[str, str]]:
    """The (cluster, service) pairs the account's other deployment groups deploy to."""
    documents = session.scalars(
        select(DeploymentGroup.document).where(
            DeploymentGroup.account_id == ctx.account_id,
            DeploymentGroup.region == ctx.region,
            DeploymentGroup.id != (exclude or ""),
        )
    )
    in_use: set[tuple[str, str]] = set()
    for document in documents:
        services: list[dict[str, Any]] = document.get("ecsServices") or []
        in_use.update(
            (service.get("clusterName", ""), service.get("serviceName", "")) for service in services
        )
    return in_use


def _rename(
    session: Session,
    ctx: RequestContext,
    application: Application,
    group: DeploymentGroup,
    new_name: str,
) -> None:
    if find_deployment_group(session, application, new_name) is not None:
        raise already_exists(application, new_name)
    move_tags(
        session,
        arns.deployment_group_arn(ctx.region, ctx.account_id, application.name, group.name),
        arns.deployment_group_arn(ctx.region, ctx.account_id, application.name, new_name),
    )
    revisions.rename_group_in_revisions(session, application, group.name, new_name)
    group.name = new_name
