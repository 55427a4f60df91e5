"""What CodeCommit's EventBridge events share: their source and the dates in their detail."""

from __future__ import annotations

import datetime as dt

EVENT_SOURCE = "aws.codecommit"


def event_date(moment: dt.datetime) -> str:
    """The date format CodeCommit's events use: `Wed Nov 06 19:10:58 UTC 2019`."""
    return moment.astimezone(dt.UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
