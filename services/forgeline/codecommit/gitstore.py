"""The git side of a CodeCommit repository: open it, resolve commits, move refs safely.

Objects are read and written with pygit2 (libgit2). Refs move only through
`update_ref`, which runs `git update-ref <ref> <new> <old>`: git's own lock-file
compare-and-swap, the same one receive-pack uses, so an API commit racing a push ends
with exactly one winner and the loser learns the branch moved.

Every ref change — push, API commit, merge — is reported through `report_ref_changes`,
which publishes "CodeCommit Repository State Change" events and calls the listeners
other modules register (repository triggers, default-branch bookkeeping). An API request
that moves one ref does all of it with `move_ref`: compare-and-swap, report, and the ref
put back if the transaction recording it rolls back. `publish_event` is the one place
a repository's events are written, for the state changes that move no ref too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pygit2
from sqlalchemy.orm import Session

from forgeline.codecommit import storage
from forgeline.codecommit.generated import errors
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core import events
from forgeline.core.context import RequestContext
from forgeline.core.db import on_rollback, session_scope, utcnow
from forgeline.core.protocol.errors import AwsError
from forgeline.core.settings import get_settings

log = logging.getLogger(__name__)

ZERO_OID = "0" * 40
STATE_CHANGE = "CodeCommit Repository State Change"
BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"


class RefMoved(Exception):
    """The ref no longer points where the caller expected (compare-and-swap lost)."""


@dataclasses.dataclass(frozen=True)
class RefChange:
    ref: str  # full name: refs/heads/main
    old: str  # ZERO_OID when created
    new: str  # ZERO_OID when deleted

    @property
    def kind(self) -> str:
        if self.old == ZERO_OID:
            return "referenceCreated"
        if self.new == ZERO_OID:
            return "referenceDeleted"
        return "referenceUpdated"

    @property
    def short_name(self) -> str:
        for prefix in (BRANCH_PREFIX, TAG_PREFIX):
            if self.ref.startswith(prefix):
                return self.ref[len(prefix) :]
        return self.ref

    @property
    def reference_type(self) -> str:
        if self.ref.startswith(BRANCH_PREFIX):
            return "branch"
        if self.ref.startswith(TAG_PREFIX):
            return "tag"
        return "reference"


RefChangeListener = Callable[[Session, RequestContext | None, Repository, list[RefChange]], None]
# Called inside the transaction that records the change; services subscribe through their
# manifests (pull requests, triggers, CodeBuild webhooks).
REF_CHANGE_LISTENERS: list[RefChangeListener] = []


def path_of(repository: Repository) -> Path:
    return storage.repository_path(get_settings(), repository.id)


def open_git(repository: Repository) -> pygit2.Repository:
    return pygit2.Repository(str(path_of(repository)))


def branch_head(git: pygit2.Repository, branch: str) -> str | None:
    ref = git.references.get(BRANCH_PREFIX + branch)
    return str(ref.target) if ref is not None else None


def list_branches(git: pygit2.Repository) -> list[str]:
    return sorted(
        name[len(BRANCH_PREFIX) :] for name in git.references if name.startswith(BRANCH_PREFIX)
    )


def sync_head(git: pygit2.Repository, default_branch: str | None) -> None:
    """Point the bare repository's HEAD at the default branch, so clones check it out."""
    if not default_branch:
        return
    target = BRANCH_PREFIX + default_branch
    head = git.references.get("HEAD")
    if head is not None and head.type == pygit2.enums.ReferenceType.SYMBOLIC:
        if head.target == target:
            return
    git.references.create("HEAD", target, force=True)


def resolve_commit(git: pygit2.Repository, specifier: str) -> pygit2.Commit:
    """A commit from a branch name, tag, full or abbreviated id (as CodeCommit accepts)."""
    candidates = [BRANCH_PREFIX + specifier, TAG_PREFIX + specifier]
    for name in candidates:
        ref = git.references.get(name)
        if ref is not None:
            return ref.peel(pygit2.Commit)
    if all(c in "0123456789abcdefABCDEF" for c in specifier) and 4 <= len(specifier) <= 40:
        try:
            obj = git.revparse_single(specifier)
        except (KeyError, ValueError, pygit2.GitError):
            obj = None
        if obj is not None:
            try:
                return obj.peel(pygit2.Commit)
            except (pygit2.GitError, ValueError):
                pass
    raise errors.CommitDoesNotExistException(f"Could not find commit {specifier!r}.")


