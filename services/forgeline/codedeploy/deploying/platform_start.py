"""Starting a Lambda or ECS deployment: its AppSpec becomes the one target it shifts.

The revision is the AppSpec (AppSpecContent or String). A broken one fails the deployment
at once with AWS's code for the platform (Refused); otherwise the deployment's target row
is made and the machine starts with what the AppSpec names: the versions (Lambda) or task
definitions (ECS) traffic moves between, and the hook functions.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy import platform_appspecs as appspecs
from forgeline.codedeploy.orchestrator.events import Event, InstanceSpec, Refused, Start
from forgeline.codedeploy.orchestrator.state import (
    SUCCEEDED,
    DeploymentState,
    ErrorInfo,
    ShiftTarget,
)
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.codedeploy.tables.deployments import Deployment, DeploymentInstance


def platform_start(session: Session, deployment: Deployment, group: DeploymentGroup) -> Event:
    """The event that starts the deployment, with its target row added when it starts."""
    state = DeploymentState.from_document(deployment.state)
    options = state.options.shift
    assert options is not None
    platform = options.compute_platform
    try:
        appspec = appspecs.parse_platform_appspec(_appspec_text(deployment, platform), platform)
        if isinstance(appspec, appspecs.LambdaAppSpec):
            appspecs.check_versions_for_routing(appspec, options.routing_type)
    except appspecs.PlatformAppSpecError as exc:
        return Refused(ErrorInfo(exc.error_code, exc.deployment_message()))
    if isinstance(appspec, appspecs.LambdaAppSpec):
        function = appspec.function
        target_id = f"{function.name}:{function.alias}"
        arn = _arn(deployment, "lambda", f"function:{target_id}")
        original, replacement = function.current_version, function.target_version
    else:
        cluster, service = _ecs_service(group)
        target_id = f"{cluster}:{service}"
        arn = _arn(deployment, "ecs", f"service/{cluster}/{service}")
        replacement = task_definition_name(appspec.service.task_definition)
        original = _last_task_definition(session, group) or ""
        if original == replacement:
            original = ""  # redeploying the same task definition: nothing else to keep
    shift = ShiftTarget(
        platform,
        target_id,
        original,
        replacement,
        hooks=tuple((hook.event, hook.function_name) for hook in appspec.hooks),
        nonce=secrets.token_hex(8),
    )
    session.add(
        DeploymentInstance(
            deployment_id=deployment.id,
            instance_name=target_id,
            account_id=deployment.account_id,
            region=deployment.region,
            instance_arn=arn,
            status="Pending",
            lifecycle_events=[],
        )
    )
    session.flush()
    return Start((InstanceSpec(target_id),), shift)


def task_definition_name(reference: str) -> str:
    """`family:revision` from a task definition ARN (or the reference as it is)."""
    return reference.rsplit("task-definition/", 1)[-1]


def _appspec_text(deployment: Deployment, platform: str) -> str:
    revision: dict[str, Any] = deployment.revision
    for member in ("appSpecContent", "string"):
        content = (revision.get(member) or {}).get("content")
        if content is not None:
            return str(content)
    raise appspecs.PlatformAppSpecError(
        platform,
        f"A {platform} deployment here reads its AppSpec from the revision itself: "
        "register it as AppSpecContent or String (an AppSpec in S3 is not fetched).",
    )


def _ecs_service(group: DeploymentGroup) -> tuple[str, str]:
    services = group.document.get("ecsServices") or [{}]
    return str(services[0].get("clusterName", "")), str(services[0].get("serviceName", ""))


def _last_task_definition(session: Session, group: DeploymentGroup) -> str | None:
    """The task definition the group's last successful deployment moved traffic to."""
    last = session.scalars(
        select(Deployment)
        .where(
            Deployment.deployment_group_id == group.id,
            Deployment.deployment_status == SUCCEEDED,
        )
        .order_by(Deployment.complete_time.desc())
        .limit(1)
    ).first()
    shift = (last.state.get("shift") or {}) if last is not None else {}
    return shift.get("replacement") if last is not None and not last.rollback_info else None


def _arn(deployment: Deployment, service: str, resource: str) -> str:
    return f"arn:aws:{service}:{deployment.region}:{deployment.account_id}:{resource}"
