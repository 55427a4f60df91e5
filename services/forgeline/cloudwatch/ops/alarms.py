"""Metric alarms: PutMetricAlarm, DescribeAlarms, DeleteAlarms."""

from __future__ import annotations

from typing import Any, cast

from forgeline.cloudwatch import alarm_rules, store
from forgeline.cloudwatch.generated import errors, shapes
from forgeline.cloudwatch.ops.tags import PUT_ALARM_TAG_ERRORS, tag_map
from forgeline.cloudwatch.tables import MetricAlarm
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import request_page_tokens

DESCRIBE_PAGE_SIZE = 50
# The input members DescribeAlarms echoes: every one the MetricAlarm shape also has.
ECHOED_MEMBERS = frozenset(shapes.MetricAlarm.__optional_keys__) - {"AlarmName", "AlarmArn"}
ACTION_MEMBERS = ("OKActions", "AlarmActions", "InsufficientDataActions")


class AlarmOperations:
    def put_metric_alarm(self, ctx: RequestContext, params: shapes.PutMetricAlarmInput) -> None:
        kind = alarm_rules.check_alarm_definition(params)
        tags = tag_map(params.get("Tags", []), PUT_ALARM_TAG_ERRORS)
        document = {
            member: value for member, value in params.items() if member not in ("AlarmName", "Tags")
        }
        with session_scope() as session:
            alarm, created = store.put_alarm(
                session,
                ctx.account_id,
                ctx.region,
                params["AlarmName"],
                document,
                alarm_rules.initial_state(kind),
            )
            # Tags count only when the alarm is created; an update ignores them (as AWS).
            if created and tags:
                tagging.put_tags(session, ctx.account_id, alarm.arn, tags, PUT_ALARM_TAG_ERRORS)

    def describe_alarms(
        self, ctx: RequestContext, params: shapes.DescribeAlarmsInput
    ) -> shapes.DescribeAlarmsOutput:
        alarm_rules.check_describe_filters(params)
        # Without AlarmTypes only metric alarms are returned; composite and log alarms are
        # not implemented, so their lists are always empty.
        types = params.get("AlarmTypes") or ["MetricAlarm"]
        # A metric alarm is neither a composite alarm's child nor, here, anyone's parent.
        related = "ChildrenOfAlarmName" in params or "ParentsOfAlarmName" in params
        action_prefix = params.get("ActionPrefix")
        with session_scope(readonly=True) as session:
            alarms: list[MetricAlarm] = []
            if "MetricAlarm" in types and not related:
                alarms = store.list_alarms(
                    session,
                    ctx.account_id,
                    ctx.region,
                    names=params.get("AlarmNames"),
                    prefix=params.get("AlarmNamePrefix"),
                    state=params.get("StateValue"),
                )
            if action_prefix is not None:
                alarms = [alarm for alarm in alarms if _has_action(alarm, action_prefix)]
            scope: dict[str, Any] = {
                member: params.get(member)
                for member in (
                    "AlarmNamePrefix",
                    "StateValue",
                    "ActionPrefix",
                    "ChildrenOfAlarmName",
                    "ParentsOfAlarmName",
                )
            }
            scope["AlarmNames"] = sorted(params.get("AlarmNames", []))
            scope["AlarmTypes"] = sorted(types)
            page, token = request_page_tokens(ctx).page(
                alarms,
                lambda alarm: alarm.name,
                scope,
                params.get("NextToken"),
                params.get("MaxRecords", DESCRIBE_PAGE_SIZE),
            )
            output: shapes.DescribeAlarmsOutput = {
                "MetricAlarms": [metric_alarm_output(alarm) for alarm in page],
                "CompositeAlarms": [],
            }
        if token:
            output["NextToken"] = token
        return output

    def delete_alarms(self, ctx: RequestContext, params: shapes.DeleteAlarmsInput) -> None:
        names = params["AlarmNames"]
        if not names:
            raise errors.ValidationException("AlarmNames must name at least one alarm.")
        # Names that match no alarm are skipped: CloudWatch still deletes the others and
        # answers success.
        with session_scope() as session:
            for alarm in store.delete_alarms(session, ctx.account_id, ctx.region, names):
                tagging.delete_all_tags(session, alarm.arn)


def metric_alarm_output(alarm: MetricAlarm) -> shapes.MetricAlarm:
    document = alarm.document
    output: dict[str, Any] = {
        "AlarmName": alarm.name,
        "AlarmArn": alarm.arn,
        "ActionsEnabled": True,
        **{member: [] for member in ACTION_MEMBERS},
    }
    if "EvaluationCriteria" not in document:
        output["Dimensions"] = []
    output.update((member, value) for member, value in document.items() if member in ECHOED_MEMBERS)
    output.update(
        StateValue=alarm.state_value,
        StateReason=alarm.state_reason,
        StateUpdatedTimestamp=alarm.state_updated_at,
        StateTransitionedTimestamp=alarm.state_transitioned_at,
        AlarmConfigurationUpdatedTimestamp=alarm.configuration_updated_at,
    )
    if alarm.state_reason_data is not None:
        output["StateReasonData"] = alarm.state_reason_data
    return cast(shapes.MetricAlarm, output)


def _has_action(alarm: MetricAlarm, prefix: str) -> bool:
    return any(
        action.startswith(prefix)
        for member in ACTION_MEMBERS
        for action in alarm.document.get(member, [])
    )
