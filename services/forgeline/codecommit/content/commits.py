"""Making commits through the API: who, on top of what, and the error for a lost race.

A commit is written as a raw git object (libgit2's signature builder refuses the empty
e-mail CodeCommit uses by default). The branch then moves only by compare-and-swap from
the parent the caller named (`gitstore.move_ref`); losing that race is
ParentCommitIdOutdatedException, and the objects already written are unreferenced garbage
that `git gc` removes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pygit2

from forgeline.codecommit import gitstore
from forgeline.codecommit.content import refs as content_refs
from forgeline.codecommit.content.refs import is_hex_id
from forgeline.codecommit.generated import errors
from forgeline.core.context import RequestContext
from forgeline.core.protocol.errors import AwsError

MAX_MESSAGE_BYTES = 256 * 1024
MAX_NAME_CHARS = 1024
MAX_EMAIL_CHARS = 1024
# git's ident rules: these characters would break the "name <email>" header.
_IDENT_BREAKERS = str.maketrans("", "", "<>\n\0")


@dataclasses.dataclass(frozen=True)
class Identity:
    name: str
    email: str
    message: str


def identity(
    ctx: RequestContext, name: str | None, email: str | None, message: str | None
) -> Identity:
    """Author and committer of an API commit: the request's, else the caller's name."""
    if name is not None and len(name) > MAX_NAME_CHARS:
        raise errors.NameLengthExceededException(
            f"The name is longer than {MAX_NAME_CHARS} characters."
        )
    if email is not None and (
        len(email) > MAX_EMAIL_CHARS or any(ch in email for ch in "<>\n\r\0")
    ):
        raise errors.InvalidEmailException(f"{email!r} is not a valid e-mail address.")
    if message is not None and len(message.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise errors.CommitMessageLengthExceededException(
            f"The commit message is longer than {MAX_MESSAGE_BYTES} bytes."
        )
    clean_name = (name or "").translate(_IDENT_BREAKERS).strip()
    return Identity(
        name=clean_name or caller_name(ctx),
        email=(email or "").strip(),
        message=(message or "").replace("\0", ""),
    )


def caller_name(ctx: RequestContext) -> str:
    """The last segment of the caller's ARN: `alice` for arn:aws:iam::1:user/alice."""
    tail = ctx.principal_arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    return tail.translate(_IDENT_BREAKERS).strip() or ctx.account_id


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "replace")


def write_commit(git: pygit2.Repository, tree_id: str, parents: list[str], who: Identity) -> str:
    stamp = f"{int(time.time())} +0000"
    person = _utf8(f"{who.name} <{who.email}> {stamp}")
    lines = [b"tree " + tree_id.encode()]
    lines += [b"parent " + parent.encode() for parent in parents]
    lines += [b"author " + person, b"committer " + person]
    raw = b"\n".join(lines) + b"\n\n" + _utf8(who.message)
    return str(git.odb.write(pygit2.enums.ObjectType.COMMIT, raw))


@dataclasses.dataclass(frozen=True)
class BranchTip:
    """Where a branch is before an API commit: its head commit, or None to create it."""

    ref: str
    commit: pygit2.Commit | None

    @property
    def old_id(self) -> str | None:
        return str(self.commit.id) if self.commit is not None else None

    @property
    def tree(self) -> pygit2.Tree | None:
        return self.commit.tree if self.commit is not None else None


def branch_tip(
    git: pygit2.Repository,
    branch: str,
    parent_commit_id: str | None,
    *,
    may_create: bool,
) -> BranchTip:
    """Check the caller's parentCommitId against the branch, as PutFile/CreateCommit do.

    `may_create`: the branch may be created when the repository has no branch at all.
    """
    ref = content_refs.branch_ref(branch)
    head = gitstore.branch_head(git, branch)
    if head is None:
        if git.references.get(gitstore.TAG_PREFIX + branch) is not None:
            raise errors.BranchNameIsTagNameException(f"{branch} is a tag, not a branch.")
        if not may_create or gitstore.list_branches(git):
            raise errors.BranchDoesNotExistException(f"Branch {branch} does not exist.")
        if parent_commit_id:
            _parent_commit(git, parent_commit_id)  # an empty repository has none
        return BranchTip(ref, None)
    if not parent_commit_id:
        raise errors.ParentCommitIdRequiredException(
            f"A parent commit ID is required: branch {branch} already has commits."
        )
    parent = _parent_commit(git, parent_commit_id)
    if str(parent.id) != head:
        if git.descendant_of(pygit2.Oid(hex=head), parent.id):
            raise errors.ParentCommitIdOutdatedException(
                f"{parent_commit_id} is not the tip of branch {branch}; it is {head}."
            )
        raise errors.ParentCommitDoesNotExistException(
            f"{parent_commit_id} is not a commit on branch {branch}."
        )
    return BranchTip(ref, parent)


def _parent_commit(git: pygit2.Repository, commit_id: str) -> pygit2.Commit:
    if not is_hex_id(commit_id):
        raise errors.InvalidParentCommitIdException(
            f"{commit_id!r} is not a valid parent commit ID."
        )
    try:
        obj = git[commit_id]
    except (KeyError, ValueError, pygit2.GitError):
        obj = None
    if not isinstance(obj, pygit2.Commit):
        raise errors.ParentCommitDoesNotExistException(f"Commit {commit_id} does not exist.")
    return obj


def outdated(branch: str) -> Callable[[], AwsError]:
    return lambda: errors.ParentCommitIdOutdatedException(
        f"Branch {branch} moved while the commit was made; get its tip and try again."
    )
