"""What CodeCommit's merge operations ask of two commits: which merge options would work,
which files conflict, and the merged tree and commit.

Objects (blobs, trees, commits) are written here, but no ref ever moves: callers move a
branch to the result themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pygit2

from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.merging import commits
from forgeline.codecommit.merging.analysis import Analysis
from forgeline.codecommit.merging.conflicts import ConflictInfo
from forgeline.codecommit.merging.history import commit_of, contains, merge_base
from forgeline.codecommit.merging.options import (
    FAST_FORWARD,
    FILE_LEVEL,
    MERGE_OPTIONS,
    NONE,
    SQUASH,
    THREE_WAY,
    CommitChoices,
    check_merge_option,
    check_options,
)
from forgeline.codecommit.merging.paths import normalize_path
from forgeline.codecommit.merging.resolutions import Resolution, parse_resolution
from forgeline.core.protocol.errors import AwsError


@dataclasses.dataclass(frozen=True)
class MergeResult:
    """What plan_merge made. It raises rather than return an unmergeable result, so
    `conflicts` is empty and `mergeable` true; both are kept for callers that report."""

    commit_id: str  # the new commit; the source for a fast-forward; unchanged if merged
    tree_id: str
    base_commit_id: str
    source_commit_id: str
    destination_commit_id: str
    conflicts: list[ConflictInfo] = dataclasses.field(default_factory=list)
    mergeable: bool = True
    created: bool = False  # whether a new commit object was written


def merge_options(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    *,
    conflict_detail_level: str = FILE_LEVEL,
    conflict_resolution_strategy: str = NONE,
) -> list[str]:
    """The merge options that would succeed without explicit conflict resolutions."""
    source = commit_of(git, source_commit)
    destination = commit_of(git, destination_commit)
    merge_base(git, source, destination)
    if contains(git, destination, source):
        return list(MERGE_OPTIONS)  # already merged: every option is a no-op
    options = [FAST_FORWARD] if contains(git, source, destination) else []
    remaining = conflicts(
        git,
        source,
        destination,
        conflict_detail_level=conflict_detail_level,
        conflict_resolution_strategy=conflict_resolution_strategy,
    )
    if not remaining:
        options += [SQUASH, THREE_WAY]
    return options


def conflicts(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    *,
    conflict_detail_level: str = FILE_LEVEL,
    conflict_resolution_strategy: str = NONE,
) -> list[ConflictInfo]:
    """Files that still conflict once the resolution strategy is applied, by path."""
    check_options(conflict_detail_level, conflict_resolution_strategy)
    source = commit_of(git, source_commit)
    destination = commit_of(git, destination_commit)
    base = commit_of(git, merge_base(git, source, destination))
    if contains(git, destination, source):
        return []
    analysis = Analysis(git, base, source, destination, conflict_detail_level)
    outcome = analysis.settle(conflict_resolution_strategy, Resolution())
    return [analysis.conflict_info(merge) for merge in outcome.unresolved]


def describe_file(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    path: str,
    *,
    conflict_detail_level: str = FILE_LEVEL,
    conflict_resolution_strategy: str = NONE,
) -> ConflictInfo:
    """One file of the merge, conflicting or not; FileDoesNotExistException if no side has it."""
    (found,) = describe_files(
        git,
        source_commit,
        destination_commit,
        [path],
        conflict_detail_level=conflict_detail_level,
        conflict_resolution_strategy=conflict_resolution_strategy,
    )
    if isinstance(found, AwsError):
        raise found
    return found


def describe_files(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    paths: Sequence[str],
    *,
    conflict_detail_level: str = FILE_LEVEL,
    conflict_resolution_strategy: str = NONE,
) -> list[ConflictInfo | AwsError]:
    """Each path described as `describe_file` does, or the error it would raise, in order."""
    check_options(conflict_detail_level, conflict_resolution_strategy)
    source = commit_of(git, source_commit)
    destination = commit_of(git, destination_commit)
    base = commit_of(git, merge_base(git, source, destination))
    analysis = Analysis(git, base, source, destination, conflict_detail_level)
    remaining: dict[str, ConflictInfo] = {}
    if not contains(git, destination, source):
        outcome = analysis.settle(conflict_resolution_strategy, Resolution())
        remaining = {merge.path: analysis.conflict_info(merge) for merge in outcome.unresolved}
    described: list[ConflictInfo | AwsError] = []
    for raw_path in paths:
        try:
            path = normalize_path(raw_path)
        except AwsError as problem:
            described.append(problem)
            continue
        if path in remaining:
            described.append(remaining[path])
            continue
        base_entry, source_entry, destination_entry = analysis.entries(path)
        if all(
            entry is None or entry.is_directory
            for entry in (base_entry, source_entry, destination_entry)
        ):
            described.append(
                errors.FileDoesNotExistException(
                    f"The file {path!r} does not exist in the source, destination or merge base."
                )
            )
            continue
        described.append(
            ConflictInfo(
                path=path,
                base=base_entry,
                source=source_entry,
                destination=destination_entry,
                content_conflict=False,
                file_mode_conflict=False,
                object_type_conflict=False,
                conflict_detail_level=conflict_detail_level,
                git=git,
            )
        )
    return described


def plan_chosen_merge(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    strategy: str,
    choices: CommitChoices,
) -> MergeResult:
    """`plan_merge` with the choices a merge request made."""
    return plan_merge(
        git,
        source_commit,
        destination_commit,
        strategy,
        conflict_detail_level=choices.conflict_detail_level,
        conflict_resolution_strategy=choices.conflict_resolution_strategy,
        conflict_resolution=choices.conflict_resolution,
        author_name=choices.author_name,
        email=choices.email,
        message=choices.message,
        keep_empty_folders=choices.keep_empty_folders,
    )


def plan_merge(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    strategy: str,
    *,
    conflict_detail_level: str = FILE_LEVEL,
    conflict_resolution_strategy: str = NONE,
    conflict_resolution: shapes.ConflictResolution | None = None,
    author_name: str | None = None,
    email: str | None = None,
    message: str | None = None,
    keep_empty_folders: bool = False,
) -> MergeResult:
    """Merge `source_commit` into `destination_commit` with `strategy`; move no ref.

    Fast-forward returns the source commit. Squash writes one commit whose parent is the
    destination; three-way writes a merge commit with parents (destination, source).
    If the destination already contains the source, nothing is written and the
    destination is returned. Raises ManualMergeRequiredException when conflicts remain.
    """
    check_merge_option(strategy)
    check_options(conflict_detail_level, conflict_resolution_strategy)
    source = commit_of(git, source_commit)
    destination = commit_of(git, destination_commit)
    # Bad input is refused even when the merge itself would turn out to be a no-op.
    author = commits.signature(author_name, email)
    commit_message = commits.message(message, source, destination)
    resolution = parse_resolution(conflict_resolution)
    base_id = merge_base(git, source, destination)

    def unchanged(commit: pygit2.Commit) -> MergeResult:
        return MergeResult(
            commit_id=str(commit.id),
            tree_id=str(commit.tree_id),
            base_commit_id=base_id,
            source_commit_id=str(source.id),
            destination_commit_id=str(destination.id),
        )

    if contains(git, destination, source):
        return unchanged(destination)
    if strategy == FAST_FORWARD:
        if contains(git, source, destination):
            return unchanged(source)
        raise errors.ManualMergeRequiredException(
            f"Commit {destination.id} cannot be fast-forwarded to {source.id}: the two have "
            "diverged. Use a squash or three-way merge."
        )
    analysis = Analysis(git, commit_of(git, base_id), source, destination, conflict_detail_level)
    outcome = analysis.settle(conflict_resolution_strategy, resolution)
    if outcome.unresolved:
        shown = ", ".join(merge.path for merge in outcome.unresolved[:10])
        more = len(outcome.unresolved) - 10
        raise errors.ManualMergeRequiredException(
            f"The merge has {len(outcome.unresolved)} unresolved conflict(s) ({shown}"
            f"{f' and {more} more' if more > 0 else ''}). Resolve them with a conflict "
            "resolution strategy or conflictResolution entries, or merge manually."
        )
    tree_id = analysis.write_tree(outcome.results, keep_empty_folders)
    parents = [str(destination.id)]
    if strategy == THREE_WAY:
        parents.append(str(source.id))
    commit_id = commits.write_commit(git, tree_id, parents, author, commit_message)
    return MergeResult(
        commit_id=commit_id,
        tree_id=tree_id,
        base_commit_id=base_id,
        source_commit_id=str(source.id),
        destination_commit_id=str(destination.id),
        created=True,
    )
