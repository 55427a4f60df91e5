"""CodeDeploy's lifecycle events: their order per kind of deployment, and who performs each.

From AWS's "AppSpec 'hooks' section" (lifecycle event hook availability and run order):

- An in-place Server deployment (and its rollback) runs ApplicationStop, DownloadBundle,
  BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService. With traffic
  control (deploymentOption WITH_TRAFFIC_CONTROL) BeforeBlockTraffic, BlockTraffic and
  AfterBlockTraffic come first and BeforeAllowTraffic, AllowTraffic, AfterAllowTraffic last.
- The agent performs every event but BlockTraffic and AllowTraffic, which are the server's
  work on the load balancer. ApplicationStop, BeforeBlockTraffic and AfterBlockTraffic run
  the scripts of the last revision that succeeded on the instance, so they have nothing to
  run on an instance's first deployment; they are also the events whose failure
  ignoreApplicationStopFailures lets a deployment go past.
- Blue/green deployments split the events between the original ("Blue") and replacement
  ("Green") instances; Lambda and ECS deployments call validation functions (hooks that
  answer through PutLifecycleEventHookExecutionStatus) around the server's traffic shift.
  Their event lists are declared here for the flows that will use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

# ---------------------------------------------------------------- event names

APPLICATION_STOP = "ApplicationStop"
DOWNLOAD_BUNDLE = "DownloadBundle"
BEFORE_INSTALL = "BeforeInstall"
INSTALL = "Install"
AFTER_INSTALL = "AfterInstall"
APPLICATION_START = "ApplicationStart"
VALIDATE_SERVICE = "ValidateService"
BEFORE_BLOCK_TRAFFIC = "BeforeBlockTraffic"
BLOCK_TRAFFIC = "BlockTraffic"
AFTER_BLOCK_TRAFFIC = "AfterBlockTraffic"
BEFORE_ALLOW_TRAFFIC = "BeforeAllowTraffic"
ALLOW_TRAFFIC = "AllowTraffic"
AFTER_ALLOW_TRAFFIC = "AfterAllowTraffic"
# Lambda and ECS deployments only.
START = "Start"
END = "End"
ALLOW_TEST_TRAFFIC = "AllowTestTraffic"
AFTER_ALLOW_TEST_TRAFFIC = "AfterAllowTestTraffic"

# Blue/green instance labels (the model's TargetLabel) and waits (DeploymentWaitType).
TargetLabel = Literal["Blue", "Green"]
BLUE: TargetLabel = "Blue"
GREEN: TargetLabel = "Green"
READY_WAIT = "READY_WAIT"
TERMINATION_WAIT = "TERMINATION_WAIT"


class Performer(StrEnum):
    """Who carries out a lifecycle event."""

    AGENT = "agent"  # a host command the agent polls for (PollHostCommand)
    SERVER = "server"  # the server itself (load balancer registration, traffic shifts)
    HOOK_FUNCTION = "hook_function"  # a validation function; PutLifecycleEventHookExecutionStatus


@dataclass(frozen=True)
class LifecycleStep:
    name: str
    performer: Performer
    # Runs the scripts of the last successful revision on the instance (none on a first
    # deployment), and its failure is what ignoreApplicationStopFailures ignores.
    uses_previous_revision: bool = False


def _agent(name: str, *, previous: bool = False) -> LifecycleStep:
    return LifecycleStep(name, Performer.AGENT, uses_previous_revision=previous)


def _server(name: str) -> LifecycleStep:
    return LifecycleStep(name, Performer.SERVER)


def _hook(name: str) -> LifecycleStep:
    return LifecycleStep(name, Performer.HOOK_FUNCTION)


_BLOCK_TRAFFIC_STEPS = (
    _agent(BEFORE_BLOCK_TRAFFIC, previous=True),
    _server(BLOCK_TRAFFIC),
    _agent(AFTER_BLOCK_TRAFFIC, previous=True),
)
_INSTALL_STEPS = (
    _agent(APPLICATION_STOP, previous=True),
    _agent(DOWNLOAD_BUNDLE),
    _agent(BEFORE_INSTALL),
    _agent(INSTALL),
    _agent(AFTER_INSTALL),
    _agent(APPLICATION_START),
    _agent(VALIDATE_SERVICE),
)
_ALLOW_TRAFFIC_STEPS = (
    _agent(BEFORE_ALLOW_TRAFFIC),
    _server(ALLOW_TRAFFIC),
    _agent(AFTER_ALLOW_TRAFFIC),
)

# The command names AWS's agent accepts (its CommandName values).
AGENT_COMMANDS = frozenset(
    step.name
    for step in (*_BLOCK_TRAFFIC_STEPS, *_INSTALL_STEPS, *_ALLOW_TRAFFIC_STEPS)
    if step.performer is Performer.AGENT
)


def in_place_steps(*, with_traffic_control: bool) -> tuple[LifecycleStep, ...]:
    """The events of an in-place Server deployment (or its rollback), in run order."""
    if not with_traffic_control:
        return _INSTALL_STEPS
    return (*_BLOCK_TRAFFIC_STEPS, *_INSTALL_STEPS, *_ALLOW_TRAFFIC_STEPS)


_IN_PLACE_BY_NAME = {step.name: step for step in in_place_steps(with_traffic_control=True)}


def in_place_step(name: str) -> LifecycleStep:
    """The in-place step of this event name (KeyError for a name no in-place flow has)."""
    return _IN_PLACE_BY_NAME[name]


def blue_green_steps(label: TargetLabel, *, rollback: bool = False) -> tuple[LifecycleStep, ...]:
    """The events a blue/green deployment runs on its original (Blue) or replacement (Green)
    instances; a rollback lets traffic back to Blue and blocks it from Green."""
    if label == GREEN:
        return _BLOCK_TRAFFIC_STEPS if rollback else (*_INSTALL_STEPS, *_ALLOW_TRAFFIC_STEPS)
    return _ALLOW_TRAFFIC_STEPS if rollback else _BLOCK_TRAFFIC_STEPS


# Lambda: the server shifts traffic between versions; hooks validate before and after.
LAMBDA_STEPS = (
    _server(START),
    _hook(BEFORE_ALLOW_TRAFFIC),
    _server(ALLOW_TRAFFIC),
    _hook(AFTER_ALLOW_TRAFFIC),
    _server(END),
)

# ECS: a replacement task set, optional test traffic, then the production shift.
ECS_STEPS = (
    _server(START),
    _hook(BEFORE_INSTALL),
    _server(INSTALL),
    _hook(AFTER_INSTALL),
    _server(ALLOW_TEST_TRAFFIC),
    _hook(AFTER_ALLOW_TEST_TRAFFIC),
    _hook(BEFORE_ALLOW_TRAFFIC),
    _server(ALLOW_TRAFFIC),
    _hook(AFTER_ALLOW_TRAFFIC),
    _server(END),
)

# Rolling a Lambda or ECS deployment back moves the traffic back; no hook runs.
_SHIFT_ROLLBACK_STEPS = (_server(START), _server(ALLOW_TRAFFIC), _server(END))
_PLATFORM_STEPS = {"Lambda": LAMBDA_STEPS, "ECS": ECS_STEPS}
_PLATFORM_BY_NAME = {step.name: step for steps in _PLATFORM_STEPS.values() for step in steps}


def platform_steps(platform: str, *, rollback: bool = False) -> tuple[LifecycleStep, ...]:
    """The events of a Lambda or ECS deployment (or its rollback), in run order."""
    return _SHIFT_ROLLBACK_STEPS if rollback else _PLATFORM_STEPS[platform]


def platform_step(name: str) -> LifecycleStep:
    """The Lambda or ECS step of this event name (KeyError for one neither has)."""
    return _PLATFORM_BY_NAME[name]
