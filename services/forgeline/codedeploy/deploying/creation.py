"""Deployment rows: made from a CreateDeployment request or as an automatic rollback, and
what a finished deployment leaves on its deployment group.

A new deployment is Created with the machine's initial state and a `codedeploy.start` job;
the job (starting.py) picks its instances and starts it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy import configs
from forgeline.codedeploy.generated import shapes
from forgeline.codedeploy.orchestrator import rollout
from forgeline.codedeploy.orchestrator.options import ShiftOptions, resolve_options
from forgeline.codedeploy.orchestrator.state import (
    FINAL_STATUSES,
    SUCCEEDED,
    DeploymentState,
    new_deployment,
)
from forgeline.codedeploy.tables.applications import Application
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.codedeploy.tables.deployments import Deployment, new_deployment_id
from forgeline.codedeploy.tables.instances import OnPremisesInstance
from forgeline.core.db import utcnow
from forgeline.core.settings import get_settings
from forgeline.core.work.jobs import enqueue

START_JOB = "codedeploy.start"
ROLLBACK_CREATOR = "codeDeployRollback"
NO_ROLLBACK_TARGET = (
    "Automatic rollback was not performed because the deployment group has no previous "
    "successful deployment to roll back to."
)


# Called inside the transaction that records a deployment's end (CodePipeline's Deploy
# actions finish here).
DEPLOYMENT_FINISHED_LISTENERS: list[Callable[[Session, Deployment], None]] = []


def active_deployment(session: Session, group: DeploymentGroup) -> Deployment | None:
    """The group's deployment that has not finished yet, if any (one at a time, as AWS)."""
    return session.scalars(
        select(Deployment).where(
            Deployment.deployment_group_id == group.id,
            Deployment.deployment_status.not_in(FINAL_STATUSES),
        )
    ).first()


def create(
    session: Session,
    *,
    application: Application,
    group: DeploymentGroup,
    config: configs.DeploymentConfigInfo,
    revision: shapes.RevisionLocation,
    request: shapes.CreateDeploymentInput,
    creator: str = "user",
    rollback_of: Deployment | None = None,
    instance_names: list[str] | None = None,
    instance_labels: dict[str, str] | None = None,
    run_hooks: bool = True,
) -> Deployment:
    settings = get_settings()
    options = resolve_options(
        group.document,
        request,
        agent_pickup_timeout_seconds=settings.codedeploy_agent_pickup_timeout_seconds,
        event_run_timeout_seconds=settings.codedeploy_event_run_timeout_seconds,
    )
    if not run_hooks:
        options = replace(options, run_hooks=False)
    if application.compute_platform in ("Lambda", "ECS"):
        routing = config.traffic_routing or configs.ALL_AT_ONCE
        options = replace(
            options,
            shift=ShiftOptions(
                application.compute_platform,
                routing.type,
                routing.percentage,
                routing.interval_minutes,
                minute_seconds=settings.codedeploy_minute_seconds,
                hook_timeout_seconds=settings.codedeploy_hook_timeout_seconds,
            ),
        )
    minimum = config.minimum_healthy_hosts or configs.MinimumHealthyHosts("HOST_COUNT", 0)
    deployment_id = _unused_id(session)
    state = new_deployment(
        deployment_id,
        config.name,
        rollout.MinimumHealthyHosts(minimum.type, minimum.value),
        options,
        is_rollback=rollback_of is not None,
    )
    deployment = Deployment(
        id=deployment_id,
        account_id=group.account_id,
        region=group.region,
        application_name=application.name,
        application_id=application.id,
        deployment_group_name=group.name,
        deployment_group_id=group.id,
        deployment_config_name=config.name,
        deployment_status=state.status,
        creator=creator,
        description=request.get("description"),
        revision=dict(revision),
        request=dict(request),
        state=state.to_document(),
        create_time=utcnow(),
    )
    if rollback_of is not None:
        deployment.rollback_info = {"rollbackTriggeringDeploymentId": rollback_of.id}
    session.add(deployment)
    session.flush()
    payload: dict[str, Any] = {"deploymentId": deployment_id}
    if instance_names is not None:
        payload["instanceNames"] = instance_names
    if instance_labels:
        payload["instanceLabels"] = instance_labels
    enqueue(session, START_JOB, payload)
    return deployment


def _unused_id(session: Session) -> str:
    deployment_id = new_deployment_id()
    while session.get(Deployment, deployment_id) is not None:
        deployment_id = new_deployment_id()
    return deployment_id


