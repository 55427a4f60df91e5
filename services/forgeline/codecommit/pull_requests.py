"""Pull requests: open one, edit it, follow its branches, merge it, close it.

A pull request targets one source and one destination branch of one repository. Each
time the source branch moves the pull request gets a new revision, and approvals and
overrides, kept per revision, start over — as CodeCommit does. Branch moves reach us
through `gitstore.REF_CHANGE_LISTENERS` (pushes, API commits, merges), which is also
how a pull request merged outside the API (a push that brings the source into the
destination) is marked merged and closed.

Lookups are in `pull_request_lookups`, approval rules in `pull_request_rules`, the
history and published events in `pull_request_events`.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any, cast

import pygit2
from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.codecommit import gitstore, merging, repositories
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.pull_request_events import change_detail, publish_change, record
from forgeline.codecommit.pull_request_lookups import (
    CLOSED,
    OPEN,
    find_revision,
    get,
    repository_of,
    require_open,
)
from forgeline.codecommit.pull_request_rules import (
    apply_templates,
    evaluate,
    render_rule,
    rules_of,
)
from forgeline.codecommit.tables.pull_requests import (
    PullRequest,
    PullRequestCounter,
    PullRequestRevision,
)
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext
from forgeline.core.db import utcnow

logger = logging.getLogger(__name__)

# CodeCommit quotas (user guide, "Quotas").
MAX_OPEN_PULL_REQUESTS = 1000
MAX_BRANCH_NAME = 256
MAX_CLIENT_TOKEN = 256  # the idempotency table's column

# Squash and three-way merges take the same members: how conflicts are settled and what
# the commit they write says.
CommitMergeInput = shapes.MergePullRequestBySquashInput | shapes.MergePullRequestByThreeWayInput

_FULL_COMMIT_ID = re.compile(r"[0-9a-f]{40}")
_BAD_REF_CHARACTERS = frozenset(" ~^:?*[\\\x7f")


# -- references ----------------------------------------------------------------------------
def is_valid_branch_name(name: str) -> bool:
    """git check-ref-format's rules for a branch name, with CodeCommit's length limit."""
    return not (
        not name
        or len(name) > MAX_BRANCH_NAME
        or name == "@"
        or "@{" in name
        or ".." in name
        or "//" in name
        or name.startswith(("/", "."))
        or name.endswith(("/", ".", ".lock"))
        or any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))
        or any(ch in _BAD_REF_CHARACTERS or ord(ch) < 0x20 for ch in name)
    )


def branch_reference(git: pygit2.Repository, value: str) -> tuple[str, str]:
    """(full ref, tip commit) of a branch given as `name` or `refs/heads/name`."""
    if value.startswith("refs/") and not value.startswith(gitstore.BRANCH_PREFIX):
        raise errors.ReferenceTypeNotSupportedException(
            f"{value!r} is not a branch; pull requests need branches."
        )
    name = value.removeprefix(gitstore.BRANCH_PREFIX)
    if not is_valid_branch_name(name):
        raise errors.InvalidReferenceNameException(f"{value!r} is not a valid branch name.")
    tip = gitstore.branch_head(git, name)
    if tip is None:
        if git.references.get(gitstore.TAG_PREFIX + name) is not None or (
            _FULL_COMMIT_ID.fullmatch(name) and name in git
        ):
            raise errors.ReferenceTypeNotSupportedException(
                f"{value!r} is not a branch; pull requests need branches."
            )
        raise errors.ReferenceDoesNotExistException(f"Branch {name!r} does not exist.")
    return gitstore.BRANCH_PREFIX + name, tip


def _merge_base(git: pygit2.Repository, source: str, destination: str) -> str | None:
    base = git.merge_base(source, destination)
    return str(base) if base is not None else None


def _contains(git: pygit2.Repository, tip: str, commit: str) -> bool:
    """Whether `commit` is reachable from `tip` (the destination already has the source)."""
    return tip == commit or git.descendant_of(tip, commit)


def _new_revision_id() -> str:
    return secrets.token_hex(32)


def _branch_name(ref: str) -> str:
    return ref.removeprefix(gitstore.BRANCH_PREFIX)


# -- create ----------------------------------------------------------------------------------
def check_client_token(token: str | None) -> None:
    if token is not None and (not token or len(token) > MAX_CLIENT_TOKEN):
        raise errors.InvalidClientRequestTokenException(
            f"The client request token must be 1 to {MAX_CLIENT_TOKEN} characters."
        )


def check_title(title: str) -> None:
    if not title.strip():
        raise errors.TitleRequiredException("A pull request title is required.")


def create(
    session: Session, ctx: RequestContext, params: shapes.CreatePullRequestInput
) -> PullRequest:
    """A new open pull request, with the rules of matching associated templates applied."""
    check_title(params["title"])
    target = _single_target(params["targets"])
    repository = repositories.get(session, ctx, target["repositoryName"])
    git = gitstore.open_git(repository)
    source_ref, source_commit = branch_reference(git, target["sourceReference"])
    destination = target.get("destinationReference") or repository.default_branch
    if not destination:
        raise errors.ReferenceDoesNotExistException(
            f"Repository {repository.name} has no default branch to merge into."
        )
    if source_ref == gitstore.BRANCH_PREFIX + destination.removeprefix(gitstore.BRANCH_PREFIX):
        raise errors.SourceAndDestinationAreSameException(
            "The source and destination branches of a pull request must differ."
        )
    destination_ref, destination_commit = branch_reference(git, destination)
    open_count = session.scalar(
        select(func.count())
        .select_from(PullRequest)
        .where(PullRequest.repository_id == repository.id, PullRequest.status == OPEN)
    )
    if (open_count or 0) >= MAX_OPEN_PULL_REQUESTS:
        raise errors.MaximumOpenPullRequestsExceededException(
            f"Repository {repository.name} already has {MAX_OPEN_PULL_REQUESTS} open pull "
            "requests; close some first."
        )
    now = utcnow()
    pull_request = PullRequest(
        account_id=ctx.account_id,
        region=ctx.region,
        pull_request_id=str(_next_number(session, ctx)),
        repository_id=repository.id,
        title=params["title"],
        description=params.get("description"),
        status=OPEN,
        author_arn=ctx.principal_arn,
        client_request_token=params.get("clientRequestToken"),
        source_reference=source_ref,
        destination_reference=destination_ref,
        source_commit=source_commit,
        destination_commit=destination_commit,
        merge_base=_merge_base(git, source_commit, destination_commit),
        revision_id=_new_revision_id(),
        is_merged=False,
        created_at=now,
        last_activity_at=now,
    )
    session.add(pull_request)
    session.flush()
    _add_revision(session, pull_request)
    apply_templates(session, pull_request, repository)
    created: shapes.PullRequestCreatedEventMetadata = {
        "repositoryName": repository.name,
        "sourceCommitId": source_commit,
        "destinationCommitId": destination_commit,
    }
    if pull_request.merge_base is not None:
        created["mergeBase"] = pull_request.merge_base
    record(
        session,
        pull_request,
        "PULL_REQUEST_CREATED",
        ctx.principal_arn,
        {"pullRequestCreatedEventMetadata": created},
    )
    return pull_request


def _single_target(targets: list[shapes.Target]) -> shapes.Target:
    if not targets:
        raise errors.TargetsRequiredException("A pull request needs one target.")
    if len(targets) > 1:
        if len({target.get("repositoryName") for target in targets}) > 1:
            raise errors.MultipleRepositoriesInPullRequestException(
                "A pull request can target only one repository."
            )
        raise errors.InvalidTargetsException("A pull request has exactly one target.")
    return targets[0]


def _next_number(session: Session, ctx: RequestContext) -> int:
    """The next pull request id of the account and region (row lock keeps it unique)."""
    where = (
        PullRequestCounter.account_id == ctx.account_id,
        PullRequestCounter.region == ctx.region,
    )
    bump = (
        update(PullRequestCounter)
        .where(*where)
        .values(last_id=PullRequestCounter.last_id + 1)
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[Any], session.execute(bump)).rowcount == 0:
        try:
            with session.begin_nested():
                session.add(
                    PullRequestCounter(account_id=ctx.account_id, region=ctx.region, last_id=1)
                )
            return 1
        except IntegrityError:
            # A concurrent first pull request created the counter: take the next number.
            session.execute(bump)
    return int(session.scalars(select(PullRequestCounter.last_id).where(*where)).one())


def _add_revision(session: Session, pull_request: PullRequest) -> None:
    session.add(
        PullRequestRevision(
            pull_request_key=pull_request.key,
            revision_id=pull_request.revision_id,
            source_commit=pull_request.source_commit,
            destination_commit=pull_request.destination_commit,
            created_at=utcnow(),
        )
    )


# -- edits -----------------------------------------------------------------------------------
def set_title(pull_request: PullRequest, title: str) -> None:
    require_open(pull_request)
    check_title(title)
    pull_request.title = title
    pull_request.last_activity_at = utcnow()


def set_description(pull_request: PullRequest, description: str) -> None:
    require_open(pull_request)
    pull_request.description = description
    pull_request.last_activity_at = utcnow()


def set_status(
    session: Session, ctx: RequestContext, pull_request: PullRequest, status: str
) -> bool:
    """OPEN→CLOSED closes; staying put is a no-op; nothing reopens. True if it changed."""
    if status == pull_request.status:
        return False
    if status == OPEN:
        raise errors.InvalidPullRequestStatusUpdateException(
            f"Pull request {pull_request.pull_request_id} is closed; a closed pull request "
            "cannot be reopened."
        )
    pull_request.status = CLOSED
    _record_closed(session, ctx.principal_arn, pull_request)
    return True


def _record_closed(session: Session, actor_arn: str | None, pull_request: PullRequest) -> None:
    record(
        session,
        pull_request,
        "PULL_REQUEST_STATUS_CHANGED",
        actor_arn,
        {"pullRequestStatusChangedEventMetadata": {"pullRequestStatus": CLOSED}},
    )


# -- rendering --------------------------------------------------------------------------------
def render(session: Session, pull_request: PullRequest) -> shapes.PullRequest:
    repository = repository_of(session, pull_request)
    target: shapes.PullRequestTarget = {
        "repositoryName": repository.name,
        "sourceReference": pull_request.source_reference,
        "destinationReference": pull_request.destination_reference,
        "destinationCommit": pull_request.destination_commit,
        "sourceCommit": pull_request.source_commit,
        "mergeMetadata": _merge_metadata(pull_request),
    }
    if pull_request.merge_base is not None:
        target["mergeBase"] = pull_request.merge_base
    rendered: shapes.PullRequest = {
        "pullRequestId": pull_request.pull_request_id,
        "title": pull_request.title,
        "lastActivityDate": pull_request.last_activity_at,
        "creationDate": pull_request.created_at,
        "pullRequestStatus": pull_request.status,
        "authorArn": pull_request.author_arn,
        "pullRequestTargets": [target],
        "revisionId": pull_request.revision_id,
        "approvalRules": [render_rule(rule) for rule in rules_of(session, pull_request)],
    }
    if pull_request.description is not None:
        rendered["description"] = pull_request.description
    if pull_request.client_request_token is not None:
        rendered["clientRequestToken"] = pull_request.client_request_token
    return rendered


def _merge_metadata(pull_request: PullRequest) -> shapes.MergeMetadata:
    metadata: shapes.MergeMetadata = {"isMerged": pull_request.is_merged}
    if pull_request.merged_by is not None:
        metadata["mergedBy"] = pull_request.merged_by
    if pull_request.merge_commit_id is not None:
        metadata["mergeCommitId"] = pull_request.merge_commit_id
    if pull_request.merge_option is not None:
        metadata["mergeOption"] = pull_request.merge_option
    return metadata


# -- following the branches ------------------------------------------------------------------
def follow_branches(
    session: Session,
    caller_arn: str | None,
    git: pygit2.Repository,
    repository: Repository,
    pull_request: PullRequest,
    *,
    detect_merge: bool = True,
) -> list[dict[str, Any]]:
    """Bring an open pull request up to date with its branches.

    A moved source branch starts a new revision (approvals start over); with
    `detect_merge`, a destination that now contains the source means the pull request
    was merged outside the API, so it is marked merged and closed. Returns the event
    details to publish, for the caller to publish last.
    """
    if pull_request.status != OPEN:
        return []
    source_tip = gitstore.branch_head(git, _branch_name(pull_request.source_reference))
    destination_tip = gitstore.branch_head(git, _branch_name(pull_request.destination_reference))
    if source_tip is None or destination_tip is None:
        return []  # a deleted branch leaves the pull request as it was
    pending: list[dict[str, Any]] = []
    if source_tip != pull_request.source_commit:
        before = pull_request.source_commit
        pull_request.source_commit = source_tip
        pull_request.destination_commit = destination_tip
        pull_request.merge_base = _merge_base(git, source_tip, destination_tip)
        pull_request.revision_id = _new_revision_id()
        _add_revision(session, pull_request)
        updated: shapes.PullRequestSourceReferenceUpdatedEventMetadata = {
            "repositoryName": repository.name,
            "beforeCommitId": before,
            "afterCommitId": source_tip,
        }
        if pull_request.merge_base is not None:
            updated["mergeBase"] = pull_request.merge_base
        record(
            session,
            pull_request,
            "PULL_REQUEST_SOURCE_REFERENCE_UPDATED",
            caller_arn,
            {"pullRequestSourceReferenceUpdatedEventMetadata": updated},
        )
        pending.append(
            change_detail(caller_arn, pull_request, repository, "pullRequestSourceBranchUpdated")
        )
    elif destination_tip != pull_request.destination_commit:
        pull_request.destination_commit = destination_tip
        pull_request.merge_base = _merge_base(git, source_tip, destination_tip)
    if detect_merge and _contains(git, destination_tip, source_tip):
        merge_commit = merging.find_merge_commit(git, source_tip, destination_tip)
        _mark_merged(session, caller_arn, repository, pull_request, merge_commit, None)
        pending.append(
            change_detail(caller_arn, pull_request, repository, "pullRequestMergeStatusUpdated")
        )
    return pending


def _mark_merged(
    session: Session,
    caller_arn: str | None,
    repository: Repository,
    pull_request: PullRequest,
    merge_commit_id: str | None,
    merge_option: str | None,
) -> None:
    pull_request.is_merged = True
    pull_request.merged_by = caller_arn
    pull_request.merge_commit_id = merge_commit_id
    pull_request.merge_option = merge_option
    pull_request.status = CLOSED
    record(
        session,
        pull_request,
        "PULL_REQUEST_MERGE_STATE_CHANGED",
        caller_arn,
        {
            "pullRequestMergedStateChangedEventMetadata": {
                "repositoryName": repository.name,
                "destinationReference": pull_request.destination_reference,
                "mergeMetadata": _merge_metadata(pull_request),
            }
        },
    )
    _record_closed(session, caller_arn, pull_request)


def on_ref_changes(
    session: Session,
    ctx: RequestContext | None,
    repository: Repository,
    changes: list[gitstore.RefChange],
) -> None:
    """Ref-change listener: update the open pull requests whose branches moved."""
    refs = {change.ref for change in changes if change.reference_type == "branch"}
    if not refs:
        return
    open_pull_requests = session.scalars(
        select(PullRequest)
        .where(
            PullRequest.repository_id == repository.id,
            PullRequest.status == OPEN,
            or_(
                PullRequest.source_reference.in_(refs),
                PullRequest.destination_reference.in_(refs),
            ),
        )
        .order_by(PullRequest.key)
    ).all()
    if not open_pull_requests:
        return
    caller_arn = ctx.principal_arn if ctx else None
    git = gitstore.open_git(repository)
    for pull_request in open_pull_requests:
        try:
            # The ref has already moved in git: a failure here must not undo the push's
            # own bookkeeping, so each pull request is updated in its own savepoint.
            with session.begin_nested():
                for detail in follow_branches(session, caller_arn, git, repository, pull_request):
                    publish_change(session, repository, detail)
        except Exception:
            logger.exception(
                "could not follow the branches of pull request %s", pull_request.pull_request_id
            )


# -- merging ---------------------------------------------------------------------------------
def merge(
    session: Session,
    ctx: RequestContext,
    params: shapes.MergePullRequestByFastForwardInput | CommitMergeInput,
    merge_option: str,
    commit: CommitMergeInput | None = None,
) -> PullRequest:
    """Merge by FAST_FORWARD_MERGE, SQUASH_MERGE or THREE_WAY_MERGE, then close the request.

    `commit` carries a squash or three-way merge's own members (None: a fast-forward).
    A destination that already contains the source is left as it is; the pull request is
    still marked merged.
    """
    pull_request = get(session, ctx, params["pullRequestId"])
    repository = repositories.get(session, ctx, params["repositoryName"])
    if pull_request.repository_id != repository.id:
        raise errors.RepositoryNotAssociatedWithPullRequestException(
            f"Pull request {pull_request.pull_request_id} is not in repository {repository.name}."
        )
    require_open(pull_request)
    expected_source = params.get("sourceCommitId")
    if expected_source is not None and not _FULL_COMMIT_ID.fullmatch(expected_source):
        raise errors.InvalidCommitIdException(f"{expected_source!r} is not a full commit ID.")
    git = gitstore.open_git(repository)
    source_tip = _existing_tip(git, pull_request.source_reference)
    destination_tip = _existing_tip(git, pull_request.destination_reference)
    if expected_source is not None and expected_source != source_tip:
        raise errors.TipOfSourceReferenceIsDifferentException(
            f"The source branch is at {source_tip}, not {expected_source}."
        )
    # Catch up with a source move the listener did not see, before judging approvals.
    pending = follow_branches(
        session, ctx.principal_arn, git, repository, pull_request, detect_merge=False
    )
    revision = find_revision(session, pull_request, pull_request.revision_id, current=True)
    if not evaluate(session, pull_request, revision).mergeable:
        raise errors.PullRequestApprovalRulesNotSatisfiedException(
            f"Pull request {pull_request.pull_request_id} cannot be merged: its approval rules "
            "are not satisfied."
        )
    result = _plan(git, source_tip, destination_tip, merge_option, commit)
    if not result.mergeable:
        raise errors.ManualMergeRequiredException(
            f"Pull request {pull_request.pull_request_id} cannot be merged automatically by "
            f"{merge_option}; merge it manually."
        )
    changes = []
    if result.commit_id != destination_tip:
        try:
            changes.append(
                gitstore.update_ref_in(
                    session,
                    repository,
                    pull_request.destination_reference,
                    result.commit_id,
                    destination_tip,
                )
            )
        except gitstore.RefMoved:
            raise errors.ConcurrentReferenceUpdateException(
                f"Branch {pull_request.destination_reference} moved while merging; try again."
            ) from None
    # Closed before the ref change is reported, so the listener leaves this one alone.
    _mark_merged(
        session, ctx.principal_arn, repository, pull_request, result.commit_id, merge_option
    )
    gitstore.report_ref_changes(session, ctx, repository, changes)
    merged = change_detail(
        ctx.principal_arn,
        pull_request,
        repository,
        "pullRequestMergeStatusUpdated",
        mergeOption=merge_option,
    )
    for detail in [*pending, merged]:
        publish_change(session, repository, detail)
    return pull_request


def _plan(
    git: pygit2.Repository,
    source_tip: str,
    destination_tip: str,
    merge_option: str,
    commit: CommitMergeInput | None,
) -> merging.MergeResult:
    choices = (
        merging.CommitChoices() if commit is None else merging.CommitChoices.from_request(commit)
    )
    return merging.plan_chosen_merge(git, source_tip, destination_tip, merge_option, choices)


def _existing_tip(git: pygit2.Repository, ref: str) -> str:
    tip = gitstore.branch_head(git, _branch_name(ref))
    if tip is None:
        raise errors.ReferenceDoesNotExistException(f"Branch {ref} no longer exists.")
    return tip
