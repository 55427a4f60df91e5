"""What other services may use of CloudWatch alarms, and nothing more.

CodeDeploy reads the states of a deployment group's alarms when a deployment starts and
listens for changes (the `codedeploy.alarm_state_changed` hook, whose listeners take
`(session, alarm, old_state, new_state)`). It imports this module only, so the alarm
tables and modules can change behind it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from forgeline.cloudwatch import store
from forgeline.cloudwatch.alarm_state import AlarmStateListener
from forgeline.cloudwatch.tables import MetricAlarm

__all__ = [
    "ALARM",
    "INSUFFICIENT_DATA",
    "OK",
    "AlarmStateListener",
    "MetricAlarm",
    "alarm_states",
]

ALARM = "ALARM"
OK = "OK"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


def alarm_states(
    session: Session, account_id: str, region: str, names: Iterable[str]
) -> dict[str, str]:
    """Alarm name -> its state value, for the named alarms that exist (a name missing from
    the answer names no alarm of this account and region)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    return {
        alarm.name: alarm.state_value
        for alarm in store.list_alarms(session, account_id, region, names=wanted)
    }
