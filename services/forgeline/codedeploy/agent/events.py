"""Lifecycle event names, in AWS's order, and which revision each one's scripts come from."""

from __future__ import annotations

DOWNLOAD_BUNDLE = "DownloadBundle"
INSTALL = "Install"
APPLICATION_STOP = "ApplicationStop"

# An in-place Server deployment with traffic control, in the order AWS runs it.
ORDERED_EVENTS: tuple[str, ...] = (
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    APPLICATION_STOP,
    DOWNLOAD_BUNDLE,
    "BeforeInstall",
    INSTALL,
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
)

# The steps the agent itself performs; every other command runs the appspec's scripts.
AGENT_STEPS = frozenset({DOWNLOAD_BUNDLE, INSTALL})

# These run before the new revision is on the host, so they run the scripts of the last
# revision that installed successfully (its archive is kept for that).
PREVIOUS_REVISION_EVENTS = frozenset({"BeforeBlockTraffic", "AfterBlockTraffic", APPLICATION_STOP})

# `forgeline deploy-local` without --events: no load balancer, so no traffic events.
LOCAL_DEFAULT_EVENTS: tuple[str, ...] = tuple(
    event for event in ORDERED_EVENTS if "Traffic" not in event
)


def runs_previous_revision(event: str) -> bool:
    return event in PREVIOUS_REVISION_EVENTS
