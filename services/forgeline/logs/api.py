"""CloudWatch Logs: the log groups, streams and events builds write, and their filters (the subset Forgeline implements; every other operation answers 501)."""

from __future__ import annotations

from forgeline.logs.ops import LogsProvider

PROVIDERS = {"logs": LogsProvider}
