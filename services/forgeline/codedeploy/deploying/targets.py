"""Which instances a deployment reaches, and how healthy each one is for this group.

An instance's health class, which orders the rollout (Unhealthy first, Current last), comes
from its last finished deployment in the same deployment group: Failed → Unhealthy,
Succeeded with this deployment's revision → Current, with another revision → Old, none →
Unknown. An instance with a successful deployment of the group has a previous revision,
whose ApplicationStop (and block-traffic) scripts its agent runs first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy.orchestrator.events import InstanceSpec
from forgeline.codedeploy.orchestrator.rollout import HealthClass
from forgeline.codedeploy.orchestrator.state import FINAL_STATUSES
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.codedeploy.tables.deployments import Deployment, DeploymentInstance
from forgeline.codedeploy.tables.instances import OnPremisesInstance
from forgeline.codedeploy.tag_matching import (
    any_filter_matches,
    matching_instances,
    tag_set_matches,
)

_SUCCEEDED = "Succeeded"
_FAILED = "Failed"


def group_instances(
    session: Session,
    group: DeploymentGroup,
    names: Iterable[str] | None = None,
    *,
    all_registered: bool = False,
) -> list[OnPremisesInstance]:
    """The registered on-premises instances the group's tags select (or, for a rollback,
    the named ones the failed deployment reached that are still registered; or, with
    ALL_REGISTERED, every registered instance of the group's account and region)."""
    instances = session.scalars(
        select(OnPremisesInstance)
        .where(
            OnPremisesInstance.account_id == group.account_id,
            OnPremisesInstance.region == group.region,
            OnPremisesInstance.deregistered_at.is_(None),
        )
        .order_by(OnPremisesInstance.name)
    ).all()
    if names is not None:
        wanted = set(names)
        return [instance for instance in instances if instance.name in wanted]
    if all_registered:
        return list(instances)
    return matching_instances(group.document, instances)


def replacement_instances(
    session: Session, group: DeploymentGroup, target_instances: Mapping[str, Any]
) -> list[OnPremisesInstance]:
    """Blue/green DISCOVER_EXISTING: the registered instances the deployment's
    targetInstances (tagFilters or ec2TagSet, matched against on-premises tags) select."""
    filters = target_instances.get("tagFilters") or []
    tag_set = (target_instances.get("ec2TagSet") or {}).get("ec2TagSetList") or []
    if not filters and not tag_set:
        return []
    instances = group_instances(session, group, names=None, all_registered=True)
    return [
        instance
        for instance in instances
        if (
            tag_set_matches(tag_set, instance.tags)
            if tag_set
            else any_filter_matches(filters, instance.tags)
        )
    ]


def instance_specs(
    session: Session,
    deployment: Deployment,
    instances: list[OnPremisesInstance],
    labels: Mapping[str, str] | None = None,
) -> list[InstanceSpec]:
    history = _last_outcomes(session, deployment, [instance.name for instance in instances])
    specs = []
    for instance in instances:
        last, has_previous = history.get(instance.name, (None, False))
        specs.append(
            InstanceSpec(
                instance_id=instance.name,
                health=_health(last, deployment.revision),
                has_previous_revision=has_previous,
                label=(labels or {}).get(instance.name),
            )
        )
    return specs


def _health(last: tuple[str, dict] | None, revision: dict) -> HealthClass:
    if last is None:
        return HealthClass.UNKNOWN
    status, last_revision = last
    if status == _FAILED:
        return HealthClass.UNHEALTHY
    return HealthClass.CURRENT if last_revision == revision else HealthClass.OLD


def _last_outcomes(
    session: Session, deployment: Deployment, names: list[str]
) -> dict[str, tuple[tuple[str, dict] | None, bool]]:
    """Per instance: (status, revision) of its newest finished deployment in this group,
    and whether any of them succeeded."""
    rows = session.execute(
        select(DeploymentInstance.instance_name, DeploymentInstance.status, Deployment.revision)
        .join(Deployment, Deployment.id == DeploymentInstance.deployment_id)
        .where(
            Deployment.deployment_group_id == deployment.deployment_group_id,
            Deployment.id != deployment.id,
            Deployment.deployment_status.in_(FINAL_STATUSES),
            DeploymentInstance.instance_name.in_(names),
            DeploymentInstance.status.in_((_SUCCEEDED, _FAILED)),
        )
        .order_by(Deployment.create_time.desc())
    ).all()
    outcomes: dict[str, tuple[tuple[str, dict] | None, bool]] = {}
    for name, status, revision in rows:
        last, succeeded_before = outcomes.get(name, (None, False))
        outcomes[name] = (last or (status, revision), succeeded_before or status == _SUCCEEDED)
    return outcomes