def record_outcome(session: Session, deployment: Deployment, state: DeploymentState) -> None:
    """The deployment group remembers its last attempted (and last successful) deployment;
    the services waiting on it hear of the outcome in the same transaction."""
    _remember_outcome(session, deployment, state)
    for listener in list(DEPLOYMENT_FINISHED_LISTENERS):
        listener(session, deployment)


def _remember_outcome(session: Session, deployment: Deployment, state: DeploymentState) -> None:
    group = session.get(DeploymentGroup, deployment.deployment_group_id)
    if group is None:
        return  # deleted while the deployment ran
    summary = _last_deployment_info(deployment, state)
    group.last_attempted_deployment = summary
    if state.status == SUCCEEDED:
        group.last_successful_deployment = summary
        group.target_revision = dict(deployment.revision)


def _last_deployment_info(deployment: Deployment, state: DeploymentState) -> dict[str, Any]:
    end = state.complete_time or utcnow()
    return {
        "deploymentId": deployment.id,
        "status": state.status,
        "endTime": _iso(end),
        "createTime": _iso(deployment.create_time),
    }


def _iso(value: dt.datetime) -> str:
    return value.isoformat()


def start_rollback(session: Session, failed: Deployment, reason: str) -> Deployment | None:
    """Redeploy the group's last successful revision to the instances `failed` reached,
    as a new deployment carrying rollbackInfo (AWS's automatic rollback)."""
    group = session.get(DeploymentGroup, failed.deployment_group_id)
    application = session.get(Application, failed.application_id)
    last_good = _last_successful(session, group) if group is not None else None
    if failed.state["options"].get("shift"):
        # Lambda / ECS: the original version still has its backend; the way back is the
        # failed deployment's own target with all traffic on the original.
        last_good = failed
    traffic_only = last_good is None and _labelled(failed)
    if traffic_only:
        # Blue/green: Blue still runs its revision, so the way back needs no earlier
        # success in the group; with no known-good revision to run hooks from, it only
        # moves traffic (the failed revision's hooks are not run again).
        last_good = failed
    if group is None or application is None or last_good is None:
        failed.rollback_info = {"rollbackMessage": NO_ROLLBACK_TARGET}
        return None
    config = configs.find(session, failed.account_id, failed.region, failed.deployment_config_name)
    if config is None:
        config = configs.find(
            session, failed.account_id, failed.region, group.deployment_config_name
        )
    if config is None:
        failed.rollback_info = {
            "rollbackMessage": "Automatic rollback was not performed: "
            "the deployment configuration no longer exists."
        }
        return None
    request = cast(shapes.CreateDeploymentInput, dict(failed.request))
    request["revision"] = cast(shapes.RevisionLocation, last_good.revision)
    request.pop("description", None)
    instances = failed.state.get("instances", [])
    names = [instance["instanceId"] for instance in instances]
    # A blue/green rollback lets traffic back to the same Blue set and away from Green.
    labels = {i["instanceId"]: i["label"] for i in instances if i.get("label")}
    rollback = create(
        session,
        application=application,
        group=group,
        config=config,
        revision=request["revision"],
        request=request,
        creator=ROLLBACK_CREATOR,
        rollback_of=failed,
        instance_names=names,
        instance_labels=labels,
        run_hooks=not traffic_only,
    )
    failed.rollback_info = {
        "rollbackDeploymentId": rollback.id,
        "rollbackMessage": f"Rolled back by deployment {rollback.id} ({reason}).",
    }
    return rollback


def _labelled(deployment: Deployment) -> bool:
    return any(i.get("label") for i in deployment.state.get("instances", []))


def _last_successful(session: Session, group: DeploymentGroup) -> Deployment | None:
    last = group.last_successful_deployment
    if not last:
        return None
    return session.get(Deployment, last["deploymentId"])


def retire_instances(session: Session, deployment: Deployment, names: tuple[str, ...]) -> None:
    """Blue/green TERMINATE: the original instances are deregistered, as AWS terminates the
    original EC2 instances; their agents then get no more work and the group stops
    selecting them. (The hosts themselves keep running: Forgeline does not own them.)"""
    now = utcnow()
    for instance in session.scalars(
        select(OnPremisesInstance).where(
            OnPremisesInstance.account_id == deployment.account_id,
            OnPremisesInstance.region == deployment.region,
            OnPremisesInstance.name.in_(names),
            OnPremisesInstance.deregistered_at.is_(None),
        )
    ):
        instance.deregistered_at = now
