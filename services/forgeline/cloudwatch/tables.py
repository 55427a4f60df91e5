"""CloudWatch metric alarms: one row per alarm, its configuration kept as PutMetricAlarm sent it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow


class MetricAlarm(Base):
    """A metric alarm and its state.

    `document` holds the PutMetricAlarm input minus `AlarmName` and `Tags` (tags live in
    the shared tag table): DescribeAlarms echoes it, and a member the model adds later
    needs no migration. The state columns are what SetAlarmState (and, some day, metric
    evaluation) changes.
    """

    __tablename__ = "metric_alarms"
    __table_args__ = (UniqueConstraint("account_id", "region", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    arn: Mapped[str] = mapped_column(String(1600))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    state_value: Mapped[str] = mapped_column(String(32))
    state_reason: Mapped[str] = mapped_column(Text)
    state_reason_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Last SetAlarmState (or evaluation) of the state; the last time its value changed.
    state_updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    state_transitioned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    configuration_updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
