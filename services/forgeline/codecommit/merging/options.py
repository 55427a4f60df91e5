"""The choices CodeCommit's merge operations take, and the check that a request made valid ones.

Merge options say how the destination takes the source in; the conflict detail level says
whether a file changed on both sides conflicts as a whole (FILE_LEVEL) or only where the
same lines changed (LINE_LEVEL); the resolution strategy settles what still conflicts.
"""

from __future__ import annotations

from forgeline.codecommit.generated import errors

FAST_FORWARD = "FAST_FORWARD_MERGE"
SQUASH = "SQUASH_MERGE"
THREE_WAY = "THREE_WAY_MERGE"
MERGE_OPTIONS = (FAST_FORWARD, SQUASH, THREE_WAY)

FILE_LEVEL = "FILE_LEVEL"
LINE_LEVEL = "LINE_LEVEL"
DETAIL_LEVELS = (FILE_LEVEL, LINE_LEVEL)

NONE = "NONE"
ACCEPT_SOURCE = "ACCEPT_SOURCE"
ACCEPT_DESTINATION = "ACCEPT_DESTINATION"
AUTOMERGE = "AUTOMERGE"
RESOLUTION_STRATEGIES = (NONE, ACCEPT_SOURCE, ACCEPT_DESTINATION, AUTOMERGE)


def check_merge_option(option: str) -> None:
    if option not in MERGE_OPTIONS:
        raise errors.InvalidMergeOptionException(f"{option!r} is not a valid merge option.")


def check_options(detail_level: str, resolution_strategy: str) -> None:
    if detail_level not in DETAIL_LEVELS:
        raise errors.InvalidConflictDetailLevelException(
            f"{detail_level!r} is not a valid conflict detail level."
        )
    if resolution_strategy not in RESOLUTION_STRATEGIES:
        raise errors.InvalidConflictResolutionStrategyException(
            f"{resolution_strategy!r} is not a valid conflict resolution strategy."
        )
