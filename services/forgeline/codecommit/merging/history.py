"""The commits a merge starts from: finding them, their ancestry and their merge base."""

from __future__ import annotations

from typing import Any

import pygit2

from forgeline.codecommit.generated import errors


def commit_of(git: pygit2.Repository, commit: Any) -> pygit2.Commit:
    """A commit given as a pygit2 commit or an id; CommitDoesNotExistException otherwise."""
    if isinstance(commit, pygit2.Commit):
        return commit
    try:
        obj = git.get(str(commit))
        if obj is not None:
            return obj.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError):
        pass
    raise errors.CommitDoesNotExistException(f"Could not find commit {commit!s}.")


def contains(git: pygit2.Repository, container: pygit2.Commit, commit: pygit2.Commit) -> bool:
    """Whether `commit` is `container` or one of its ancestors."""
    return container.id == commit.id or git.descendant_of(container.id, commit.id)


def merge_base(git: pygit2.Repository, source_commit: Any, destination_commit: Any) -> str:
    """The merge base's id; TipsDivergenceExceededException if the histories are unrelated."""
    source = commit_of(git, source_commit)
    destination = commit_of(git, destination_commit)
    base = git.merge_base(source.id, destination.id)
    if base is None:
        raise errors.TipsDivergenceExceededException(
            f"Commits {source.id} and {destination.id} have no common ancestor, so there is "
            "nothing to merge them from. Compare them locally with git diff."
        )
    return str(base)


def can_fast_forward(git: pygit2.Repository, source_commit: Any, destination_commit: Any) -> bool:
    """Whether the destination can move to the source (or already contains it)."""
    source = commit_of(git, source_commit)
    destination = commit_of(git, destination_commit)
    return contains(git, source, destination) or contains(git, destination, source)


def find_merge_commit(
    git: pygit2.Repository, source_commit: Any, destination_commit: Any, limit: int = 10_000
) -> str | None:
    """The commit in the destination's history that merged the source in, if any.

    A fast-forward or squash leaves no such commit.
    """
    source = commit_of(git, source_commit)
    destination = commit_of(git, destination_commit)
    walker = git.walk(destination.id, pygit2.enums.SortMode.TOPOLOGICAL)
    for count, commit in enumerate(walker):
        if count >= limit:
            break
        if source.id in commit.parent_ids[1:]:
            return str(commit.id)
    return None
