"""The choices CodeCommit's merge operations take, and the check that a request made valid ones.

Merge options say how the destination takes the source in; the conflict detail level says
whether a file changed on both sides conflicts as a whole (FILE_LEVEL) or only where the
same lines changed (LINE_LEVEL); the resolution strategy settles what still conflicts.
"""

from __future__ import annotations

import dataclasses

from forgeline.codecommit.generated import errors, shapes

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


# The requests that may write a merge commit: branch merges, unreferenced merge commits and
# pull request merges take the same members.
CommitWritingRequest = (
    shapes.MergeBranchesBySquashInput
    | shapes.MergeBranchesByThreeWayInput
    | shapes.CreateUnreferencedMergeCommitInput
    | shapes.MergePullRequestBySquashInput
    | shapes.MergePullRequestByThreeWayInput
)


@dataclasses.dataclass(frozen=True)
class CommitChoices:
    """What a request that may write a merge commit chooses besides its two commits; a
    fast-forward writes none, so it takes the defaults."""

    conflict_detail_level: str = FILE_LEVEL
    conflict_resolution_strategy: str = NONE
    conflict_resolution: shapes.ConflictResolution | None = None
    author_name: str | None = None
    email: str | None = None
    message: str | None = None
    keep_empty_folders: bool = False

    @classmethod
    def from_request(cls, params: CommitWritingRequest) -> CommitChoices:
        return cls(
            conflict_detail_level=params.get("conflictDetailLevel", FILE_LEVEL),
            conflict_resolution_strategy=params.get("conflictResolutionStrategy", NONE),
            conflict_resolution=params.get("conflictResolution"),
            author_name=params.get("authorName"),
            email=params.get("email"),
            message=params.get("commitMessage"),
            keep_empty_folders=bool(params.get("keepEmptyFolders", False)),
        )
