"""Metric alarm rows: find, list, create or replace, delete. Every query is scoped to one
account and region."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.cloudwatch.tables import MetricAlarm
from forgeline.core.db import utcnow

INITIAL_REASON = "Unchecked: Initial alarm creation"


def alarm_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{name}"


def find_alarm(
    session: Session, account_id: str, region: str, name: str, *, for_update: bool = False
) -> MetricAlarm | None:
    query = select(MetricAlarm).where(
        MetricAlarm.account_id == account_id,
        MetricAlarm.region == region,
        MetricAlarm.name == name,
    )
    if for_update:
        # Two state changes of one alarm must see each other's result (old -> new).
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def list_alarms(
    session: Session,
    account_id: str,
    region: str,
    *,
    names: Sequence[str] | None = None,
    prefix: str | None = None,
    state: str | None = None,
) -> list[MetricAlarm]:
    """The alarms that pass every filter given, by name (the order DescribeAlarms pages in)."""
    query = select(MetricAlarm).where(
        MetricAlarm.account_id == account_id, MetricAlarm.region == region
    )
    if names is not None:
        query = query.where(MetricAlarm.name.in_(list(names)))
    if prefix:
        # Not LIKE: SQLite's LIKE ignores case, and the prefix may hold % or _.
        query = query.where(func.substr(MetricAlarm.name, 1, len(prefix)) == prefix)
    if state is not None:
        query = query.where(MetricAlarm.state_value == state)
    alarms = list(session.scalars(query))
    # Sorted here, by code point: the databases' collations may order names differently.
    return sorted(alarms, key=lambda alarm: alarm.name)


def put_alarm(
    session: Session,
    account_id: str,
    region: str,
    name: str,
    document: dict[str, Any],
    initial_state: str,
) -> tuple[MetricAlarm, bool]:
    """Create the alarm, or replace the configuration of the one of that name (its state is
    kept, as PutMetricAlarm does). Returns the row and whether it is new."""
    existing = find_alarm(session, account_id, region, name, for_update=True)
    if existing is None:
        now = utcnow()
        alarm = MetricAlarm(
            id=str(uuid.uuid4()),
            account_id=account_id,
            region=region,
            name=name,
            arn=alarm_arn(region, account_id, name),
            document=document,
            state_value=initial_state,
            state_reason=INITIAL_REASON,
            state_reason_data=None,
            state_updated_at=now,
            state_transitioned_at=now,
            configuration_updated_at=now,
        )
        try:
            # A savepoint: a concurrent PutMetricAlarm of the same name may win the insert,
            # and then this one updates its row instead.
            with session.begin_nested():
                session.add(alarm)
            return alarm, True
        except IntegrityError:
            existing = find_alarm(session, account_id, region, name, for_update=True)
            if existing is None:
                raise
    existing.document = document
    existing.configuration_updated_at = utcnow()
    session.flush()
    return existing, False


def delete_alarms(
    session: Session, account_id: str, region: str, names: Iterable[str]
) -> list[MetricAlarm]:
    """Delete the named alarms that exist; returns them (names that match none are skipped)."""
    alarms = list_alarms(session, account_id, region, names=sorted(set(names)))
    for alarm in alarms:
        session.delete(alarm)
    session.flush()
    return alarms
