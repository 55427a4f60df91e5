"""Alarm states: SetAlarmState (how a test or a monitoring hook trips an alarm)."""

from __future__ import annotations

from forgeline.cloudwatch import alarm_rules, alarm_state, store
from forgeline.cloudwatch.generated import errors, shapes
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope


class StateOperations:
    def set_alarm_state(self, ctx: RequestContext, params: shapes.SetAlarmStateInput) -> None:
        reason_data = params.get("StateReasonData")
        if alarm_rules.parse_reason_data(reason_data) is None:
            reason_data = None
        with session_scope() as session:
            alarm = store.find_alarm(
                session, ctx.account_id, ctx.region, params["AlarmName"], for_update=True
            )
            if alarm is None:
                raise errors.ResourceNotFound(
                    f"Alarm {params['AlarmName']} does not exist in account {ctx.account_id}, "
                    f"region {ctx.region}."
                )
            alarm_state.change_state(
                session, alarm, params["StateValue"], params["StateReason"], reason_data
            )