def update_ref(repository: Repository, ref: str, new: str, expected_old: str | None) -> RefChange:
    """Move `ref` to `new` only if it still points at `expected_old` (None: must not exist).

    `new` may be ZERO_OID to delete the ref.
    """
    old = expected_old or ZERO_OID
    if new == ZERO_OID:
        args = ["update-ref", "-d", ref, old]
    else:
        args = ["update-ref", ref, new, old]
    completed = subprocess.run(
        ["git", "-C", str(path_of(repository)), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if completed.returncode != 0:
        raise RefMoved(completed.stderr.strip() or f"{ref} moved")
    return RefChange(ref=ref, old=old, new=new)


def update_ref_in(
    session: Session, repository: Repository, ref: str, new: str, expected_old: str | None
) -> RefChange:
    """`update_ref` for a change that `session` records (events, pull request state): if
    that transaction rolls back, the ref is put back, unless it has moved again since."""
    change = update_ref(repository, ref, new, expected_old)

    def put_back() -> None:
        try:
            update_ref(repository, ref, change.old, change.new)
        except RefMoved:
            log.warning("could not put back %s in %s: it moved again", ref, repository.id)

    on_rollback(session, put_back)
    return change


def move_ref(
    ctx: RequestContext,
    repository: Repository,
    ref: str,
    new: str,
    expected_old: str | None,
    on_moved: Callable[[], AwsError],
    *,
    extra_detail: dict[str, Any] | None = None,
) -> Repository:
    """Compare-and-swap `ref` for an API request, then record it (events, triggers) in one
    transaction; `on_moved()` is the error when the ref is no longer at `expected_old`.

    If recording fails, the ref is put back (unless someone moved it since), so a failed
    request leaves the repository as it found it. Returns the fresh row.
    """
    with session_scope() as session:
        fresh = session.get(Repository, repository.id)
        if fresh is None:
            raise errors.RepositoryDoesNotExistException(f"{repository.name} does not exist")
        had_default = fresh.default_branch
        try:
            moved = update_ref_in(session, fresh, ref, new, expected_old)
        except RefMoved:
            raise on_moved() from None
        report_ref_changes(session, ctx, fresh, [moved], extra_detail=extra_detail)
    if fresh.default_branch != had_default:
        with contextlib.suppress(pygit2.GitError, OSError):
            sync_head(open_git(fresh), fresh.default_branch)
    return fresh


def report_ref_changes(
    session: Session,
    ctx: RequestContext | None,
    repository: Repository,
    changes: list[RefChange],
    *,
    caller_arn: str | None = None,
    extra_detail: dict[str, Any] | None = None,
) -> None:
    """Record ref changes: default branch, events, then registered listeners (triggers)."""
    if not changes:
        return
    if ctx is None and caller_arn is not None:
        # A push has no API request; listeners still learn who made the change.
        ctx = RequestContext(
            account_id=repository.account_id,
            region=repository.region,
            principal_arn=caller_arn,
            access_key_id=None,
            service="codecommit",
            operation="GitPush",
        )
    for change in changes:
        if (
            repository.default_branch is None
            and change.kind == "referenceCreated"
            and change.reference_type == "branch"
        ):
            # CodeCommit makes the first branch pushed or committed the default branch.
            repository.default_branch = change.short_name
    repository.updated_at = utcnow()
    for listener in REF_CHANGE_LISTENERS:
        listener(session, ctx, repository, changes)
    for change in changes:
        detail: dict[str, Any] = {
            "event": change.kind,
            "repositoryName": repository.name,
            "repositoryId": repository.id,
            "referenceType": change.reference_type,
            "referenceName": change.short_name,
            "referenceFullName": change.ref,
            "callerUserArn": caller_arn or (ctx.principal_arn if ctx else None),
        }
        if change.new != ZERO_OID:
            detail["commitId"] = change.new
        if change.old != ZERO_OID:
            detail["oldCommitId"] = change.old
        detail.update(extra_detail or {})
        # Publishing takes the event-order lock on Postgres: keep it the last write.
        publish_event(session, repository, STATE_CHANGE, detail)


def publish_event(
    session: Session, repository: Repository, detail_type: str, detail: dict[str, Any]
) -> None:
    """Write one event about `repository` in the caller's transaction."""
    events.publish(
        session,
        account_id=repository.account_id,
        region=repository.region,
        source="aws.codecommit",
        detail_type=detail_type,
        detail=detail,
        resources=[repository.arn()],
    )
