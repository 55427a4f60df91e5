"""The event stream: every state change, once, in EventBridge's event shape.

Publish inside the transaction that makes the change (`publish`), read with a named,
acknowledged cursor (`EventReader`), or react as events commit (`get_fanout().subscribe`).
"""

from forgeline.core.events.fanout import (
    CHANNEL,
    Fanout,
    InProcessFanout,
    RedisFanout,
    close_fanouts,
    create_fanout,
    get_fanout,
)
from forgeline.core.events.stream import (
    EventReader,
    StoredEvent,
    format_event_time,
    publish,
    to_eventbridge,
)
from forgeline.core.events.tables import Event, EventCursor

__all__ = [
    "CHANNEL",
    "Event",
    "EventCursor",
    "EventReader",
    "Fanout",
    "InProcessFanout",
    "RedisFanout",
    "StoredEvent",
    "close_fanouts",
    "create_fanout",
    "format_event_time",
    "get_fanout",
    "publish",
    "to_eventbridge",
]
