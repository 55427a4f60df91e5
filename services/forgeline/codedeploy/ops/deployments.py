"""Deployments: CreateDeployment, Get/BatchGet/ListDeployments, StopDeployment,
ContinueDeployment, SkipWaitTimeForInstanceTermination, their instances and targets, and
PutLifecycleEventHookExecutionStatus.

Creating one only records it (status Created) and queues its start; the driver
(codedeploy/deploying/) runs it from there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy import revision_rules
from forgeline.codedeploy.deploying import creation, driver, reactions
from forgeline.codedeploy.generated import errors, shapes
from forgeline.codedeploy.ops import deployment_views as views
from forgeline.codedeploy.ops.lookups import (
    application_name_param,
    deployment_group_name_param,
    require_application,
    require_config,
    require_deployment_group,
)
from forgeline.codedeploy.orchestrator.blue_green import TERMINATING, WAITING_READY
from forgeline.codedeploy.orchestrator.events import ContinueRequested, HookReported
from forgeline.codedeploy.orchestrator.lifecycle import READY_WAIT, TERMINATION_WAIT
from forgeline.codedeploy.orchestrator.options import BLUE_GREEN
from forgeline.codedeploy.orchestrator.state import FINAL_STATUSES, DeploymentState
from forgeline.codedeploy.orchestrator.traffic_shift import hook_event
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.codedeploy.tables.deployments import Deployment, DeploymentInstance
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import request_page_tokens
from forgeline.core.protocol.errors import AwsError

BATCH_LIMIT = 25
PAGE_SIZE = 100
MAX_DESCRIPTION = 1024  # CodeDeploy's limit on a deployment's description
_DEPLOYMENT_ID = re.compile(r"d-[A-Z0-9]{9}")
_STATUSES = frozenset(
    {"Created", "Queued", "InProgress", "Baking", "Succeeded", "Failed", "Stopped", "Ready"}
)
_TARGET_STATUSES = frozenset(
    {"Pending", "InProgress", "Succeeded", "Failed", "Skipped", "Unknown", "Ready"}
)


def _deployment_id_param(value: str | None) -> str:
    if not value:
        raise errors.DeploymentIdRequiredException("A deployment ID is required.")
    if not _DEPLOYMENT_ID.fullmatch(value):
        raise errors.InvalidDeploymentIdException(
            f"{value} is not a valid deployment ID (d- followed by nine letters or digits)."
        )
    return value


def _find(session: Session, ctx: RequestContext, deployment_id: str) -> Deployment | None:
    return session.scalars(
        select(Deployment).where(
            Deployment.id == deployment_id,
            Deployment.account_id == ctx.account_id,
            Deployment.region == ctx.region,
        )
    ).first()


def _require(session: Session, ctx: RequestContext, deployment_id: str | None) -> Deployment:
    checked = _deployment_id_param(deployment_id)
    deployment = _find(session, ctx, checked)
    if deployment is None:
        raise errors.DeploymentDoesNotExistException(
            f"The deployment {checked} could not be found."
        )
    return deployment


def _instances(session: Session, deployment: Deployment) -> list[DeploymentInstance]:
    return list(
        session.scalars(
            select(DeploymentInstance)
            .where(DeploymentInstance.deployment_id == deployment.id)
            .order_by(DeploymentInstance.instance_name)
        )
    )


class DeploymentOperations:
    def create_deployment(
        self, ctx: RequestContext, params: shapes.CreateDeploymentInput
    ) -> shapes.CreateDeploymentOutput:
        with session_scope() as session:
            deployment = create_deployment_in(session, ctx, params)
            return {"deploymentId": deployment.id}

    def get_deployment(
        self, ctx: RequestContext, params: shapes.GetDeploymentInput
    ) -> shapes.GetDeploymentOutput:
        with session_scope(readonly=True) as session:
            deployment = _require(session, ctx, params.get("deploymentId"))
            group = session.get(DeploymentGroup, deployment.deployment_group_id)
            return {"deploymentInfo": views.deployment_info(deployment, group)}

    def batch_get_deployments(
        self, ctx: RequestContext, params: shapes.BatchGetDeploymentsInput
    ) -> shapes.BatchGetDeploymentsOutput:
        ids = params.get("deploymentIds") or []
        if not ids:
            raise errors.DeploymentIdRequiredException("At least one deployment ID is required.")
        if len(ids) > BATCH_LIMIT:
            raise errors.BatchLimitExceededException(
                f"At most {BATCH_LIMIT} deployment IDs can be given; got {len(ids)}."
            )
        infos: list[shapes.DeploymentInfo] = []
        with session_scope(readonly=True) as session:
            for deployment_id in dict.fromkeys(ids):
                deployment = _find(session, ctx, _deployment_id_param(deployment_id))
                if deployment is not None:
                    group = session.get(DeploymentGroup, deployment.deployment_group_id)
                    infos.append(views.deployment_info(deployment, group))
        return {"deploymentsInfo": infos}

    def list_deployments(
        self, ctx: RequestContext, params: shapes.ListDeploymentsInput
    ) -> shapes.ListDeploymentsOutput:
        app_name = params.get("applicationName")
        group_name = params.get("deploymentGroupName")
        if group_name and not app_name:
            raise errors.ApplicationNameRequiredException(
                "An application name is required to list a deployment group's deployments."
            )
        if app_name and not group_name:
            raise errors.DeploymentGroupNameRequiredException(
                "A deployment group name is required with an application name."
            )
        statuses = params.get("includeOnlyStatuses") or []
        unknown = sorted(set(statuses) - _STATUSES)
        if unknown:
            raise errors.InvalidDeploymentStatusException(
                f"Unknown deployment status: {unknown[0]}."
            )
        time_range = params.get("createTimeRange") or {}
        start, end = time_range.get("start"), time_range.get("end")
        if start and end and start > end:
            raise errors.InvalidTimeRangeException("The time range's start is after its end.")
        with session_scope(readonly=True) as session:
            query = select(Deployment).where(
                Deployment.account_id == ctx.account_id, Deployment.region == ctx.region
            )
            if app_name and group_name:
                application = require_application(session, ctx.account_id, ctx.region, app_name)
                group = require_deployment_group(session, application, group_name)
                query = query.where(Deployment.deployment_group_id == group.id)
            if statuses:
                query = query.where(Deployment.deployment_status.in_(statuses))
            if start:
                query = query.where(Deployment.create_time >= start)
            if end:
                query = query.where(Deployment.create_time <= end)
            if params.get("externalId"):
                query = query.where(Deployment.id.is_(None))  # no deployment has one
            rows = session.scalars(query.order_by(Deployment.create_time.desc())).all()
            keyed = [(row.create_time.timestamp(), row.id) for row in rows]
        scope: dict[str, Any] = {
            "application": app_name,
            "group": group_name,
            "statuses": sorted(statuses),
            "range": [str(start), str(end)],
        }
        page, token = request_page_tokens(ctx).page(
            keyed, lambda item: item, scope, params.get("nextToken"), PAGE_SIZE, descending=True
        )
        output: shapes.ListDeploymentsOutput = {"deployments": [item[1] for item in page]}
        if token:
            output["nextToken"] = token
        return output

    def stop_deployment(
        self, ctx: RequestContext, params: shapes.StopDeploymentInput
    ) -> shapes.StopDeploymentOutput:
        with session_scope() as session:
            found = _require(session, ctx, params.get("deploymentId"))
            deployment = driver.lock(session, found.id)
            assert deployment is not None
            if deployment.deployment_status in FINAL_STATUSES:
                raise errors.DeploymentAlreadyCompletedException(
                    f"The deployment {deployment.id} has already completed "
                    f"({deployment.deployment_status})."
                )
            reactions.stop(session, deployment, bool(params.get("autoRollbackEnabled")))
            return {
                "status": "Succeeded",
                "statusMessage": f"Deployment {deployment.id} stopped.",
            }

    def continue_deployment(
        self, ctx: RequestContext, params: shapes.ContinueDeploymentInput
    ) -> None:
        wait_type = params.get("deploymentWaitType", "READY_WAIT")
        if wait_type not in ("READY_WAIT", "TERMINATION_WAIT"):
            raise errors.InvalidDeploymentWaitTypeException(f"Unknown wait type {wait_type}.")
        _continue(ctx, params.get("deploymentId"), wait_type)

    def skip_wait_time_for_instance_termination(
        self, ctx: RequestContext, params: shapes.SkipWaitTimeForInstanceTerminationInput
    ) -> None:
        _continue(ctx, params.get("deploymentId"), TERMINATION_WAIT, skipping_wait=True)

    # -- instances and targets ------------------------------------------------------------
    def get_deployment_instance(
        self, ctx: RequestContext, params: shapes.GetDeploymentInstanceInput
    ) -> shapes.GetDeploymentInstanceOutput:
        with session_scope(readonly=True) as session:
            row = _one_instance(
                session,
                ctx,
                params.get("deploymentId"),
                params.get("instanceId"),
                errors.InstanceIdRequiredException,
                errors.InstanceDoesNotExistException,
            )
            return {"instanceSummary": views.instance_summary(row)}

    def batch_get_deployment_instances(
        self, ctx: RequestContext, params: shapes.BatchGetDeploymentInstancesInput
    ) -> shapes.BatchGetDeploymentInstancesOutput:
        ids = _batch_ids(
            params.get("instanceIds"),
            errors.InstanceIdRequiredException,
            errors.BatchLimitExceededException,
        )
        with session_scope(readonly=True) as session:
            deployment = _require(session, ctx, params.get("deploymentId"))
            found, missing = _rows_for(session, deployment, ids)
        output: shapes.BatchGetDeploymentInstancesOutput = {
            "instancesSummary": [views.instance_summary(row) for row in found]
        }
        if missing:
            output["errorMessage"] = (
                f"Instances not part of deployment {deployment.id}: {', '.join(missing)}"
            )
        return output

    def list_deployment_instances(
        self, ctx: RequestContext, params: shapes.ListDeploymentInstancesInput
    ) -> shapes.ListDeploymentInstancesOutput:
        statuses = params.get("instanceStatusFilter") or []
        if set(statuses) - _TARGET_STATUSES:
            raise errors.InvalidInstanceStatusException(
                f"Unknown instance status: {sorted(set(statuses) - _TARGET_STATUSES)[0]}."
            )
        types = params.get("instanceTypeFilter") or []
        if set(types) - {"Blue", "Green"}:
            raise errors.InvalidInstanceTypeException("Instance types are Blue and Green.")
        with session_scope(readonly=True) as session:
            deployment = _require(session, ctx, params.get("deploymentId"))
            rows = _filtered(_instances(session, deployment), statuses, types)
        return cast(
            shapes.ListDeploymentInstancesOutput,
            self._page_names(ctx, deployment, rows, params.get("nextToken"), "instancesList"),
        )

    def get_deployment_target(
        self, ctx: RequestContext, params: shapes.GetDeploymentTargetInput
    ) -> shapes.GetDeploymentTargetOutput:
        with session_scope(readonly=True) as session:
            row = _one_instance(
                session,
                ctx,
                params.get("deploymentId"),
                params.get("targetId"),
                errors.DeploymentTargetIdRequiredException,
                errors.DeploymentTargetDoesNotExistException,
            )
            deployment = session.get(Deployment, row.deployment_id)
            state = DeploymentState.from_document(deployment.state) if deployment else None
            return {"deploymentTarget": views.deployment_target(row, state)}

    def batch_get_deployment_targets(
        self, ctx: RequestContext, params: shapes.BatchGetDeploymentTargetsInput
    ) -> shapes.BatchGetDeploymentTargetsOutput:
        ids = _batch_ids(
            params.get("targetIds"),
            errors.DeploymentTargetIdRequiredException,
            errors.DeploymentTargetListSizeExceededException,
        )
        with session_scope(readonly=True) as session:
            deployment = _require(session, ctx, params.get("deploymentId"))
            found, missing = _rows_for(session, deployment, ids)
            if missing:
                raise errors.DeploymentTargetDoesNotExistException(
                    f"The target {missing[0]} is not part of deployment {deployment.id}."
                )
            state = DeploymentState.from_document(deployment.state)
            return {"deploymentTargets": [views.deployment_target(row, state) for row in found]}

    def list_deployment_targets(
        self, ctx: RequestContext, params: shapes.ListDeploymentTargetsInput
    ) -> shapes.ListDeploymentTargetsOutput:
        filters = params.get("targetFilters") or {}
        unknown = set(filters) - {"TargetStatus", "ServerInstanceLabel"}
        if unknown:
            raise errors.InvalidTargetFilterNameException(
                f"Unknown target filter {sorted(unknown)[0]}: use TargetStatus or ServerInstanceLabel."
            )
        statuses = list(filters.get("TargetStatus") or [])
        if set(statuses) - _TARGET_STATUSES:
            raise errors.InvalidInstanceStatusException(
                f"Unknown target status: {sorted(set(statuses) - _TARGET_STATUSES)[0]}."
            )
        labels = list(filters.get("ServerInstanceLabel") or [])
        with session_scope(readonly=True) as session:
            deployment = _require(session, ctx, params.get("deploymentId"))
            rows = _filtered(_instances(session, deployment), statuses, labels)
        return cast(
            shapes.ListDeploymentTargetsOutput,
            self._page_names(ctx, deployment, rows, params.get("nextToken"), "targetIds"),
        )

    def put_lifecycle_event_hook_execution_status(
        self, ctx: RequestContext, params: shapes.PutLifecycleEventHookExecutionStatusInput
    ) -> shapes.PutLifecycleEventHookExecutionStatusOutput:
        status = params.get("status")
        if status not in ("Succeeded", "Failed"):
            raise errors.InvalidLifecycleEventHookExecutionStatusException(
                f"A hook's status is set to Succeeded or Failed, not {status!r}."
            )
        execution_id = params.get("lifecycleEventHookExecutionId") or ""
        with session_scope() as session:
            found = _require(session, ctx, params.get("deploymentId"))
            deployment = driver.lock(session, found.id)
            assert deployment is not None
            state = driver.state_of(deployment)
            if state.options.shift is None:
                # A Server deployment's hooks are its agents' scripts.
                raise errors.UnsupportedActionForDeploymentTypeException(
                    f"Deployment {deployment.id} deploys to the Server compute platform: "
                    "only Lambda and ECS deployments have lifecycle event hook executions."
                )
            event = hook_event(state, execution_id)
            if event is None:
                raise errors.InvalidLifecycleEventHookExecutionIdException(
                    f"Deployment {deployment.id} has no lifecycle event hook execution "
                    f"{execution_id!r}."
                )
            if event.status != "InProgress" or state.finished:
                raise errors.LifecycleEventAlreadyCompletedException(
                    f"The {event.name} lifecycle event of deployment {deployment.id} has "
                    f"already ended ({event.status})."
                )
            driver.apply(session, deployment, HookReported(execution_id, status == "Succeeded"))
        return {"lifecycleEventHookExecutionId": execution_id}

    @staticmethod
    def _page_names(
        ctx: RequestContext,
        deployment: Deployment,
        rows: Sequence[DeploymentInstance],
        token: str | None,
        member: str,
    ) -> dict[str, Any]:
        names = [row.instance_name for row in rows]
        page, next_token = request_page_tokens(ctx).page(
            names,
            lambda name: name,
            {"deployment": deployment.id, "member": member},
            token,
            PAGE_SIZE,
        )
        output: dict[str, Any] = {member: page}
        if next_token:
            output["nextToken"] = next_token
        return output


def create_deployment_in(
    session: Session, ctx: RequestContext, params: shapes.CreateDeploymentInput
) -> Deployment:
    """CreateDeployment inside the caller's transaction (CodePipeline's Deploy action
    records the deployment with its own state in the same one)."""
    app_name = application_name_param(params.get("applicationName"))
    group_name = deployment_group_name_param(params.get("deploymentGroupName"))
    if len(params.get("description") or "") > MAX_DESCRIPTION:
        raise errors.DescriptionTooLongException(
            f"The description is longer than {MAX_DESCRIPTION} characters."
        )
    application = require_application(session, ctx.account_id, ctx.region, app_name)
    group = require_deployment_group(session, application, group_name, for_update=True)
    revision = params.get("revision") or cast(shapes.RevisionLocation | None, group.target_revision)
    if not revision:
        raise errors.RevisionRequiredException(
            "A revision is required: name one, or deploy to a group with a target revision."
        )
    revision = revision_rules.normalize(revision)
    revision_rules.check_platform(revision, application.compute_platform)
    config_name = params.get("deploymentConfigName") or group.deployment_config_name
    config = require_config(session, ctx.account_id, ctx.region, config_name)
    if config.compute_platform != application.compute_platform:
        raise errors.InvalidDeploymentConfigNameException(
            f"The deployment configuration {config_name} is for the "
            f"{config.compute_platform} compute platform; application {app_name} "
            f"deploys to {application.compute_platform}."
        )
    _check_overrides(params)
    if application.compute_platform == "Server":
        # Lambda and ECS groups are blue/green by nature and have no instances.
        _check_blue_green(group.document, params)
    active = creation.active_deployment(session, group)
    if active is not None:
        raise errors.DeploymentLimitExceededException(
            f"The Deployment Group '{group_name}' already has an active Deployment '{active.id}'"
        )
    request = cast(shapes.CreateDeploymentInput, {**params, "revision": revision})
    deployment = creation.create(
        session,
        application=application,
        group=group,
        config=config,
        revision=revision,
        request=request,
        creator="user",
    )
    return deployment


def _one_instance(
    session: Session,
    ctx: RequestContext,
    deployment_id: str | None,
    instance_id: str | None,
    required: type[AwsError],
    missing: type[AwsError],
) -> DeploymentInstance:
    if not instance_id:
        raise required("An instance (target) ID is required.")
    deployment = _require(session, ctx, deployment_id)
    row = session.get(DeploymentInstance, (deployment.id, instance_id))
    if row is None:
        raise missing(f"{instance_id} is not a target of deployment {deployment.id}.")
    return row


def _batch_ids(
    ids: list[str] | None, required: type[AwsError], too_many: type[AwsError]
) -> list[str]:
    if not ids:
        raise required("At least one instance (target) ID is required.")
    if len(ids) > BATCH_LIMIT:
        raise too_many(f"At most {BATCH_LIMIT} IDs can be given at once; got {len(ids)}.")
    return ids


def _rows_for(
    session: Session, deployment: Deployment, ids: list[str]
) -> tuple[list[DeploymentInstance], list[str]]:
    found, missing = [], []
    for instance_id in dict.fromkeys(ids):
        row = session.get(DeploymentInstance, (deployment.id, instance_id))
        if row is None:
            missing.append(instance_id)
        else:
            found.append(row)
    return found, missing


def _filtered(
    rows: list[DeploymentInstance], statuses: list[str], labels: list[str]
) -> list[DeploymentInstance]:
    return [
        row
        for row in rows
        if (not statuses or row.status in statuses) and (not labels or row.instance_label in labels)
    ]


def _check_overrides(params: shapes.CreateDeploymentInput) -> None:
    rollback = params.get("autoRollbackConfiguration")
    if rollback and rollback.get("enabled") and not rollback.get("events"):
        raise errors.InvalidAutoRollbackConfigException(
            "Automatic rollback is enabled but names no events to roll back on."
        )
    alarms = params.get("overrideAlarmConfiguration")
    if alarms:
        names = [alarm.get("name") for alarm in alarms.get("alarms") or []]
        if len(names) > 10:
            raise errors.AlarmsLimitExceededException("At most 10 alarms can be configured.")
        if alarms.get("enabled") and not names:
            raise errors.InvalidAlarmConfigException("Alarms are enabled but none is named.")


def _continue(
    ctx: RequestContext, deployment_id: str | None, wait_type: str, *, skipping_wait: bool = False
) -> None:
    """ContinueDeployment / SkipWaitTimeForInstanceTermination (SKIPPING_WAIT): a blue/green
    deployment in the wait named goes on; any other answers as AWS does."""
    with session_scope() as session:
        found = _require(session, ctx, deployment_id)
        deployment = driver.lock(session, found.id)
        assert deployment is not None
        state = driver.state_of(deployment)
        if state.finished:
            raise errors.DeploymentAlreadyCompletedException(
                f"The deployment {deployment.id} has already completed."
            )
        blue_green = state.options.deployment_type == BLUE_GREEN
        if skipping_wait and not blue_green:
            raise errors.UnsupportedActionForDeploymentTypeException(
                "Only blue/green deployments wait before terminating instances; "
                f"{deployment.id} is an in-place deployment."
            )
        waiting = {READY_WAIT: WAITING_READY, TERMINATION_WAIT: TERMINATING}[wait_type]
        if not blue_green or state.phase != waiting:
            # Only blue/green deployments wait (for traffic to be rerouted, or before the
            # original instances are terminated); an in-place one never is Ready.
            raise errors.DeploymentIsNotInReadyStateException(
                f"The deployment {deployment.id} is not waiting "
                f"({'Ready for traffic' if wait_type == READY_WAIT else 'to terminate its original instances'})."
            )
        driver.apply(session, deployment, ContinueRequested(wait_type))


def _check_blue_green(group: Mapping[str, Any], params: shapes.CreateDeploymentInput) -> None:
    style = group.get("deploymentStyle") or {}
    if style.get("deploymentType") != BLUE_GREEN:
        return
    configuration = group.get("blueGreenDeploymentConfiguration") or {}
    provisioning = (configuration.get("greenFleetProvisioningOption") or {}).get("action")
    if provisioning == "COPY_AUTO_SCALING_GROUP":
        raise errors.InvalidAutoScalingGroupException(
            "COPY_AUTO_SCALING_GROUP copies an Amazon EC2 Auto Scaling group, which this server "
            "does not have: use greenFleetProvisioningOption DISCOVER_EXISTING and name the "
            "replacement instances with targetInstances (tags of registered instances)."
        )
    target = params.get("targetInstances") or {}
    if not (target.get("tagFilters") or (target.get("ec2TagSet") or {}).get("ec2TagSetList")):
        raise errors.InvalidTargetInstancesException(
            "A blue/green deployment of a group with DISCOVER_EXISTING needs targetInstances "
            "(tagFilters or ec2TagSet) naming the replacement instances."
        )
