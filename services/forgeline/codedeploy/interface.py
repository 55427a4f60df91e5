"""What other services may use of CodeDeploy, and nothing more.

CodePipeline's Deploy action creates a deployment of a revision in the pipeline's artifact
store and hears of its end through the `deployment_finished` hook (DEPLOYMENT_FINISHED_
LISTENERS, subscribed in its manifest).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy.generated import shapes
from forgeline.codedeploy.ops.deployments import create_deployment_in
from forgeline.codedeploy.ops.lookups import find_application
from forgeline.codedeploy.tables.deployments import Deployment, DeploymentInstance
from forgeline.core.context import RequestContext

__all__ = [
    "Deployment",
    "DeploymentOutcome",
    "DeploymentTargetView",
    "compute_platform",
    "create_pipeline_deployment",
    "deployment_targets",
    "outcome_of",
]


@dataclass(frozen=True)
class DeploymentOutcome:
    deployment_id: str
    status: str  # the model's DeploymentStatus
    error_message: str | None


def compute_platform(session: Session, account_id: str, region: str, application: str) -> str:
    """The application's compute platform (Server, Lambda or ECS); Server when unknown, so
    CreateDeployment answers the missing application with its own error."""
    found = find_application(session, account_id, region, application)
    return found.compute_platform if found is not None else "Server"


def create_pipeline_deployment(
    session: Session,
    account_id: str,
    region: str,
    application: str,
    group: str,
    bucket: str,
    key: str,
    description: str,
    appspec: str | None = None,
) -> str:
    """CreateDeployment of the zip at bucket/key (or, for a Lambda or ECS application, of
    its AppSpec's text), in the caller's transaction; raises CodeDeploy's own errors.
    Returns the deployment id."""
    ctx = RequestContext(
        account_id=account_id,
        region=region,
        principal_arn=f"arn:aws:iam::{account_id}:role/codepipeline",
        access_key_id=None,
        service="codedeploy",
        operation="CreateDeployment",
    )
    params: shapes.CreateDeploymentInput = {
        "applicationName": application,
        "deploymentGroupName": group,
        "description": description,
        "revision": {
            "revisionType": "S3",
            "s3Location": {"bucket": bucket, "key": key, "bundleType": "zip"},
        },
    }
    if appspec is not None:
        params["revision"] = {
            "revisionType": "AppSpecContent",
            "appSpecContent": {"content": appspec},
        }
    return create_deployment_in(session, ctx, params).id


def outcome_of(deployment: Deployment) -> DeploymentOutcome:
    error = deployment.error_info or {}
    return DeploymentOutcome(
        deployment_id=deployment.id,
        status=deployment.deployment_status,
        error_message=error.get("message"),
    )


@dataclass(frozen=True)
class TargetEvent:
    name: str
    status: str
    start_time: str | None
    end_time: str | None
    message: str | None


@dataclass(frozen=True)
class DeploymentTargetView:
    target_id: str
    target_type: str  # the model's DeploymentTargetType
    status: str
    events: tuple[TargetEvent, ...]


def deployment_targets(session: Session, deployment_id: str) -> list[DeploymentTargetView]:
    """The deployment's targets with their lifecycle events, by target id."""
    rows = session.scalars(
        select(DeploymentInstance)
        .where(DeploymentInstance.deployment_id == deployment_id)
        .order_by(DeploymentInstance.instance_name)
    )
    return [
        DeploymentTargetView(
            target_id=row.instance_name,
            target_type="InstanceTarget",
            status=row.status,
            events=tuple(
                TargetEvent(
                    name=event["lifecycleEventName"],
                    status=event["status"],
                    start_time=event.get("startTime"),
                    end_time=event.get("endTime"),
                    message=(event.get("diagnostics") or {}).get("message"),
                )
                for event in row.lifecycle_events or []
            ),
        )
        for row in rows
    ]
