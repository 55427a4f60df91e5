"""BlockTraffic and AllowTraffic: the server's own lifecycle steps, done on the traffic proxy.

A deployment group WITH_TRAFFIC_CONTROL names target groups (loadBalancerInfo); each is a
target group of Forgeline's traffic proxy (`forgeline traffic target-group create`).
BlockTraffic deregisters the instance from every one of them and waits for its requests to
drain (the group's deregistration delay); AllowTraffic registers it again at its service
address, the instance's `forgeline:address` tag (HOST:PORT), as an ELB target group
registers an instance on the group's port.

The step runs as a job (the work layer's leased row) because a drain can take minutes: it
must not hold the deployment's row lock, and a worker lost mid-drain hands the step to
another. Both proxy operations are idempotent, so a repeated step finishes the work; the
outcome is then applied to the deployment, which ignores it if the instance has moved on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy.orchestrator.events import Event, ServerStepDone, ServerStepFailed
from forgeline.codedeploy.orchestrator.lifecycle import ALLOW_TRAFFIC, BLOCK_TRAFFIC
from forgeline.codedeploy.tables.deployments import Deployment
from forgeline.codedeploy.tables.instances import OnPremisesInstance
from forgeline.codedeploy.traffic.errors import TrafficError
from forgeline.codedeploy.traffic.model import Address
from forgeline.codedeploy.traffic.proxy import TrafficProxy
from forgeline.core.db import session_scope
from forgeline.core.work.jobs import Heartbeat, enqueue, job_kind

TRAFFIC_STEP_JOB = "codedeploy.traffic_step"
# The instance tag that gives the address its service answers on, behind the proxy.
ADDRESS_TAG = "forgeline:address"


def enqueue_step(
    session: Session, deployment: Deployment, instance_id: str, lifecycle_event: str
) -> None:
    """Queue the step; it starts once the transition that asked for it commits."""
    enqueue(
        session,
        TRAFFIC_STEP_JOB,
        {
            "deploymentId": deployment.id,
            "instanceId": instance_id,
            "lifecycleEvent": lifecycle_event,
        },
    )


def service_address(tags: Iterable[Mapping[str, str]]) -> str:
    """The instance's HOST:PORT from its tags (ValueError saying what is missing or wrong)."""
    for tag in tags:
        if tag.get("Key") == ADDRESS_TAG:
            value = tag.get("Value") or ""
            try:
                Address.parse(value)
            except TrafficError as exc:
                raise ValueError(
                    f"its {ADDRESS_TAG} tag {value!r} is not HOST:PORT ({exc})"
                ) from None
            return value
    raise ValueError(
        f"it has no {ADDRESS_TAG} tag: tag it with the HOST:PORT its service answers on "
        f"(aws deploy add-tags-to-on-premises-instances --tags Key={ADDRESS_TAG},Value=HOST:PORT)"
    )


def perform(
    proxy: TrafficProxy,
    lifecycle_event: str,
    member: str,
    target_groups: Iterable[str],
    address: str | None,
) -> None:
    """Take MEMBER out of (BlockTraffic) or put it back in (AllowTraffic) every group."""
    for name in target_groups:
        if lifecycle_event == BLOCK_TRAFFIC:
            group = proxy.store.load().group(name)
            proxy.deregister(name, member, drain_seconds=group.deregistration_delay_seconds)
        elif lifecycle_event == ALLOW_TRAFFIC:
            assert address is not None
            proxy.register(name, member, address)
        else:
            raise ValueError(f"{lifecycle_event} is not a traffic step")


@job_kind(TRAFFIC_STEP_JOB)
def run_traffic_step(payload: dict[str, Any], heartbeat: Heartbeat) -> dict[str, Any]:
    from forgeline.codedeploy.deploying import driver

    deployment_id = str(payload["deploymentId"])
    instance_id = str(payload["instanceId"])
    lifecycle_event = str(payload["lifecycleEvent"])
    with session_scope() as session:
        deployment = session.get(Deployment, deployment_id)
        if deployment is None:
            return {"done": False}
        target_groups = driver.state_of(deployment).options.target_groups
        instance = session.scalars(
            select(OnPremisesInstance).where(
                OnPremisesInstance.account_id == deployment.account_id,
                OnPremisesInstance.region == deployment.region,
                OnPremisesInstance.name == instance_id,
            )
        ).first()
        tags = list(instance.tags or []) if instance is not None else []
    outcome = _outcome(lifecycle_event, instance_id, target_groups, tags)
    with session_scope() as session:
        locked = driver.lock(session, deployment_id)
        if locked is not None:
            driver.apply(session, locked, outcome)
    return {"done": isinstance(outcome, ServerStepDone)}


def _outcome(
    lifecycle_event: str,
    instance_id: str,
    target_groups: tuple[str, ...],
    tags: list[dict[str, str]],
) -> Event:
    address = None
    if lifecycle_event == ALLOW_TRAFFIC:
        try:
            address = service_address(tags)
        except ValueError as exc:
            return ServerStepFailed(
                instance_id,
                lifecycle_event,
                f"Instance {instance_id} cannot be registered with its target groups: {exc}.",
            )
    try:
        perform(TrafficProxy(), lifecycle_event, instance_id, target_groups, address)
    except TrafficError as exc:
        verb = "deregistered from" if lifecycle_event == BLOCK_TRAFFIC else "registered with"
        return ServerStepFailed(
            instance_id,
            lifecycle_event,
            f"Instance {instance_id} could not be {verb} its target groups "
            f"({', '.join(target_groups)}): {exc}",
        )
    return ServerStepDone(instance_id, lifecycle_event)
