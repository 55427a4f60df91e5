"""Branches and commit specifiers: naming rules and resolving them to commits."""

from __future__ import annotations

import pygit2

from forgeline.codecommit import gitstore, repositories
from forgeline.codecommit.generated import errors
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext

HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
# CodeCommit's branch name rules (Quotas page) on top of git check-ref-format.
_FORBIDDEN_BRANCH_CHARS = frozenset(" ?^*[\\~:")
_FORBIDDEN_BRANCH_SEQUENCES = ("..", "//", "@{")


def load(ctx: RequestContext, name: str | None) -> Repository:
    """The repository row, read in a short transaction (git work happens outside it)."""
    if not name:
        raise errors.RepositoryNameRequiredException("A repository name is required.")
    return repositories.read(ctx, name)


def is_hex_id(value: str, *, full: bool = False) -> bool:
    if full and len(value) != 40:
        return False
    return 4 <= len(value) <= 40 and all(ch in HEX_DIGITS for ch in value)


def check_branch_name(name: str | None) -> str:
    if not name:
        raise errors.BranchNameRequiredException("A branch name is required.")
    if (
        len(name) > 256
        or (len(name) == 40 and is_hex_id(name))
        or name[0] in "/."
        or name[-1] in "/."
        or name in ("@", "HEAD")
        or any(ch in _FORBIDDEN_BRANCH_CHARS for ch in name)
        or any(seq in name for seq in _FORBIDDEN_BRANCH_SEQUENCES)
        or not pygit2.reference_is_valid_name(gitstore.BRANCH_PREFIX + name)
    ):
        raise errors.InvalidBranchNameException(f"The branch name {name!r} is not valid.")
    return name


def branch_ref(name: str) -> str:
    return gitstore.BRANCH_PREFIX + name


def default_commit(git: pygit2.Repository, repository: Repository) -> pygit2.Commit:
    branch = repository.default_branch
    head = gitstore.branch_head(git, branch) if branch else None
    if head is None:
        raise errors.CommitDoesNotExistException(
            f"No commit was specified and repository {repository.name} has no default branch."
        )
    commit = git[head]
    assert isinstance(commit, pygit2.Commit)
    return commit


def resolve(git: pygit2.Repository, repository: Repository, specifier: str | None) -> pygit2.Commit:
    """A commit from a branch, tag, full ref, HEAD or (abbreviated) id; None: default branch."""
    if not specifier or specifier == "HEAD":
        return default_commit(git, repository)
    try:
        if specifier.startswith("refs/"):
            ref = git.references.get(specifier)
            if ref is None:
                raise errors.CommitDoesNotExistException(f"Could not find commit {specifier!r}.")
            return ref.peel(pygit2.Commit)
        return gitstore.resolve_commit(git, specifier)
    except (pygit2.GitError, ValueError, KeyError, pygit2.InvalidSpecError):
        raise errors.InvalidCommitException(f"{specifier!r} does not identify a commit.") from None
