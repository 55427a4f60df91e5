"""The commit a merge writes: its author, its message, and the raw object."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import pygit2

from forgeline.codecommit.generated import errors

# CodeCommit's documented quotas where it gives one; our own safety limits otherwise.
MAX_NAME_LENGTH = 1024
MAX_EMAIL_LENGTH = 1024
MAX_COMMIT_MESSAGE_BYTES = 256 * 1024
DEFAULT_AUTHOR_NAME = "CodeCommit"


@dataclasses.dataclass(frozen=True)
class Signature:
    name: str
    email: str


def signature(author_name: str | None, email: str | None) -> Signature:
    name = author_name or DEFAULT_AUTHOR_NAME
    if len(name) > MAX_NAME_LENGTH:
        raise errors.NameLengthExceededException(
            f"The author name is longer than {MAX_NAME_LENGTH} characters."
        )
    # git identities cannot hold angle brackets or line breaks around the name.
    name = "".join(ch for ch in name if ch not in "<>\n\r\0").strip() or DEFAULT_AUTHOR_NAME
    address = email or ""
    if len(address) > MAX_EMAIL_LENGTH or any(ch in address for ch in "<>\n\r\0"):
        raise errors.InvalidEmailException(f"The email address {address[:64]!r} is not valid.")
    return Signature(name, address)


def message(text: str | None, source: pygit2.Commit, destination: pygit2.Commit) -> str:
    cleaned = (text or "").replace("\0", "")
    cleaned = cleaned or f"Merge {str(source.id)[:8]} into {str(destination.id)[:8]}"
    if len(cleaned.encode("utf-8", "surrogatepass")) > MAX_COMMIT_MESSAGE_BYTES:
        raise errors.CommitMessageLengthExceededException(
            f"The commit message is longer than {MAX_COMMIT_MESSAGE_BYTES // 1024} KB."
        )
    return cleaned


def write_commit(
    git: pygit2.Repository,
    tree_id: str,
    parents: Sequence[str],
    author: Signature,
    text: str,
) -> str:
    # Written as a raw object: libgit2's signatures refuse the empty email CodeCommit allows.
    identity = f"{author.name} <{author.email}> {int(time.time())} +0000"
    header = [f"tree {tree_id}", *(f"parent {parent}" for parent in parents)]
    header += [f"author {identity}", f"committer {identity}"]
    raw = ("\n".join(header) + "\n\n" + text).encode("utf-8", "replace")
    return str(git.odb.write(pygit2.enums.ObjectType.COMMIT, raw))
