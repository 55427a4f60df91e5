"""When a Lambda or ECS deployment moves how much traffic to the new version (pure).

A deployment config's traffic routing becomes a schedule of steps, each an offset from the
moment traffic starts to shift and the percentage of traffic the new version receives from
then on. As AWS applies them:

- AllAtOnce: 100% at once.
- TimeBasedCanary {p, n}: p% at once, the other (100 - p)% n minutes later.
- TimeBasedLinear {p, n}: p% at the start of each n-minute increment: p, 2p, ... at 0, n,
  2n, ...; the last increment takes what is left, so a step that does not divide 100 ends
  on 100 (33% every 5 minutes: 33, 66, 99 then 100 at minute 15). That is
  ceil(100 / p) increments, the count AWS's 2880-minute limit is measured on.

Percentages are whole numbers, as the config gives them; nothing is rounded but the last
linear increment, which is capped at 100. A Lambda alias takes the share as a fraction
(`weight / 100`); a proxy scales it to its own weights.

`minute` sets how long a config's minute lasts, so tests and demos can run a
"10 percent for 5 minutes" canary in 5 seconds.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt

from forgeline.codedeploy.configs import TrafficRouting
from forgeline.codedeploy.generated import shapes

ONE_MINUTE = dt.timedelta(minutes=1)
ALL_TRAFFIC = 100


@dataclasses.dataclass(frozen=True)
class ShiftStep:
    offset: dt.timedelta  # from the moment traffic starts to shift
    weight: int  # percent of traffic on the new version from `offset` on


@dataclasses.dataclass(frozen=True)
class ShiftSchedule:
    steps: tuple[ShiftStep, ...]  # offsets ascending, weights rising, the last one 100

    @property
    def duration(self) -> dt.timedelta:
        """From the first shift until all traffic is on the new version."""
        return self.steps[-1].offset


def build_schedule(
    routing: TrafficRouting | shapes.TrafficRoutingConfig | None,
    minute: dt.timedelta = ONE_MINUTE,
) -> ShiftSchedule:
    """The steps a traffic routing config takes; no config shifts all at once (AWS's
    default for Lambda and ECS)."""
    if minute <= dt.timedelta(0):
        raise ValueError(f"a minute must last longer than zero, not {minute}")
    routing = _as_routing(routing)
    if routing.type == "AllAtOnce":
        return ShiftSchedule((ShiftStep(dt.timedelta(0), ALL_TRAFFIC),))
    percent, interval = _increment(routing)
    if routing.type == "TimeBasedCanary":
        return ShiftSchedule(
            (ShiftStep(dt.timedelta(0), percent), ShiftStep(interval * minute, ALL_TRAFFIC))
        )
    increments = -(-ALL_TRAFFIC // percent)  # ceil(100 / percent)
    return ShiftSchedule(
        tuple(
            ShiftStep(index * interval * minute, min(ALL_TRAFFIC, (index + 1) * percent))
            for index in range(increments)
        )
    )


def weight_at(schedule: ShiftSchedule, elapsed: dt.timedelta) -> int:
    """The new version's share `elapsed` after shifting began (0 before it began)."""
    offsets = [step.offset for step in schedule.steps]
    index = bisect.bisect_right(offsets, elapsed)
    return schedule.steps[index - 1].weight if index else 0


def next_step(schedule: ShiftSchedule, elapsed: dt.timedelta) -> ShiftStep | None:
    """The first step still to come `elapsed` after shifting began; None once all is done.
    What a driver sets its next timer for."""
    return next((step for step in schedule.steps if step.offset > elapsed), None)


def _as_routing(routing: TrafficRouting | shapes.TrafficRoutingConfig | None) -> TrafficRouting:
    if routing is None:
        return TrafficRouting("AllAtOnce")
    if isinstance(routing, TrafficRouting):
        return routing
    kind = routing.get("type", "AllAtOnce")
    if kind == "TimeBasedCanary":
        canary = routing.get("timeBasedCanary") or {}
        return TrafficRouting(
            "TimeBasedCanary", canary.get("canaryPercentage"), canary.get("canaryInterval")
        )
    if kind == "TimeBasedLinear":
        linear = routing.get("timeBasedLinear") or {}
        return TrafficRouting(
            "TimeBasedLinear", linear.get("linearPercentage"), linear.get("linearInterval")
        )
    if kind == "AllAtOnce":
        return TrafficRouting("AllAtOnce")
    raise ValueError(f"unknown traffic routing type {kind!r}")


def _increment(routing: TrafficRouting) -> tuple[int, int]:
    """A canary or linear config's percentage and interval, which configs.py has checked
    for custom configs; a config that still breaks them is a bug, said plainly."""
    percent, interval = routing.percentage, routing.interval_minutes
    if percent is None or not 1 <= percent <= 99:
        raise ValueError(f"a {routing.type} percentage must be 1 to 99, not {percent}")
    if interval is None or interval < 1:
        raise ValueError(f"a {routing.type} interval must be 1 minute or more, not {interval}")
    return percent, interval
