"""Deployment configurations: CreateDeploymentConfig, GetDeploymentConfig,
ListDeploymentConfigs (predefined and custom) and DeleteDeploymentConfig."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from forgeline.codedeploy import arns, configs
from forgeline.codedeploy.generated import errors, shapes
from forgeline.codedeploy.ops.lookups import require_config
from forgeline.codedeploy.orchestrator.state import FINAL_STATUSES
from forgeline.codedeploy.tables.deployment_configs import DeploymentConfig
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.codedeploy.tables.deployments import Deployment
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens

LIST_PAGE_SIZE = 100


def already_exists(name: str) -> errors.DeploymentConfigAlreadyExistsException:
    return errors.DeploymentConfigAlreadyExistsException(
        f"A deployment configuration named {name} already exists with the user or AWS account."
    )


class DeploymentConfigOperations:
    def create_deployment_config(
        self, ctx: RequestContext, params: shapes.CreateDeploymentConfigInput
    ) -> shapes.CreateDeploymentConfigOutput:
        name = params["deploymentConfigName"]
        new = configs.check_new_config(params)
        try:
            with session_scope() as session:
                if configs.find(session, ctx.account_id, ctx.region, name) is not None:
                    raise already_exists(name)
                count = session.scalar(
                    select(func.count())
                    .select_from(DeploymentConfig)
                    .where(
                        DeploymentConfig.account_id == ctx.account_id,
                        DeploymentConfig.region == ctx.region,
                    )
                )
                if (count or 0) >= configs.MAX_CUSTOM_CONFIGS:
                    raise errors.DeploymentConfigLimitExceededException(
                        f"An account can have at most {configs.MAX_CUSTOM_CONFIGS} custom "
                        "deployment configurations per region."
                    )
                row = DeploymentConfig(
                    id=str(uuid.uuid4()),
                    account_id=ctx.account_id,
                    region=ctx.region,
                    name=name,
                    compute_platform=new.compute_platform,
                    minimum_healthy_hosts=dict(new.minimum_healthy_hosts or {}) or None,
                    traffic_routing_config=dict(new.traffic_routing_config or {}) or None,
                    zonal_config=dict(new.zonal_config or {}) or None,
                    created_at=utcnow(),
                )
                session.add(row)
                session.flush()
                return {"deploymentConfigId": row.id}
        except IntegrityError:
            raise already_exists(name) from None

    def get_deployment_config(
        self, ctx: RequestContext, params: shapes.GetDeploymentConfigInput
    ) -> shapes.GetDeploymentConfigOutput:
        with session_scope(readonly=True) as session:
            info = require_config(
                session, ctx.account_id, ctx.region, params["deploymentConfigName"]
            )
        return {"deploymentConfigInfo": configs.config_output(info)}

    def list_deployment_configs(
        self, ctx: RequestContext, params: shapes.ListDeploymentConfigsInput
    ) -> shapes.ListDeploymentConfigsOutput:
        with session_scope(readonly=True) as session:
            custom = list(
                session.scalars(
                    select(DeploymentConfig.name).where(
                        DeploymentConfig.account_id == ctx.account_id,
                        DeploymentConfig.region == ctx.region,
                    )
                )
            )
        names = sorted([*configs.PREDEFINED, *custom])
        page, token = request_page_tokens(ctx).page(
            names, lambda name: name, {}, params.get("nextToken"), LIST_PAGE_SIZE
        )
        output: shapes.ListDeploymentConfigsOutput = {"deploymentConfigsList": page}
        if token:
            output["nextToken"] = token
        return output

    def delete_deployment_config(
        self, ctx: RequestContext, params: shapes.DeleteDeploymentConfigInput
    ) -> None:
        name = params["deploymentConfigName"]
        if name in configs.PREDEFINED:
            raise errors.InvalidDeploymentConfigNameException(
                f"{name} is a predefined deployment configuration and cannot be deleted."
            )
        with session_scope() as session:
            row = configs.find_custom(session, ctx.account_id, ctx.region, name)
            if row is None:
                # Deleting a configuration that does not exist succeeds, as on AWS.
                return
            user = session.scalars(
                select(DeploymentGroup.name).where(
                    DeploymentGroup.account_id == ctx.account_id,
                    DeploymentGroup.region == ctx.region,
                    DeploymentGroup.deployment_config_name == name,
                )
            ).first()
            if user is not None:
                raise errors.DeploymentConfigInUseException(
                    f"The deployment configuration {name} is still used by deployment group "
                    f"{user}; give that group another configuration first."
                )
            running = session.scalars(
                select(Deployment.id).where(
                    Deployment.account_id == ctx.account_id,
                    Deployment.region == ctx.region,
                    Deployment.deployment_config_name == name,
                    Deployment.deployment_status.not_in(FINAL_STATUSES),
                )
            ).first()
            if running is not None:
                raise errors.DeploymentConfigInUseException(
                    f"The deployment configuration {name} is in use by deployment {running}, "
                    "which has not finished."
                )
            tagging.delete_all_tags(
                session, arns.deployment_config_arn(ctx.region, ctx.account_id, name)
            )
            session.delete(row)
