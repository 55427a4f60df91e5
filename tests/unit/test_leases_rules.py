"""The reaper's decision rule, without a database."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from forgeline.core.work.leases import reap_decision

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


@dataclasses.dataclass
class Row:
    status: str = "RUNNING"
    lease_expires_at: dt.datetime | None = None
    attempts: int = 1
    max_attempts: int = 3


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def test_running_row_with_live_lease_is_left_alone() -> None:
    assert reap_decision(Row(lease_expires_at=ago(-5)), NOW) is None


def test_lease_expiring_exactly_now_is_still_held() -> None:
    assert reap_decision(Row(lease_expires_at=NOW), NOW) is None


def test_expired_lease_with_attempts_left_is_requeued() -> None:
    assert reap_decision(Row(lease_expires_at=ago(1), attempts=2, max_attempts=3), NOW) == "requeue"


def test_expired_lease_on_last_attempt_fails() -> None:
    assert reap_decision(Row(lease_expires_at=ago(1), attempts=3, max_attempts=3), NOW) == "fail"
    assert reap_decision(Row(lease_expires_at=ago(1), attempts=1, max_attempts=1), NOW) == "fail"


def test_rows_not_running_are_never_reaped() -> None:
    for status in ("QUEUED", "SUCCEEDED", "FAILED"):
        assert reap_decision(Row(status=status, lease_expires_at=ago(60)), NOW) is None


def test_running_status_is_configurable() -> None:
    row = Row(status="IN_PROGRESS", lease_expires_at=ago(1))
    assert reap_decision(row, NOW) is None
    assert reap_decision(row, NOW, running_status="IN_PROGRESS") == "requeue"


@given(
    expired_by=st.floats(min_value=-3600, max_value=3600, allow_nan=False),
    attempts=st.integers(min_value=0, max_value=10),
    max_attempts=st.integers(min_value=1, max_value=10),
)
def test_decision_matches_the_rule(expired_by: float, attempts: int, max_attempts: int) -> None:
    row = Row(lease_expires_at=ago(expired_by), attempts=attempts, max_attempts=max_attempts)
    decision = reap_decision(row, NOW)
    if row.lease_expires_at >= NOW:
        assert decision is None
    elif attempts < max_attempts:
        assert decision == "requeue"
    else:
        assert decision == "fail"
