"""Deployments, their instances and targets as the API shows them (DeploymentInfo,
InstanceSummary, DeploymentTarget), read from the rows the driver keeps."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from forgeline.codedeploy import arns
from forgeline.codedeploy.generated import shapes
from forgeline.codedeploy.orchestrator.blue_green import TERMINATING
from forgeline.codedeploy.orchestrator.state import (
    DeploymentState,
    LifecycleEventState,
    ShiftTarget,
)
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.codedeploy.tables.deployments import Deployment, DeploymentInstance

# What the API shows an on-premises instance's type as in InstanceSummary.
_DEFAULT_STYLE: shapes.DeploymentStyle = {
    "deploymentType": "IN_PLACE",
    "deploymentOption": "WITHOUT_TRAFFIC_CONTROL",
}


def deployment_info(deployment: Deployment, group: DeploymentGroup | None) -> shapes.DeploymentInfo:
    state = DeploymentState.from_document(deployment.state)
    request = cast(dict[str, Any], deployment.request)
    document = group.document if group is not None else {}
    info: shapes.DeploymentInfo = {
        "applicationName": deployment.application_name,
        "deploymentGroupName": deployment.deployment_group_name,
        "deploymentConfigName": deployment.deployment_config_name,
        "deploymentId": deployment.id,
        "revision": cast(shapes.RevisionLocation, deployment.revision),
        "status": deployment.deployment_status,
        "createTime": deployment.create_time,
        "deploymentOverview": state.overview(),
        "creator": deployment.creator,
        "ignoreApplicationStopFailures": bool(request.get("ignoreApplicationStopFailures")),
        "updateOutdatedInstancesOnly": bool(request.get("updateOutdatedInstancesOnly")),
        "deploymentStyle": document.get("deploymentStyle") or _DEFAULT_STYLE,
        "fileExistsBehavior": request.get("fileExistsBehavior", "DISALLOW"),
        "computePlatform": state.options.shift.compute_platform
        if state.options.shift is not None
        else "Server",
        # A blue/green deployment waiting to retire its original instances.
        "instanceTerminationWaitTimeStarted": state.phase == TERMINATING,
    }
    rollback = request.get("autoRollbackConfiguration") or document.get("autoRollbackConfiguration")
    if rollback:
        info["autoRollbackConfiguration"] = rollback
    for member in ("targetInstances", "overrideAlarmConfiguration", "description"):
        if request.get(member) is not None:
            info[member] = request[member]  # type: ignore[literal-required]
    if document.get("loadBalancerInfo"):
        info["loadBalancerInfo"] = document["loadBalancerInfo"]
    if document.get("blueGreenDeploymentConfiguration"):
        info["blueGreenDeploymentConfiguration"] = document["blueGreenDeploymentConfiguration"]
    if deployment.start_time is not None:
        info["startTime"] = deployment.start_time
    if deployment.complete_time is not None:
        info["completeTime"] = deployment.complete_time
    if state.error is not None:
        info["errorInformation"] = state.error.to_botocore()
    if deployment.rollback_info:
        info["rollbackInfo"] = cast(shapes.RollbackInfo, deployment.rollback_info)
    previous = (group.target_revision if group is not None else None) or None
    if previous and previous != deployment.revision:
        info["previousRevision"] = cast(shapes.RevisionLocation, previous)
    return info


def lifecycle_events(row: DeploymentInstance) -> list[shapes.LifecycleEvent]:
    return [
        LifecycleEventState.from_document(event).to_botocore() for event in row.lifecycle_events
    ]


def instance_summary(row: DeploymentInstance) -> shapes.InstanceSummary:
    summary: shapes.InstanceSummary = {
        "deploymentId": row.deployment_id,
        "instanceId": row.instance_arn,
        "status": row.status,
        "lastUpdatedAt": _aware(row.last_updated_at),
        "lifecycleEvents": lifecycle_events(row),
    }
    if row.instance_label:
        summary["instanceType"] = row.instance_label
    return summary


def deployment_target(
    row: DeploymentInstance, state: DeploymentState | None = None
) -> shapes.DeploymentTarget:
    shift = state.shift if state is not None else None
    if shift is not None and shift.target_id == row.instance_name:
        return _shift_target(row, shift, state.options.target_groups if state else ())
    target: shapes.InstanceTarget = {
        "deploymentId": row.deployment_id,
        "targetId": row.instance_name,
        "targetArn": arns.instance_arn(row.region, row.account_id, row.instance_name),
        "status": row.status,
        "lastUpdatedAt": _aware(row.last_updated_at),
        "lifecycleEvents": lifecycle_events(row),
    }
    if row.instance_label:
        target["instanceLabel"] = row.instance_label
    return {"deploymentTargetType": "InstanceTarget", "instanceTarget": target}


def _shift_target(
    row: DeploymentInstance, shift: ShiftTarget, target_groups: tuple[str, ...]
) -> shapes.DeploymentTarget:
    """A Lambda alias or ECS service being deployed, with where its traffic stands."""
    common = {
        "deploymentId": row.deployment_id,
        "targetId": row.instance_name,
        "targetArn": row.instance_arn,
        "status": row.status,
        "lastUpdatedAt": _aware(row.last_updated_at),
        "lifecycleEvents": lifecycle_events(row),
    }
    if shift.platform == "Lambda":
        function, _, alias = shift.target_id.partition(":")
        lambda_target = cast(shapes.LambdaTarget, common)
        lambda_target["lambdaFunctionInfo"] = {
            "functionName": function,
            "functionAlias": alias,
            "currentVersion": shift.original,
            "targetVersion": shift.replacement,
            "targetVersionWeight": shift.weight / 100,
        }
        return {"deploymentTargetType": "LambdaTarget", "lambdaTarget": lambda_target}
    ecs_target = cast(shapes.ECSTarget, common)
    production: shapes.TargetGroupInfo = {"name": target_groups[0]} if target_groups else {}
    task_sets: list[shapes.ECSTaskSet] = [
        {
            "identifer": shift.replacement,
            "status": "PRIMARY" if shift.weight == 100 else "ACTIVE",
            "trafficWeight": float(shift.weight),
            "targetGroup": production,
            "taskSetLabel": "Green",
        }
    ]
    if shift.original:
        task_sets.insert(
            0,
            {
                "identifer": shift.original,
                "status": "ACTIVE" if shift.weight == 100 else "PRIMARY",
                "trafficWeight": float(100 - shift.weight),
                "targetGroup": production,
                "taskSetLabel": "Blue",
            },
        )
    ecs_target["taskSetsInfo"] = task_sets
    return {"deploymentTargetType": "ECSTarget", "ecsTarget": ecs_target}


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
