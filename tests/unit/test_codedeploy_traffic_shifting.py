"""Traffic-shifting schedules: every predefined Lambda and ECS config gives AWS's steps, the
weight follows them in time, custom configs (shapes too) shift the same way, and a scaled
minute compresses the schedule without changing its shape."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forgeline.codedeploy.configs import PREDEFINED, TrafficRouting
from forgeline.codedeploy.traffic_shifting import (
    ShiftSchedule,
    ShiftStep,
    build_schedule,
    next_step,
    weight_at,
)

MINUTE = dt.timedelta(minutes=1)


def steps(*pairs: tuple[float, int]) -> tuple[ShiftStep, ...]:
    return tuple(ShiftStep(dt.timedelta(minutes=minutes), weight) for minutes, weight in pairs)


def linear_10(every: int) -> tuple[ShiftStep, ...]:
    return steps(*((index * every, (index + 1) * 10) for index in range(10)))


# What AWS does with each predefined traffic-routing config, written out by hand.
EXPECTED = {
    "CodeDeployDefault.LambdaAllAtOnce": steps((0, 100)),
    "CodeDeployDefault.LambdaCanary10Percent5Minutes": steps((0, 10), (5, 100)),
    "CodeDeployDefault.LambdaCanary10Percent10Minutes": steps((0, 10), (10, 100)),
    "CodeDeployDefault.LambdaCanary10Percent15Minutes": steps((0, 10), (15, 100)),
    "CodeDeployDefault.LambdaCanary10Percent30Minutes": steps((0, 10), (30, 100)),
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute": linear_10(1),
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes": linear_10(2),
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes": linear_10(3),
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes": linear_10(10),
    "CodeDeployDefault.ECSAllAtOnce": steps((0, 100)),
    "CodeDeployDefault.ECSCanary10Percent5Minutes": steps((0, 10), (5, 100)),
    "CodeDeployDefault.ECSCanary10Percent15Minutes": steps((0, 10), (15, 100)),
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes": linear_10(1),
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes": linear_10(3),
}


def test_every_predefined_lambda_and_ecs_config_is_covered() -> None:
    routed = {name for name, config in PREDEFINED.items() if config.traffic_routing is not None}
    assert routed == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_predefined_config_schedule(name: str) -> None:
    schedule = build_schedule(PREDEFINED[name].traffic_routing)
    assert schedule.steps == EXPECTED[name]
    assert schedule.duration == EXPECTED[name][-1].offset


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_predefined_config_weight_over_time(name: str) -> None:
    schedule = build_schedule(PREDEFINED[name].traffic_routing)
    assert weight_at(schedule, -dt.timedelta(seconds=1)) == 0
    for index, step in enumerate(schedule.steps):
        # A step holds from its own offset until just before the next one.
        assert weight_at(schedule, step.offset) == step.weight
        until = (
            schedule.steps[index + 1].offset
            if index + 1 < len(schedule.steps)
            else step.offset + dt.timedelta(hours=1)
        )
        assert weight_at(schedule, until - dt.timedelta(microseconds=1)) == step.weight
    assert weight_at(schedule, schedule.duration + dt.timedelta(days=3)) == 100


def test_canary_ten_percent_for_five_minutes_in_detail() -> None:
    schedule = build_schedule(
        PREDEFINED["CodeDeployDefault.LambdaCanary10Percent5Minutes"].traffic_routing
    )
    assert [weight_at(schedule, dt.timedelta(seconds=s)) for s in (0, 60, 299, 300, 301)] == [
        10,
        10,
        10,
        100,
        100,
    ]
    assert next_step(schedule, dt.timedelta(0)) == ShiftStep(5 * MINUTE, 100)
    assert next_step(schedule, 5 * MINUTE) is None


def test_linear_increment_that_does_not_divide_a_hundred_ends_on_a_hundred() -> None:
    schedule = build_schedule(TrafficRouting("TimeBasedLinear", 33, 5))
    assert schedule.steps == steps((0, 33), (5, 66), (10, 99), (15, 100))
    schedule = build_schedule(TrafficRouting("TimeBasedLinear", 60, 2))
    assert schedule.steps == steps((0, 60), (2, 100))


def test_custom_canary_and_linear_from_the_apis_shapes() -> None:
    canary = build_schedule(
        {
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": 25, "canaryInterval": 7},
        }
    )
    assert canary.steps == steps((0, 25), (7, 100))
    linear = build_schedule(
        {
            "type": "TimeBasedLinear",
            "timeBasedLinear": {"linearPercentage": 50, "linearInterval": 4},
        }
    )
    assert linear.steps == steps((0, 50), (4, 100))
    assert build_schedule({"type": "AllAtOnce"}).steps == steps((0, 100))
    assert build_schedule(None).steps == steps((0, 100))


def test_a_scaled_minute_compresses_the_schedule() -> None:
    second = dt.timedelta(seconds=1)
    routing = PREDEFINED["CodeDeployDefault.ECSLinear10PercentEvery3Minutes"].traffic_routing
    schedule = build_schedule(routing, minute=second)
    assert schedule.duration == 27 * second
    assert weight_at(schedule, dt.timedelta(seconds=4)) == 20
    assert next_step(schedule, dt.timedelta(seconds=4)) == ShiftStep(6 * second, 30)
    fast = build_schedule(
        PREDEFINED["CodeDeployDefault.LambdaCanary10Percent5Minutes"].traffic_routing,
        minute=dt.timedelta(milliseconds=200),
    )
    assert fast.steps == (
        ShiftStep(dt.timedelta(0), 10),
        ShiftStep(dt.timedelta(seconds=1), 100),
    )


@pytest.mark.parametrize(
    ("routing", "minute", "message"),
    [
        (TrafficRouting("TimeBasedCanary", 0, 5), MINUTE, "percentage must be 1 to 99, not 0"),
        (TrafficRouting("TimeBasedLinear", 100, 5), MINUTE, "percentage must be 1 to 99, not 100"),
        (TrafficRouting("TimeBasedLinear", 10, None), MINUTE, "interval must be 1 minute or more"),
        (TrafficRouting("AllAtOnce"), dt.timedelta(0), "a minute must last longer than zero"),
        ({"type": "Sideways"}, MINUTE, "unknown traffic routing type 'Sideways'"),
    ],
)
def test_broken_configs_are_refused(routing: object, minute: dt.timedelta, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_schedule(routing, minute)  # type: ignore[arg-type]


@given(
    kind=st.sampled_from(["TimeBasedCanary", "TimeBasedLinear"]),
    percent=st.integers(1, 99),
    interval=st.integers(1, 2880),
    elapsed_minutes=st.floats(-10, 300_000, allow_nan=False),
)
def test_schedules_only_ever_rise_to_all_traffic(
    kind: str, percent: int, interval: int, elapsed_minutes: float
) -> None:
    schedule: ShiftSchedule = build_schedule(TrafficRouting(kind, percent, interval))  # type: ignore[arg-type]
    weights = [step.weight for step in schedule.steps]
    offsets = [step.offset for step in schedule.steps]
    assert weights[0] == percent and weights[-1] == 100
    assert weights == sorted(set(weights)) and offsets == sorted(set(offsets))
    assert all(
        later - earlier == interval * MINUTE
        for earlier, later in zip(offsets, offsets[1:], strict=False)
    )
    weight = weight_at(schedule, dt.timedelta(minutes=elapsed_minutes))
    assert weight in [0, *weights]
    upcoming = next_step(schedule, dt.timedelta(minutes=elapsed_minutes))
    assert upcoming is None or upcoming.weight > weight
