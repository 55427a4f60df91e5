"""CloudWatch: metric alarms (the subset Forgeline implements; every other operation
answers 501).

PutMetricAlarm, DescribeAlarms, DeleteAlarms and SetAlarmState, plus alarm tags. Alarms
are not evaluated against metric data: their state changes through SetAlarmState, which
is how a test or a monitoring hook trips one. Each group of operations is a mixin of
forgeline/cloudwatch/ops/.
"""

from __future__ import annotations

from forgeline.cloudwatch.generated.api import CloudWatchApi
from forgeline.cloudwatch.ops.alarms import AlarmOperations
from forgeline.cloudwatch.ops.states import StateOperations
from forgeline.cloudwatch.ops.tags import TagOperations


class CloudWatchProvider(AlarmOperations, StateOperations, TagOperations, CloudWatchApi):
    pass


PROVIDERS = {"cloudwatch": CloudWatchProvider}
