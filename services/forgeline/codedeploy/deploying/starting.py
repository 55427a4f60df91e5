"""The job that starts a created deployment: pick its instances, then `Start` the machine.

A job (the work layer's leased `jobs` row) rather than work inside CreateDeployment, so the
API answers at once and a worker lost mid-start hands the start to another; a deployment
no longer Created is left alone, so a repeated start does nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from forgeline.codedeploy.deploying import driver, reactions, targets
from forgeline.codedeploy.deploying.creation import START_JOB
from forgeline.codedeploy.deploying.platform_start import platform_start
from forgeline.codedeploy.orchestrator.events import Start
from forgeline.codedeploy.orchestrator.lifecycle import BLUE, GREEN
from forgeline.codedeploy.orchestrator.options import BLUE_GREEN
from forgeline.codedeploy.orchestrator.rollout import HealthClass
from forgeline.codedeploy.orchestrator.state import CREATED
from forgeline.codedeploy.revisions import record_revision_use
from forgeline.codedeploy.tables.applications import Application
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.codedeploy.tables.deployments import Deployment, DeploymentInstance
from forgeline.codedeploy.tables.instances import OnPremisesInstance
from forgeline.core.db import session_scope, utcnow
from forgeline.core.work.jobs import Heartbeat, job_kind


def _blue_and_green(
    session: Session,
    deployment: Deployment,
    group: DeploymentGroup,
    blue: list[OnPremisesInstance],
) -> tuple[list[OnPremisesInstance], dict[str, str]]:
    """The group's instances are the original (Blue) set; the deployment's targetInstances
    select the replacement (Green) one. An instance in both stays Blue."""
    labels: dict[str, str] = {instance.name: BLUE for instance in blue}
    found = targets.replacement_instances(
        session, group, deployment.request.get("targetInstances") or {}
    )
    green = [instance for instance in found if instance.name not in labels]
    labels.update({instance.name: GREEN for instance in green})
    return [*blue, *green], labels


@job_kind(START_JOB)
def start_deployment(payload: dict[str, Any], heartbeat: Heartbeat) -> dict[str, Any]:
    deployment_id = str(payload["deploymentId"])
    with session_scope() as session:
        deployment = driver.lock(session, deployment_id)
        if deployment is None or deployment.deployment_status != CREATED:
            return {"started": False}
        group = session.get(DeploymentGroup, deployment.deployment_group_id)
        if group is not None and driver.state_of(deployment).options.shift is not None:
            _record_use(session, deployment, group)
            state = driver.apply(session, deployment, platform_start(session, deployment, group))
            reactions.check_alarms_now(session, deployment, state)
            return {"started": True, "instances": len(state.instances)}
        instances: list[OnPremisesInstance] = []
        labels: dict[str, str] | None = payload.get("instanceLabels")
        if group is not None:
            instances = targets.group_instances(session, group, payload.get("instanceNames"))
            if labels is None and driver.state_of(deployment).options.deployment_type == BLUE_GREEN:
                instances, labels = _blue_and_green(session, deployment, group, instances)
        specs = targets.instance_specs(session, deployment, instances, labels)
        if deployment.request.get("updateOutdatedInstancesOnly"):
            specs = [spec for spec in specs if spec.health is not HealthClass.CURRENT]
        by_name = {instance.name: instance for instance in instances}
        for spec in specs:
            session.add(
                DeploymentInstance(
                    deployment_id=deployment.id,
                    instance_name=spec.instance_id,
                    account_id=deployment.account_id,
                    region=deployment.region,
                    instance_arn=by_name[spec.instance_id].instance_arn,
                    status="Pending",
                    instance_label=spec.label,
                    lifecycle_events=[],
                )
            )
        session.flush()
        if group is not None:
            _record_use(session, deployment, group)
        state = driver.apply(session, deployment, Start(tuple(specs)))
        reactions.check_alarms_now(session, deployment, state)
        return {"started": True, "instances": len(specs)}


def _record_use(session: Session, deployment: Deployment, group: DeploymentGroup) -> None:
    """The revision's lastUsedTime and the group's use of it (GetApplicationRevision)."""
    application = session.get(Application, deployment.application_id)
    if application is not None:
        record_revision_use(session, application, deployment.revision, group, utcnow())  # type: ignore[arg-type]
