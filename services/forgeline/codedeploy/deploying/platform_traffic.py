"""The server's own work in a Lambda or ECS deployment, done on Forgeline's traffic proxy.

Forgeline runs no Lambda function and no ECS task: what takes a deployment's traffic is a
target group of the proxy (`forgeline traffic target-group create`) whose members are the
versions' HTTP backends (`forgeline traffic member register`):

- Lambda: the target group named `FUNCTION:ALIAS` (the deployment's target id) stands for
  the alias; its members, named by version number, for the versions. The shift weights
  CurrentVersion's member `100 - share` and TargetVersion's `share`.
- ECS: the deployment group's target group pair (loadBalancerInfo) stands for the
  listeners: the first for production traffic, the second for test traffic. Members are
  named after task definitions (`family:revision`, from the task definition ARN). The
  production shift weights the original task definition's member and the replacement's;
  AllowTestTraffic sends the test target group's traffic to the replacement alone.

Other members of the target group get weight 0 while traffic shifts, so the share is
exactly the configured one. A deployment whose target group the proxy does not have only
records its shares (as an in-place deployment with no load balancer does its traffic
steps): a test suite that drives deployments through the API needs no proxy. Each
operation is idempotent and quick (the proxy's runtime API), so it runs inside the
deployment's transition and its outcome is fed straight back as the next event.
"""

from __future__ import annotations

from collections.abc import Callable

from forgeline.codedeploy.orchestrator.events import (
    Event,
    ServerStepDone,
    ServerStepFailed,
    TrafficShifted,
)
from forgeline.codedeploy.orchestrator.lifecycle import ALLOW_TEST_TRAFFIC, ALLOW_TRAFFIC, START
from forgeline.codedeploy.orchestrator.state import DeploymentState, ShiftTarget
from forgeline.codedeploy.traffic.errors import TrafficError
from forgeline.codedeploy.traffic.model import MAX_WEIGHT, TargetGroup
from forgeline.codedeploy.traffic.proxy import TrafficProxy

ProxyFactory = Callable[[], TrafficProxy]
MEMBER_HINT = "forgeline traffic member register"


def production_group(state: DeploymentState) -> str:
    """The target group that takes the deployment's production traffic."""
    target = _target(state)
    if target.platform == "ECS":
        groups = state.options.target_groups
        return groups[0] if groups else ""
    return target.target_id


def test_group(state: DeploymentState) -> str | None:
    groups = state.options.target_groups
    return groups[1] if _target(state).platform == "ECS" and len(groups) > 1 else None


def shift(state: DeploymentState, weight: int, proxy: ProxyFactory = TrafficProxy) -> Event:
    """Give the replacement `weight` percent of the production traffic."""
    target = _target(state)
    name = production_group(state)
    try:
        traffic = proxy()
        group = _group(traffic, name)
        if group is not None:
            traffic.set_weights(name, _weights(group, target, weight))
    except (TrafficError, OSError) as exc:
        return ServerStepFailed(
            target.target_id,
            ALLOW_TRAFFIC,
            f"the share of {target.replacement} could not be set to {weight}% on target "
            f"group {name}: {exc}",
        )
    return TrafficShifted(weight)


def server_step(
    state: DeploymentState, lifecycle_event: str, proxy: ProxyFactory = TrafficProxy
) -> Event:
    """Start checks that the versions have backends; AllowTestTraffic routes the test
    target group to the replacement; the other steps have nothing to do here."""
    target = _target(state)
    try:
        if lifecycle_event == START:
            problem = _missing_members(state, proxy)
            if problem:
                return ServerStepFailed(target.target_id, lifecycle_event, problem)
        elif lifecycle_event == ALLOW_TEST_TRAFFIC:
            name = test_group(state)
            traffic = proxy()
            group = _group(traffic, name) if name else None
            if name and group is not None:
                traffic.set_weights(name, _weights(group, target, 100))
    except (TrafficError, OSError) as exc:
        return ServerStepFailed(
            target.target_id, lifecycle_event, f"the traffic proxy failed: {exc}"
        )
    return ServerStepDone(target.target_id, lifecycle_event)


def _missing_members(state: DeploymentState, proxy: ProxyFactory) -> str | None:
    target = _target(state)
    name = production_group(state)
    group = _group(proxy(), name)
    if group is None:
        return None
    wanted = [target.replacement] + ([target.original] if target.original else [])
    missing = [member for member in wanted if not group.has_member(member)]
    if not missing:
        return None
    return (
        f"target group {name} has no member {missing[0]}: register its backend with "
        f"`{MEMBER_HINT} {name} {missing[0]} HOST:PORT`"
    )


def _weights(group: TargetGroup, target: ShiftTarget, share: int) -> dict[str, int]:
    """HAProxy weights that give the replacement `share` percent: the original (or, where
    no original is known, every other member) the rest, members beyond those nothing."""
    weights = {member.name: 0 for member in group.members}
    others = [target.original] if target.original else list(weights)
    for name in others:
        if name in weights:
            weights[name] = min(MAX_WEIGHT, 100 - share)
    if group.has_member(target.replacement):
        weights[target.replacement] = share
    return weights


def _group(proxy: TrafficProxy, name: str) -> TargetGroup | None:
    model = proxy.store.load()
    return model.group(name) if name and model.has_group(name) else None


def _target(state: DeploymentState) -> ShiftTarget:
    assert state.shift is not None, "a Lambda or ECS deployment knows its target once started"
    return state.shift
