"""ListFileCommitHistory: the commits that changed one file, as a graph of file versions.

History is simplified the way `git log -- <path>` does it: a commit whose file equals
one parent's contributes nothing, and only that parent is followed; a commit whose file
differs from every parent is a version. Commits are walked children-first, so when a
version is reached every version made on top of it is already known: its
`revisionChildren` are exact, and a page can stop walking as soon as it is full.
"""

from __future__ import annotations

from collections import defaultdict

import pygit2

from forgeline.codecommit import gitstore
from forgeline.codecommit.content import paths as content_paths
from forgeline.codecommit.content import refs as content_refs
from forgeline.codecommit.content.objects import BLOB_MODES, commit_info, entry_at, lookup_commit
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.paging import max_results
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext
from forgeline.core.pagination import request_page_tokens

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

State = tuple[str, int] | None  # (blob id, mode) of the file in a commit, or absent


class _Walk:
    def __init__(self, git: pygit2.Repository, path: str) -> None:
        self.git = git
        self.path = path
        self.states: dict[pygit2.Oid, State] = {}

    def state(self, commit_id: pygit2.Oid) -> State:
        if commit_id not in self.states:
            commit = self.git[commit_id]
            assert isinstance(commit, pygit2.Commit)
            obj = entry_at(commit.tree, self.path)
            found = obj is not None and obj.filemode in BLOB_MODES
            self.states[commit_id] = (str(obj.id), int(obj.filemode)) if found else None
        return self.states[commit_id]

    def versions(self, tip: pygit2.Commit, wanted: int) -> list[tuple[pygit2.Commit, list[str]]]:
        """The first `wanted` versions from `tip`, newest first, with their child versions."""
        reached = {tip.id}
        above: dict[pygit2.Oid, list[str]] = defaultdict(list)
        found: list[tuple[pygit2.Commit, list[str]]] = []
        for commit in self.git.walk(tip.id, pygit2.enums.SortMode.TOPOLOGICAL):
            if len(found) >= wanted:
                break
            if commit.id not in reached:
                continue
            mine = self.state(commit.id)
            parents = commit.parent_ids
            same = [p for p in parents if self.state(p) == mine]
            followed = same[:1] if same else parents
            is_version = not same and mine is not None
            if is_version:
                found.append((commit, list(above[commit.id])))
            passed_down = [str(commit.id)] if is_version else above[commit.id]
            for parent in followed:
                reached.add(parent)
                for child in passed_down:
                    if child not in above[parent]:
                        above[parent].append(child)
            above.pop(commit.id, None)
        return found


def list_file_commit_history(
    ctx: RequestContext, repository: Repository, params: shapes.ListFileCommitHistoryRequest
) -> shapes.ListFileCommitHistoryResponse:
    limit = max_results(params.get("maxResults"), default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    specifier = params.get("commitSpecifier")
    raw_path = params.get("filePath")
    scope = {
        "repository": repository.id,
        "commit": specifier,
        "path": raw_path,
    }
    tokens = request_page_tokens(ctx)
    git = gitstore.open_git(repository)
    token = params.get("nextToken")
    if token:
        position = tokens.decode(scope, token)
        tip = None
        if isinstance(position, list) and len(position) == 2 and isinstance(position[1], int):
            tip = lookup_commit(git, str(position[0]))
        if tip is None or position[1] < 0:
            raise errors.InvalidContinuationTokenException("The pagination token is not valid.")
        offset = position[1]
    else:
        tip = content_refs.resolve(git, repository, specifier)
        offset = 0
    try:
        path = content_paths.file_path(raw_path)
    except (errors.InvalidPathException, errors.PathRequiredException):
        return {"revisionDag": []}  # no such file can have a history
    versions = _Walk(git, path).versions(tip, offset + limit + 1)
    page = versions[offset : offset + limit]
    output: shapes.ListFileCommitHistoryResponse = {
        "revisionDag": [
            {
                "commit": commit_info(commit),
                "blobId": _blob_of(commit, path),
                "path": path,
                "revisionChildren": children,
            }
            for commit, children in page
        ]
    }
    if len(versions) > offset + limit:
        output["nextToken"] = tokens.encode(scope, [str(tip.id), offset + limit])
    return output


def _blob_of(commit: pygit2.Commit, path: str) -> str:
    obj = entry_at(commit.tree, path)
    assert obj is not None
    return str(obj.id)
