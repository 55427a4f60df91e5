"""What a deployment tells the world when its state changes.

- The event stream, in EventBridge's shape ("CodeDeploy Deployment State-change
  Notification", "CodeDeploy Instance State-change Notification", source aws.codedeploy).
- The deployment group's triggers: a trigger whose target is an http(s) URL gets the
  message AWS would publish to its SNS topic, as a webhook (core/webhooks.py: a retried
  background delivery, signed with the group's trigger secret). A trigger naming an SNS
  topic is kept for AWS compatibility; Forgeline has no SNS to deliver to.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

from sqlalchemy.orm import Session

from forgeline.codedeploy import arns
from forgeline.codedeploy.orchestrator.state import DeploymentState
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.codedeploy.tables.deployments import Deployment
from forgeline.core import webhooks
from forgeline.core.db import utcnow
from forgeline.core.events import publish
from forgeline.core.lifecycle import server_key
from forgeline.core.settings import get_settings

SOURCE = "aws.codedeploy"
DEPLOYMENT_CHANGE = "CodeDeploy Deployment State-change Notification"
INSTANCE_CHANGE = "CodeDeploy Instance State-change Notification"

# Status -> (EventBridge state, trigger event).
_DEPLOYMENT_STATES = {
    "InProgress": ("START", "DeploymentStart"),
    "Succeeded": ("SUCCESS", "DeploymentSuccess"),
    "Failed": ("FAILURE", "DeploymentFailure"),
    "Stopped": ("STOP", "DeploymentStop"),
    "Ready": ("READY", "DeploymentReady"),
}
_INSTANCE_STATES = {
    "InProgress": ("START", "InstanceStart"),
    "Succeeded": ("SUCCESS", "InstanceSuccess"),
    "Failed": ("FAILURE", "InstanceFailure"),
    "Ready": ("READY", "InstanceReady"),
}
ROLLBACK_TRIGGER_EVENT = "DeploymentRollback"


def deployment_changed(session: Session, deployment: Deployment, status: str) -> None:
    names = _DEPLOYMENT_STATES.get(status)
    if names is None:
        return
    state_name, trigger_event = names
    _publish(session, deployment, DEPLOYMENT_CHANGE, {"state": state_name})
    group = session.get(DeploymentGroup, deployment.deployment_group_id)
    if group is None:
        return
    message = _deployment_message(deployment, status)
    _fire(session, group, trigger_event, message)
    if status == "InProgress" and deployment.rollback_info:
        # A rollback deployment starting is what DeploymentRollback triggers announce.
        _fire(session, group, ROLLBACK_TRIGGER_EVENT, message)


def instance_changed(
    session: Session, deployment: Deployment, instance_id: str, status: str
) -> None:
    names = _INSTANCE_STATES.get(status)
    if names is None:
        return
    state_name, trigger_event = names
    _publish(session, deployment, INSTANCE_CHANGE, {"state": state_name, "instanceId": instance_id})
    group = session.get(DeploymentGroup, deployment.deployment_group_id)
    if group is not None:
        _fire(session, group, trigger_event, _instance_message(deployment, instance_id, status))


def _publish(
    session: Session, deployment: Deployment, detail_type: str, extra: dict[str, Any]
) -> None:
    region, account = deployment.region, deployment.account_id
    publish(
        session,
        account_id=account,
        region=region,
        source=SOURCE,
        detail_type=detail_type,
        resources=[
            arns.application_arn(region, account, deployment.application_name),
            arns.deployment_group_arn(
                region, account, deployment.application_name, deployment.deployment_group_name
            ),
        ],
        detail={
            "account": account,
            "region": region,
            "application": deployment.application_name,
            "deploymentId": deployment.id,
            "deploymentGroup": deployment.deployment_group_name,
            "instanceGroupId": deployment.deployment_group_id,
            **extra,
        },
    )


def _deployment_message(deployment: Deployment, status: str) -> dict[str, Any]:
    state = DeploymentState.from_document(deployment.state)
    message: dict[str, Any] = {
        "region": deployment.region,
        "accountId": deployment.account_id,
        "applicationName": deployment.application_name,
        "deploymentId": deployment.id,
        "deploymentGroupName": deployment.deployment_group_name,
        "createTime": _time(deployment.create_time),
        "completeTime": _time(state.complete_time),
        # AWS sends the overview as a JSON string inside the message.
        "deploymentOverview": json.dumps({k: str(v) for k, v in state.overview().items()}),
        "status": status.upper(),
    }
    if state.error is not None:
        message["errorInformation"] = json.dumps(state.error.to_botocore())
    return message


def _instance_message(deployment: Deployment, instance_id: str, status: str) -> dict[str, Any]:
    state = DeploymentState.from_document(deployment.state)
    instance = state.instance(instance_id)
    events = instance.lifecycle_events() if instance is not None else []
    return {
        "region": deployment.region,
        "accountId": deployment.account_id,
        "applicationName": deployment.application_name,
        "deploymentId": deployment.id,
        "deploymentGroupName": deployment.deployment_group_name,
        "instanceId": arns.instance_arn(deployment.region, deployment.account_id, instance_id),
        "instanceStatus": status.upper(),
        "lastUpdatedAt": _time(utcnow()),
        "lifecycleEvents": json.dumps(events, default=_time),
    }


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def trigger_secret(group: DeploymentGroup) -> str:
    """The key that signs a group's webhook deliveries: derived from the server's own key,
    so it needs no storage and survives restarts (`forgeline deploy trigger-secret` shows it)."""
    key = server_key(get_settings())
    return hmac.new(key, f"codedeploy-trigger:{group.id}".encode(), hashlib.sha256).hexdigest()


def _fire(session: Session, group: DeploymentGroup, event: str, message: dict[str, Any]) -> None:
    for trigger in group.document.get("triggerConfigurations") or []:
        target = trigger.get("triggerTargetArn", "")
        if event not in (trigger.get("triggerEvents") or []) or not webhooks.is_webhook_url(target):
            continue
        body = json.dumps({**message, "eventTriggerName": trigger["triggerName"]}).encode()
        headers = webhooks.request_headers(trigger_secret(group), body, event, str(uuid.uuid4()))
        webhooks.enqueue_delivery(session, target, body, headers)
