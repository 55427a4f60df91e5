"""Minimum healthy hosts, as AWS's CodeDeploy documentation states its rules and examples."""

from __future__ import annotations

import pytest

from forgeline.codedeploy.orchestrator.rollout import (
    ALL_AT_ONCE,
    FLEET_PERCENT,
    HALF_AT_A_TIME,
    HEALTH_CONSTRAINTS_INVALID,
    HOST_COUNT,
    NO_INSTANCES,
    ONE_AT_A_TIME,
    HealthClass,
    MinimumHealthyHosts,
    Outcome,
    Progress,
    RolloutPlan,
    deployment_order,
    minimum_healthy,
)


def plan(rule: MinimumHealthyHosts, fleet: int) -> RolloutPlan:
    return RolloutPlan.for_fleet(rule, fleet)


@pytest.mark.parametrize(
    ("rule", "fleet", "expected"),
    [
        (MinimumHealthyHosts(HOST_COUNT, 6), 9, 6),
        (MinimumHealthyHosts(FLEET_PERCENT, 40), 9, 4),  # 3.6 rounds up
        (MinimumHealthyHosts(FLEET_PERCENT, 95), 10, 10),  # 9.5 rounds up
        (MinimumHealthyHosts(FLEET_PERCENT, 85), 10, 9),
        (HALF_AT_A_TIME, 9, 5),
        (HALF_AT_A_TIME, 4, 2),
        (ALL_AT_ONCE, 9, 0),
        (ONE_AT_A_TIME, 9, 8),
        (ONE_AT_A_TIME, 1, 0),
    ],
)
def test_the_healthy_minimum_of_a_fleet(rule, fleet, expected):
    assert minimum_healthy(rule, fleet) == expected


@pytest.mark.parametrize(
    ("rule", "fleet", "batch", "must_succeed"),
    [
        # "In an example of nine instances, if a HOST_COUNT of six is specified, deploy to up
        # to three instances at a time. The deployment is successful if six or more ..."
        (MinimumHealthyHosts(HOST_COUNT, 6), 9, 3, 6),
        # "If a FLEET_PERCENT of 40 is specified, deploy to up to five instances at a time.
        # The deployment is successful if four or more instances ..."
        (MinimumHealthyHosts(FLEET_PERCENT, 40), 9, 5, 4),
        # HalfAtATime on nine: up to four at a time, five or more must succeed.
        (HALF_AT_A_TIME, 9, 4, 5),
        # AllAtOnce on nine: all at once, one success is enough.
        (ALL_AT_ONCE, 9, 9, 1),
        # OneAtATime: one at a time, all but the last must succeed; alone, it must succeed.
        (ONE_AT_A_TIME, 9, 1, 8),
        (ONE_AT_A_TIME, 1, 1, 1),
        # Ten instances with a minimum of 9 go one at a time, with 0 all at once.
        (MinimumHealthyHosts(HOST_COUNT, 9), 10, 1, 9),
        (MinimumHealthyHosts(HOST_COUNT, 0), 10, 10, 1),
    ],
)
def test_batch_size_and_success_threshold_follow_aws_examples(rule, fleet, batch, must_succeed):
    rollout = plan(rule, fleet)
    assert rollout.batch_size == batch
    assert rollout.success_threshold == must_succeed
    assert rollout.start_problem() is None


@pytest.mark.parametrize(
    ("rule", "fleet", "problem"),
    [
        (ALL_AT_ONCE, 0, NO_INSTANCES),
        (ONE_AT_A_TIME, 0, NO_INSTANCES),
        # 95% of ten rounds up to ten: "The overall deployment immediately fails".
        (MinimumHealthyHosts(FLEET_PERCENT, 95), 10, HEALTH_CONSTRAINTS_INVALID),
        (MinimumHealthyHosts(HOST_COUNT, 10), 10, HEALTH_CONSTRAINTS_INVALID),
        (MinimumHealthyHosts(HOST_COUNT, 12), 10, HEALTH_CONSTRAINTS_INVALID),
        # Half of one instance rounds up to one: nothing could ever be taken offline.
        (HALF_AT_A_TIME, 1, HEALTH_CONSTRAINTS_INVALID),
    ],
)
def test_a_deployment_that_cannot_start(rule, fleet, problem):
    assert plan(rule, fleet).start_problem() == problem


def test_ten_instances_with_a_minimum_of_eight_fail_at_the_second_failure():
    rollout = plan(MinimumHealthyHosts(HOST_COUNT, 8), 10)
    assert rollout.judge(Progress(pending=10)).startable == 2
    # One failure: one instance at a time from now on.
    one = rollout.judge(Progress(pending=8, in_flight=0, succeeded=1, failed=1))
    assert (one.outcome, one.startable) == (Outcome.CONTINUE, 1)
    busy = rollout.judge(Progress(pending=7, in_flight=1, succeeded=1, failed=1))
    assert (busy.outcome, busy.startable) == (Outcome.CONTINUE, 0)
    # A second failure with instances left: the deployment fails at once.
    assert rollout.judge(Progress(pending=6, succeeded=2, failed=2)).outcome is Outcome.FAILED
    # ... unless the second failure was the last instance.
    assert rollout.judge(Progress(succeeded=8, failed=2)).outcome is Outcome.SUCCEEDED


def test_all_at_once_needs_one_success():
    rollout = plan(ALL_AT_ONCE, 3)
    assert rollout.judge(Progress(pending=3)).startable == 3
    assert rollout.judge(Progress(succeeded=1, failed=2)).outcome is Outcome.SUCCEEDED
    assert rollout.judge(Progress(failed=3)).outcome is Outcome.FAILED


def test_half_at_a_time_fails_when_its_first_half_fails():
    rollout = plan(HALF_AT_A_TIME, 4)
    assert rollout.judge(Progress(pending=2, failed=2)).outcome is Outcome.FAILED
    assert rollout.judge(Progress(succeeded=2, failed=2)).outcome is Outcome.SUCCEEDED
    assert rollout.judge(Progress(succeeded=1, failed=3)).outcome is Outcome.FAILED


def test_one_at_a_time_alone_must_succeed():
    rollout = plan(ONE_AT_A_TIME, 1)
    assert rollout.judge(Progress(failed=1)).outcome is Outcome.FAILED
    assert rollout.judge(Progress(succeeded=1)).outcome is Outcome.SUCCEEDED


def test_instances_are_ordered_unhealthy_unknown_old_current_keeping_ties():
    hosts = [
        ("c1", HealthClass.CURRENT),
        ("o1", HealthClass.OLD),
        ("u1", HealthClass.UNHEALTHY),
        ("k1", HealthClass.UNKNOWN),
        ("o2", HealthClass.OLD),
        ("u2", HealthClass.UNHEALTHY),
    ]
    ordered = deployment_order(hosts, lambda host: host[1])
    assert [name for name, _ in ordered] == ["u1", "u2", "k1", "o1", "o2", "c1"]


def test_minimum_healthy_hosts_refuses_nonsense_and_round_trips():
    with pytest.raises(ValueError, match="type"):
        MinimumHealthyHosts("SOME_HOSTS", 1)
    with pytest.raises(ValueError, match="negative"):
        MinimumHealthyHosts(HOST_COUNT, -1)
    rule = MinimumHealthyHosts(FLEET_PERCENT, 75)
    assert MinimumHealthyHosts.from_document(rule.to_document()) == rule
    rollout = plan(rule, 7)
    assert RolloutPlan.from_document(rollout.to_document()) == rollout
