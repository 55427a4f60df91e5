"""An alarm's state changes: the row, the services listening, the event stream.

CodeDeploy stops (and may roll back) a deployment when one of its group's alarms goes to
ALARM: it subscribes to the manifest hook `codedeploy.alarm_state_changed`, whose
listeners are called here, inside the transaction that records the change, so a listener
never misses one and its own writes commit with it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from forgeline.cloudwatch import alarm_events
from forgeline.cloudwatch.tables import MetricAlarm
from forgeline.core.db import utcnow
from forgeline.core.events.stream import publish

# listener(session, alarm, old_state, new_state), called when the state value changes.
AlarmStateListener = Callable[[Session, MetricAlarm, str, str], None]
ALARM_STATE_LISTENERS: list[AlarmStateListener] = []


def change_state(
    session: Session, alarm: MetricAlarm, value: str, reason: str, reason_data: str | None
) -> bool:
    """Record a new state for `alarm` (a row locked for update); returns whether its value
    changed. Only a change reaches the listeners and the event stream: setting the state
    an alarm already has only records the new reason."""
    previous = _record(alarm)
    now = utcnow()
    alarm.state_reason = reason
    alarm.state_reason_data = reason_data
    alarm.state_updated_at = now
    if value == previous.value:
        session.flush()
        return False
    alarm.state_value = value
    alarm.state_transitioned_at = now
    session.flush()
    for listener in list(ALARM_STATE_LISTENERS):
        listener(session, alarm, previous.value, value)
    # Last: on Postgres, publishing holds the stream's lock until this transaction ends.
    publish(
        session,
        account_id=alarm.account_id,
        region=alarm.region,
        source=alarm_events.SOURCE,
        detail_type=alarm_events.STATE_CHANGE,
        resources=[alarm.arn],
        detail=alarm_events.state_change_detail(
            alarm.name, alarm.arn, alarm.document, previous, _record(alarm)
        ),
    )
    return True


def _record(alarm: MetricAlarm) -> alarm_events.StateRecord:
    return alarm_events.StateRecord(
        value=alarm.state_value,
        reason=alarm.state_reason,
        reason_data=alarm.state_reason_data,
        timestamp=alarm.state_updated_at,
    )
