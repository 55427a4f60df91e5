"""GetDifferences: the files that differ between two commits, a page at a time.

libgit2 compares the two trees (only tree objects are read, never blobs, and no rename
detection), the page is cut from the deltas, and only that page becomes dicts. The
token pins the two commit ids it started from, so later pages stay consistent even if
a branch named by the request moves in between.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, NamedTuple

import pygit2

from forgeline.codecommit import gitstore
from forgeline.codecommit.content import paths as content_paths
from forgeline.codecommit.content import refs as content_refs
from forgeline.codecommit.content.objects import entry_at, lookup_commit, octal_mode
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.paging import max_results
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext
from forgeline.core.pagination import request_page_tokens

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_STATUS = pygit2.enums.DeltaStatus
_FLAGS = pygit2.enums.DiffOption.INCLUDE_TYPECHANGE


class Side(NamedTuple):
    path: str
    oid: str
    mode: int


class Change(NamedTuple):
    before: Side | None
    after: Side | None


class _Node(NamedTuple):
    """What a path names in a commit: a tree, a single entry, or nothing."""

    path: str
    tree: pygit2.Tree | None
    entry: Side | None


def _node(commit: pygit2.Commit | None, path: str) -> _Node:
    if commit is None:
        return _Node(path, None, None)
    obj = entry_at(commit.tree, path)
    if obj is None:
        return _Node(path, None, None)
    if isinstance(obj, pygit2.Tree):
        return _Node(path, obj, None)
    return _Node(path, None, Side(path, str(obj.id), int(obj.filemode)))


def _side(prefix: str, file: pygit2.DiffFile) -> Side:
    return Side(
        content_paths.join(prefix, content_paths.display(file.raw_path)),
        str(file.id),
        int(file.mode),
    )


def _tree_changes(
    before: pygit2.Tree | None, after: pygit2.Tree | None, before_at: str, after_at: str
) -> Iterator[Change]:
    if before is not None and after is not None:
        diff = before.diff_to_tree(after, flags=_FLAGS)
    elif before is not None:
        diff = before.diff_to_tree(flags=_FLAGS)
    elif after is not None:
        diff = after.diff_to_tree(flags=_FLAGS, swap=True)
    else:
        return
    for delta in diff.deltas:
        old = None if delta.status == _STATUS.ADDED else _side(before_at, delta.old_file)
        new = None if delta.status == _STATUS.DELETED else _side(after_at, delta.new_file)
        yield Change(old, new)


def changes(before: _Node, after: _Node) -> Iterator[Change]:
    """Every difference between two nodes, in path order."""
    if before.entry is not None and after.entry is not None:
        if before.entry[1:] != after.entry[1:]:
            yield Change(before.entry, after.entry)
        return
    if before.entry is not None:
        yield Change(before.entry, None)
    yield from _tree_changes(before.tree, after.tree, before.path, after.path)
    if after.entry is not None:
        yield Change(None, after.entry)


def _blob(side: Side) -> shapes.BlobMetadata:
    return {"blobId": side.oid, "path": side.path, "mode": octal_mode(side.mode)}


def as_difference(change: Change) -> shapes.Difference:
    difference: shapes.Difference = {}
    if change.before is not None:
        difference["beforeBlob"] = _blob(change.before)
    if change.after is not None:
        difference["afterBlob"] = _blob(change.after)
    if change.before is None:
        difference["changeType"] = "A"
    elif change.after is None:
        difference["changeType"] = "D"
    else:
        difference["changeType"] = "M"
    return difference


def _commits_from_token(
    git: pygit2.Repository, position: Any
) -> tuple[pygit2.Commit | None, pygit2.Commit, int]:
    invalid = errors.InvalidContinuationTokenException("The pagination token is not valid.")
    if not (isinstance(position, list) and len(position) == 3):
        raise invalid
    before_id, after_id, offset = position
    if not isinstance(offset, int) or offset < 0:
        raise invalid
    after = lookup_commit(git, str(after_id))
    before = lookup_commit(git, str(before_id)) if before_id else None
    if after is None or (before_id and before is None):
        raise invalid
    return before, after, offset


def get_differences(
    ctx: RequestContext, repository: Repository, params: shapes.GetDifferencesInput
) -> shapes.GetDifferencesOutput:
    after_spec = params.get("afterCommitSpecifier")
    if not after_spec:
        raise errors.CommitRequiredException("afterCommitSpecifier is required.")
    before_spec = params.get("beforeCommitSpecifier")
    before_path = content_paths.optional_filter_path(params.get("beforePath"))
    after_path = content_paths.optional_filter_path(params.get("afterPath"))
    limit = max_results(
        params.get("MaxResults"),
        default=DEFAULT_PAGE_SIZE,
        maximum=MAX_PAGE_SIZE,
        member="MaxResults",
    )
    # One path given filters both sides; two let a renamed folder be compared.
    before_at = before_path if before_path is not None else (after_path or "")
    after_at = after_path if after_path is not None else (before_path or "")
    scope = {
        "repository": repository.id,
        "before": before_spec,
        "after": after_spec,
        "beforePath": before_at,
        "afterPath": after_at,
    }
    tokens = request_page_tokens(ctx)
    git = gitstore.open_git(repository)
    token = params.get("NextToken")
    if token:
        before, after, offset = _commits_from_token(git, tokens.decode(scope, token))
    else:
        after = content_refs.resolve(git, repository, after_spec)
        before = content_refs.resolve(git, repository, before_spec) if before_spec else None
        offset = 0
    before_node, after_node = _node(before, before_at), _node(after, after_at)
    filtered = before_path is not None or after_path is not None
    if filtered and _missing(before_node) and _missing(after_node):
        raise errors.PathDoesNotExistException(
            f"The path {after_at or before_at!r} does not exist in either commit."
        )
    window = list(itertools.islice(changes(before_node, after_node), offset, offset + limit + 1))
    page = window[:limit]
    output: shapes.GetDifferencesOutput = {"differences": [as_difference(c) for c in page]}
    if len(window) > limit:
        before_id = str(before.id) if before is not None else ""
        output["NextToken"] = tokens.encode(scope, [before_id, str(after.id), offset + limit])
    return output


def _missing(node: _Node) -> bool:
    return node.tree is None and node.entry is None
