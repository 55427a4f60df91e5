"""CloudWatch Logs: the log groups, streams and events builds write, and their filters (the subset Forgeline implements; every other operation answers 501).

Builds need to read their logs (GetLogEvents, FilterLogEvents), list them
(DescribeLogGroups, DescribeLogStreams), and write or delete logs of one's own
(CreateLogGroup, CreateLogStream, PutLogEvents, DeleteLogGroup, DeleteLogStream). Each
group of operations is a mixin of forgeline/logs/ops/.
"""

from __future__ import annotations

from forgeline.logs.generated.api import CloudWatchLogsApi
from forgeline.logs.ops.events import EventOperations
from forgeline.logs.ops.groups import GroupOperations
from forgeline.logs.ops.streams import StreamOperations
from forgeline.logs.ops.tags import TagOperations


class LogsProvider(
    GroupOperations, TagOperations, StreamOperations, EventOperations, CloudWatchLogsApi
):
    pass


PROVIDERS = {"logs": LogsProvider}
