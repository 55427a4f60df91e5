"""Minimum healthy hosts: how many instances a Server deployment may take at once, in which
order, and when it has succeeded or can no longer succeed.

AWS's rules ("CodeDeploy instance health", "Working with deployment configurations"):

- The healthy minimum is a HOST_COUNT as given, or a FLEET_PERCENT of the deployment's
  instances, rounded up, fixed when the deployment starts. CodeDeployDefault.OneAtATime is
  reported as MOST_CONCURRENCY 1: all instances but one must stay healthy.
- A deployment whose minimum is not below its instance count fails at once
  (HEALTH_CONSTRAINTS_INVALID); one with no instances fails with NO_INSTANCES.
- CodeDeploy deploys to as many instances at a time as it can without any risk of the
  healthy count falling below the minimum: an instance being deployed to, or whose
  deployment failed, is not healthy. So at most `instances - minimum - failed` are in
  flight, and once that reaches zero with instances left the deployment fails
  (HEALTH_CONSTRAINTS): 10 instances with a minimum of 8 go two at a time and fail at the
  second failure, unless that failure was on the last instance.
- It succeeds when every instance has been tried and at least the minimum (and never
  fewer than one) succeeded: AllAtOnce if any instance succeeds, HalfAtATime if half
  (rounded up) do, OneAtATime if all do except possibly the last.
- Instances are taken Unhealthy first, then revision health Unknown, Old, Current.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

HOST_COUNT = "HOST_COUNT"
FLEET_PERCENT = "FLEET_PERCENT"
# What GetDeploymentConfig reports for CodeDeployDefault.OneAtATime (value 1): at most
# `value` instances out of service at once. Not a type a custom config may use.
MOST_CONCURRENCY = "MOST_CONCURRENCY"
_TYPES = (HOST_COUNT, FLEET_PERCENT, MOST_CONCURRENCY)


@dataclass(frozen=True)
class MinimumHealthyHosts:
    type: str
    value: int

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"minimum healthy hosts type must be one of {_TYPES}: {self.type!r}")
        if self.value < 0:
            raise ValueError(f"minimum healthy hosts value must not be negative: {self.value}")

    def to_document(self) -> dict[str, Any]:
        return {"type": self.type, "value": self.value}

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> MinimumHealthyHosts:
        return cls(type=str(data["type"]), value=int(data["value"]))


ONE_AT_A_TIME = MinimumHealthyHosts(MOST_CONCURRENCY, 1)
HALF_AT_A_TIME = MinimumHealthyHosts(FLEET_PERCENT, 50)
ALL_AT_ONCE = MinimumHealthyHosts(HOST_COUNT, 0)


def minimum_healthy(rule: MinimumHealthyHosts, fleet_size: int) -> int:
    """The number of the deployment's instances that must stay healthy."""
    if rule.type == HOST_COUNT:
        return rule.value
    if rule.type == FLEET_PERCENT:
        return -(-fleet_size * rule.value // 100)  # fractions of an instance round up
    return max(fleet_size - rule.value, 0)


# ---------------------------------------------------------------- health classes


class HealthClass(StrEnum):
    """An instance's place in the deployment order: its instance health when Unhealthy
    (its last deployment failed, or it never had one), else its revision health."""

    UNHEALTHY = "Unhealthy"
    UNKNOWN = "Unknown"
    OLD = "Old"
    CURRENT = "Current"


_HEALTH_RANK = {health: rank for rank, health in enumerate(HealthClass)}

T = TypeVar("T")


def deployment_order(items: Iterable[T], health: Callable[[T], HealthClass]) -> list[T]:
    """``items`` in the order CodeDeploy deploys to them; equal classes keep their order."""
    return sorted(items, key=lambda item: _HEALTH_RANK[health(item)])


# ---------------------------------------------------------------- the plan and its verdicts

NO_INSTANCES = "NO_INSTANCES"
HEALTH_CONSTRAINTS_INVALID = "HEALTH_CONSTRAINTS_INVALID"


@dataclass(frozen=True)
class RolloutPlan:
    """The healthy minimum of one deployment, fixed for its fleet when it starts."""

    fleet_size: int
    minimum_healthy: int

    @classmethod
    def for_fleet(cls, rule: MinimumHealthyHosts, fleet_size: int) -> RolloutPlan:
        return cls(fleet_size=fleet_size, minimum_healthy=minimum_healthy(rule, fleet_size))

    @property
    def batch_size(self) -> int:
        """The most instances deployed to at once while none has failed."""
        return max(self.fleet_size - self.minimum_healthy, 0)

    @property
    def success_threshold(self) -> int:
        """How many instances must succeed: the minimum, and always at least one."""
        return max(self.minimum_healthy, 1)

    def start_problem(self) -> str | None:
        """The error code that fails the deployment before it touches any instance."""
        if self.fleet_size == 0:
            return NO_INSTANCES
        if self.minimum_healthy >= self.fleet_size:
            return HEALTH_CONSTRAINTS_INVALID
        return None

    def judge(self, progress: Progress) -> Verdict:
        """What the deployment does next, given how its instances stand."""
        if progress.pending == 0 and progress.in_flight == 0:
            if progress.succeeded >= self.success_threshold:
                return Verdict(Outcome.SUCCEEDED)
            return Verdict(Outcome.FAILED)
        capacity = self.fleet_size - self.minimum_healthy - progress.failed
        if progress.pending > 0 and capacity <= 0:
            # Taking one more instance out of service could leave fewer than the minimum
            # healthy: the deployment stops here, whatever the rest would have done.
            return Verdict(Outcome.FAILED)
        startable = min(progress.pending, max(capacity - progress.in_flight, 0))
        return Verdict(Outcome.CONTINUE, startable)

    def to_document(self) -> dict[str, Any]:
        return {"fleetSize": self.fleet_size, "minimumHealthy": self.minimum_healthy}

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> RolloutPlan:
        return cls(fleet_size=int(data["fleetSize"]), minimum_healthy=int(data["minimumHealthy"]))


@dataclass(frozen=True)
class Progress:
    """Counts of the deployment's instances by where they stand."""

    pending: int = 0
    in_flight: int = 0
    succeeded: int = 0
    failed: int = 0


class Outcome(StrEnum):
    CONTINUE = "continue"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    # With CONTINUE: how many more instances to start now.
    startable: int = 0
