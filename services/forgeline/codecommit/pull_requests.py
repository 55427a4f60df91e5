"""Pull requests: create, follow their branches, approve, merge; approval rule templates.

A pull request targets one source and one destination branch of one repository. Each
time the source branch moves the pull request gets a new revision, and approvals and
overrides, kept per revision, start over — as CodeCommit does. Branch moves reach us
through `gitstore.REF_CHANGE_LISTENERS` (pushes, API commits, merges), which is also
how a pull request merged outside the API (a push that brings the source into the
destination) is marked merged and closed.

Every change is kept in the pull request's history (DescribePullRequestEvents) and
published as a "CodeCommit Pull Request State Change" event.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import uuid
from collections.abc import Callable
from typing import Any, cast

import pygit2
from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.codecommit import approvals, gitstore, merging, repositories
from forgeline.codecommit.generated import errors
from forgeline.codecommit.tables.pull_requests import (
    ApprovalRuleTemplate,
    ApprovalRuleTemplateAssociation,
    PullRequest,
    PullRequestApproval,
    PullRequestApprovalRule,
    PullRequestCounter,
    PullRequestEvent,
    PullRequestRevision,
)
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core import events
from forgeline.core.context import RequestContext
from forgeline.core.db import utcnow
from forgeline.core.pagination import page_tokens
from forgeline.core.protocol.errors import AwsError

logger = logging.getLogger(__name__)

OPEN, CLOSED = "OPEN", "CLOSED"
EVENT_SOURCE = "aws.codecommit"
PULL_REQUEST_DETAIL_TYPE = "CodeCommit Pull Request State Change"
TEMPLATE_DETAIL_TYPE = "CodeCommit Approval Rule Template Change"

# Called with each pull request state change (its event detail) just before it is
# published, in the same transaction; CodeBuild webhooks start builds from here.
PullRequestListener = Callable[[Session, Repository, dict[str, Any]], None]
PULL_REQUEST_LISTENERS: list[PullRequestListener] = []

# CodeCommit quotas (user guide, "Quotas").
MAX_OPEN_PULL_REQUESTS = 1000
MAX_RULES_PER_PULL_REQUEST = 30
MAX_TEMPLATE_RULES_PER_PULL_REQUEST = 25
MAX_TEMPLATES = 1000
MAX_TEMPLATES_PER_REPOSITORY = 25
MAX_BATCH_REPOSITORIES = 100
MAX_BRANCH_NAME = 256
MAX_CLIENT_TOKEN = 256  # the idempotency table's column

_PULL_REQUEST_ID = re.compile(r"[0-9]{1,18}")
_FULL_COMMIT_ID = re.compile(r"[0-9a-f]{40}")
_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:\S+")
_BAD_REF_CHARACTERS = frozenset(" ~^:?*[\\\x7f")


# -- lookups ---------------------------------------------------------------------------
def get(session: Session, ctx: RequestContext, pull_request_id: str) -> PullRequest:
    """The caller's pull request by id (InvalidPullRequestId / PullRequestDoesNotExist)."""
    if not _PULL_REQUEST_ID.fullmatch(pull_request_id):
        raise errors.InvalidPullRequestIdException(
            f"{pull_request_id!r} is not a valid pull request ID."
        )
    pull_request = session.scalars(
        select(PullRequest).where(
            PullRequest.account_id == ctx.account_id,
            PullRequest.region == ctx.region,
            PullRequest.pull_request_id == str(int(pull_request_id)),
        )
    ).first()
    if pull_request is None:
        raise errors.PullRequestDoesNotExistException(
            f"Pull request {pull_request_id} does not exist."
        )
    return pull_request


def list_for_repository(
    session: Session, repository: Repository, author_arn: str | None, status: str | None
) -> list[PullRequest]:
    """The repository's pull requests, newest first, optionally by author and status."""
    query = select(PullRequest).where(PullRequest.repository_id == repository.id)
    if author_arn:
        query = query.where(PullRequest.author_arn == author_arn)
    if status:
        query = query.where(PullRequest.status == status)
    rows = list(session.scalars(query))
    # Ids are numbers: compare them as numbers, not strings.
    return sorted(rows, key=lambda row: int(row.pull_request_id), reverse=True)


def repository_of(session: Session, pull_request: PullRequest) -> Repository:
    return session.get_one(Repository, pull_request.repository_id)


def require_open(pull_request: PullRequest) -> None:
    if pull_request.status != OPEN:
        raise errors.PullRequestAlreadyClosedException(
            f"Pull request {pull_request.pull_request_id} is already closed."
        )


def find_revision(
    session: Session, pull_request: PullRequest, revision_id: str, *, current: bool
) -> PullRequestRevision:
    """A revision of this pull request; with `current`, only the latest one will do."""
    revision = session.get(PullRequestRevision, (pull_request.key, revision_id))
    if revision is None:
        raise errors.InvalidRevisionIdException(
            f"{revision_id!r} is not a revision of pull request {pull_request.pull_request_id}."
        )
    if current and revision_id != pull_request.revision_id:
        raise errors.RevisionNotCurrentException(
            f"Revision {revision_id} is not the current revision of pull request "
            f"{pull_request.pull_request_id}; the current one is {pull_request.revision_id}."
        )
    return revision


def check_principal_arn(arn: str, error: type[AwsError]) -> None:
    if not _PRINCIPAL_ARN.fullmatch(arn):
        raise error(f"{arn!r} is not a valid IAM or STS principal ARN.")


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


def create(session: Session, ctx: RequestContext, params: dict[str, Any]) -> PullRequest:
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
    _apply_templates(session, pull_request, repository)
    _record(
        session,
        pull_request,
        "PULL_REQUEST_CREATED",
        ctx.principal_arn,
        "pullRequestCreatedEventMetadata",
        {
            "repositoryName": repository.name,
            "sourceCommitId": source_commit,
            "destinationCommitId": destination_commit,
            "mergeBase": pull_request.merge_base,
        },
    )
    return pull_request


def _single_target(targets: list[dict[str, Any]]) -> dict[str, Any]:
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


def _apply_templates(session: Session, pull_request: PullRequest, repository: Repository) -> None:
    applied = 0
    for template in templates_of_repository(session, repository):
        if applied >= MAX_TEMPLATE_RULES_PER_PULL_REQUEST:
            break
        content = approvals.parse_rule_content(template.content)
        if not content.applies_to(pull_request.destination_reference):
            continue
        now = utcnow()
        session.add(
            PullRequestApprovalRule(
                id=str(uuid.uuid4()),
                pull_request_key=pull_request.key,
                name=template.name,
                content=template.content,
                content_sha256=template.content_sha256,
                last_modified_user=template.last_modified_user,
                template_id=template.id,
                template_name=template.name,
                created_at=now,
                updated_at=now,
            )
        )
        applied += 1


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
    _record(
        session,
        pull_request,
        "PULL_REQUEST_STATUS_CHANGED",
        ctx.principal_arn,
        "pullRequestStatusChangedEventMetadata",
        {"pullRequestStatus": CLOSED},
    )
    return True


# -- approval rules ---------------------------------------------------------------------------
def rules_of(session: Session, pull_request: PullRequest) -> list[PullRequestApprovalRule]:
    return list(
        session.scalars(
            select(PullRequestApprovalRule)
            .where(PullRequestApprovalRule.pull_request_key == pull_request.key)
            .order_by(PullRequestApprovalRule.created_at, PullRequestApprovalRule.name)
        )
    )


def _rule_named(
    session: Session, pull_request: PullRequest, name: str
) -> PullRequestApprovalRule | None:
    return session.scalars(
        select(PullRequestApprovalRule).where(
            PullRequestApprovalRule.pull_request_key == pull_request.key,
            PullRequestApprovalRule.name == name,
        )
    ).first()


def check_rule_name(name: str) -> None:
    if not approvals.is_valid_name(name):
        raise errors.InvalidApprovalRuleNameException(
            f"{name!r} is not a valid approval rule name: use 1-100 letters, numbers, spaces, "
            "periods, underscores and dashes, not ending in .git."
        )


def check_rule_content(content: str) -> None:
    try:
        approvals.parse_rule_content(content)
    except approvals.InvalidRuleContent as problem:
        raise errors.InvalidApprovalRuleContentException(str(problem)) from None


def create_rule(
    session: Session, ctx: RequestContext, pull_request: PullRequest, name: str, content: str
) -> PullRequestApprovalRule:
    require_open(pull_request)
    check_rule_name(name)
    check_rule_content(content)
    existing = rules_of(session, pull_request)
    if any(rule.name == name for rule in existing):
        raise errors.ApprovalRuleNameAlreadyExistsException(
            f"Pull request {pull_request.pull_request_id} already has a rule named {name!r}."
        )
    if len(existing) >= MAX_RULES_PER_PULL_REQUEST:
        raise errors.NumberOfRulesExceededException(
            f"A pull request can have at most {MAX_RULES_PER_PULL_REQUEST} approval rules."
        )
    now = utcnow()
    rule = PullRequestApprovalRule(
        id=str(uuid.uuid4()),
        pull_request_key=pull_request.key,
        name=name,
        content=content,
        content_sha256=approvals.content_sha256(content),
        last_modified_user=ctx.principal_arn,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    _record_rule_event(session, ctx, pull_request, "PULL_REQUEST_APPROVAL_RULE_CREATED", rule)
    return rule


def update_rule_content(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    name: str,
    content: str,
    expected_sha256: str | None,
) -> PullRequestApprovalRule:
    require_open(pull_request)
    check_rule_name(name)
    rule = _rule_named(session, pull_request, name)
    if rule is None:
        raise errors.ApprovalRuleDoesNotExistException(
            f"Pull request {pull_request.pull_request_id} has no approval rule named {name!r}."
        )
    if rule.template_id is not None:
        raise errors.CannotModifyApprovalRuleFromTemplateException(
            f"Approval rule {name!r} comes from an approval rule template and cannot be changed."
        )
    if expected_sha256 is not None and expected_sha256 != rule.content_sha256:
        raise errors.InvalidRuleContentSha256Exception(
            f"The rule content SHA-256 {expected_sha256!r} does not match the rule's current "
            "content."
        )
    check_rule_content(content)
    rule.content = content
    rule.content_sha256 = approvals.content_sha256(content)
    rule.last_modified_user = ctx.principal_arn
    rule.updated_at = utcnow()
    _record_rule_event(session, ctx, pull_request, "PULL_REQUEST_APPROVAL_RULE_UPDATED", rule)
    return rule


def delete_rule(
    session: Session, ctx: RequestContext, pull_request: PullRequest, name: str
) -> PullRequestApprovalRule | None:
    """The deleted rule, or None if there was none by that name (AWS answers success)."""
    require_open(pull_request)
    check_rule_name(name)
    rule = _rule_named(session, pull_request, name)
    if rule is None:
        return None
    if rule.template_id is not None:
        raise errors.CannotDeleteApprovalRuleFromTemplateException(
            f"Approval rule {name!r} comes from an approval rule template and cannot be deleted."
        )
    session.delete(rule)
    _record_rule_event(session, ctx, pull_request, "PULL_REQUEST_APPROVAL_RULE_DELETED", rule)
    return rule


def _record_rule_event(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    event_type: str,
    rule: PullRequestApprovalRule,
) -> None:
    _record(
        session,
        pull_request,
        event_type,
        ctx.principal_arn,
        "approvalRuleEventMetadata",
        {
            "approvalRuleName": rule.name,
            "approvalRuleId": rule.id,
            "approvalRuleContent": rule.content,
        },
    )


# -- approvals and overrides -------------------------------------------------------------------
def approvers_of(session: Session, pull_request: PullRequest, revision_id: str) -> list[str]:
    return list(
        session.scalars(
            select(PullRequestApproval.user_arn)
            .where(
                PullRequestApproval.pull_request_key == pull_request.key,
                PullRequestApproval.revision_id == revision_id,
            )
            .order_by(PullRequestApproval.created_at, PullRequestApproval.user_arn)
        )
    )


def set_approval(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    revision_id: str,
    state: str,
) -> bool:
    """APPROVE or REVOKE the caller's approval of the current revision. True if it changed."""
    require_open(pull_request)
    find_revision(session, pull_request, revision_id, current=True)
    key = (pull_request.key, revision_id, ctx.principal_arn)
    existing = session.get(PullRequestApproval, key)
    if state == "APPROVE":
        if ctx.principal_arn == pull_request.author_arn:
            raise errors.PullRequestCannotBeApprovedByAuthorException(
                "The author of a pull request cannot approve it."
            )
        if existing is not None:
            return False
        if len(approvers_of(session, pull_request, revision_id)) >= approvals.MAX_APPROVALS:
            raise errors.MaximumNumberOfApprovalsExceededException(
                f"A pull request revision can have at most {approvals.MAX_APPROVALS} approvals."
            )
        session.add(
            PullRequestApproval(
                pull_request_key=pull_request.key,
                revision_id=revision_id,
                user_arn=ctx.principal_arn,
                created_at=utcnow(),
            )
        )
    else:
        if existing is None:
            return False
        session.delete(existing)
    _record(
        session,
        pull_request,
        "PULL_REQUEST_APPROVAL_STATE_CHANGED",
        ctx.principal_arn,
        "approvalStateChangedEventMetadata",
        {"revisionId": revision_id, "approvalStatus": state},
    )
    return True


def set_override(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    revision_id: str,
    status: str,
) -> bool:
    """OVERRIDE sets the rules aside for the current revision; REVOKE restores them."""
    require_open(pull_request)
    revision = find_revision(session, pull_request, revision_id, current=True)
    if status == "OVERRIDE":
        if revision.overridden_by is not None:
            raise errors.OverrideAlreadySetException(
                f"The approval rules of pull request {pull_request.pull_request_id} are "
                "already overridden."
            )
        revision.overridden_by = ctx.principal_arn
    else:
        if revision.overridden_by is None:
            return False
        revision.overridden_by = None
    _record(
        session,
        pull_request,
        "PULL_REQUEST_APPROVAL_RULE_OVERRIDDEN",
        ctx.principal_arn,
        "approvalRuleOverriddenEventMetadata",
        {"revisionId": revision_id, "overrideStatus": status},
    )
    return True


def evaluate(
    session: Session, pull_request: PullRequest, revision: PullRequestRevision
) -> approvals.Evaluation:
    rules = [
        (rule.name, approvals.parse_rule_content(rule.content))
        for rule in rules_of(session, pull_request)
    ]
    return approvals.evaluate(
        rules,
        approvers_of(session, pull_request, revision.revision_id),
        overridden=revision.overridden_by is not None,
    )


# -- history and events ---------------------------------------------------------------------
def _record(
    session: Session,
    pull_request: PullRequest,
    event_type: str,
    actor_arn: str | None,
    metadata_member: str,
    metadata: dict[str, Any],
) -> None:
    now = utcnow()
    pull_request.last_activity_at = now
    session.add(
        PullRequestEvent(
            pull_request_key=pull_request.key,
            event_type=event_type,
            actor_arn=actor_arn,
            event_date=now,
            detail={metadata_member: {k: v for k, v in metadata.items() if v is not None}},
        )
    )


def history(
    session: Session,
    pull_request: PullRequest,
    event_type: str | None,
    actor_arn: str | None,
) -> list[PullRequestEvent]:
    query = select(PullRequestEvent).where(PullRequestEvent.pull_request_key == pull_request.key)
    if event_type:
        query = query.where(PullRequestEvent.event_type == event_type)
    if actor_arn:
        query = query.where(PullRequestEvent.actor_arn == actor_arn)
    return list(session.scalars(query.order_by(PullRequestEvent.id)))


def render_event(pull_request: PullRequest, event: PullRequestEvent) -> dict[str, Any]:
    return {
        "pullRequestId": pull_request.pull_request_id,
        "eventDate": event.event_date,
        "pullRequestEventType": event.event_type,
        "actorArn": event.actor_arn,
        **event.detail,
    }


def change_detail(
    caller_arn: str | None,
    pull_request: PullRequest,
    repository: Repository,
    event: str,
    **extra: Any,
) -> dict[str, Any]:
    """The detail of a "CodeCommit Pull Request State Change", as the pull request is now."""
    detail: dict[str, Any] = {
        "event": event,
        "pullRequestId": pull_request.pull_request_id,
        "repositoryNames": [repository.name],
        "title": pull_request.title,
        "description": pull_request.description,
        "author": pull_request.author_arn,
        "callerUserArn": caller_arn,
        "sourceReference": pull_request.source_reference,
        "destinationReference": pull_request.destination_reference,
        "sourceCommit": pull_request.source_commit,
        "destinationCommit": pull_request.destination_commit,
        # AWS sends these two as strings, capitalised.
        "isMerged": "True" if pull_request.is_merged else "False",
        "pullRequestStatus": pull_request.status.capitalize(),
        "revisionId": pull_request.revision_id,
        "creationDate": _event_date(pull_request.created_at),
        "lastModifiedDate": _event_date(pull_request.last_activity_at),
        **extra,
    }
    return {k: v for k, v in detail.items() if v is not None}


def publish_change(session: Session, repository: Repository, detail: dict[str, Any]) -> None:
    """Publish a pull request state change; call it as the transaction's last write."""
    for listener in PULL_REQUEST_LISTENERS:
        listener(session, repository, detail)
    events.publish(
        session,
        account_id=repository.account_id,
        region=repository.region,
        source=EVENT_SOURCE,
        detail_type=PULL_REQUEST_DETAIL_TYPE,
        detail=detail,
        resources=[repository.arn()],
    )


def _event_date(moment: dt.datetime) -> str:
    """The date format CodeCommit's events use: `Wed Nov 06 19:10:58 UTC 2019`."""
    return moment.astimezone(dt.UTC).strftime("%a %b %d %H:%M:%S UTC %Y")


# -- rendering --------------------------------------------------------------------------------
def render(session: Session, pull_request: PullRequest) -> dict[str, Any]:
    repository = repository_of(session, pull_request)
    return {
        "pullRequestId": pull_request.pull_request_id,
        "title": pull_request.title,
        "description": pull_request.description,
        "lastActivityDate": pull_request.last_activity_at,
        "creationDate": pull_request.created_at,
        "pullRequestStatus": pull_request.status,
        "authorArn": pull_request.author_arn,
        "pullRequestTargets": [
            {
                "repositoryName": repository.name,
                "sourceReference": pull_request.source_reference,
                "destinationReference": pull_request.destination_reference,
                "destinationCommit": pull_request.destination_commit,
                "sourceCommit": pull_request.source_commit,
                "mergeBase": pull_request.merge_base,
                "mergeMetadata": {
                    "isMerged": pull_request.is_merged,
                    "mergedBy": pull_request.merged_by,
                    "mergeCommitId": pull_request.merge_commit_id,
                    "mergeOption": pull_request.merge_option,
                },
            }
        ],
        "clientRequestToken": pull_request.client_request_token,
        "revisionId": pull_request.revision_id,
        "approvalRules": [render_rule(rule) for rule in rules_of(session, pull_request)],
    }


def render_rule(rule: PullRequestApprovalRule) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "approvalRuleId": rule.id,
        "approvalRuleName": rule.name,
        "approvalRuleContent": rule.content,
        "ruleContentSha256": rule.content_sha256,
        "lastModifiedDate": rule.updated_at,
        "creationDate": rule.created_at,
        "lastModifiedUser": rule.last_modified_user,
    }
    if rule.template_id is not None:
        rendered["originApprovalRuleTemplate"] = {
            "approvalRuleTemplateId": rule.template_id,
            "approvalRuleTemplateName": rule.template_name,
        }
    return rendered


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
        _record(
            session,
            pull_request,
            "PULL_REQUEST_SOURCE_REFERENCE_UPDATED",
            caller_arn,
            "pullRequestSourceReferenceUpdatedEventMetadata",
            {
                "repositoryName": repository.name,
                "beforeCommitId": before,
                "afterCommitId": source_tip,
                "mergeBase": pull_request.merge_base,
            },
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
    _record(
        session,
        pull_request,
        "PULL_REQUEST_MERGE_STATE_CHANGED",
        caller_arn,
        "pullRequestMergedStateChangedEventMetadata",
        {
            "repositoryName": repository.name,
            "destinationReference": pull_request.destination_reference,
            "mergeMetadata": {
                k: v
                for k, v in {
                    "isMerged": True,
                    "mergedBy": caller_arn,
                    "mergeCommitId": merge_commit_id,
                    "mergeOption": merge_option,
                }.items()
                if v is not None
            },
        },
    )
    _record(
        session,
        pull_request,
        "PULL_REQUEST_STATUS_CHANGED",
        caller_arn,
        "pullRequestStatusChangedEventMetadata",
        {"pullRequestStatus": CLOSED},
    )


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
    params: dict[str, Any],
    merge_option: str,
) -> PullRequest:
    """Merge by FAST_FORWARD_MERGE, SQUASH_MERGE or THREE_WAY_MERGE, then close the request.

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
    result = merging.plan_merge(
        git,
        source_tip,
        destination_tip,
        merge_option,
        conflict_detail_level=params.get("conflictDetailLevel", "FILE_LEVEL"),
        conflict_resolution_strategy=params.get("conflictResolutionStrategy", "NONE"),
        conflict_resolution=params.get("conflictResolution"),
        author_name=params.get("authorName"),
        email=params.get("email"),
        message=params.get("commitMessage"),
        keep_empty_folders=params.get("keepEmptyFolders", False),
    )
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


def _existing_tip(git: pygit2.Repository, ref: str) -> str:
    tip = gitstore.branch_head(git, _branch_name(ref))
    if tip is None:
        raise errors.ReferenceDoesNotExistException(f"Branch {ref} no longer exists.")
    return tip


# -- approval rule templates ------------------------------------------------------------------
def check_template_name(name: str) -> None:
    if not approvals.is_valid_name(name):
        raise errors.InvalidApprovalRuleTemplateNameException(
            f"{name!r} is not a valid approval rule template name: use 1-100 letters, numbers, "
            "spaces, periods, underscores and dashes, not ending in .git."
        )


def check_template_content(content: str) -> None:
    try:
        approvals.parse_rule_content(content)
    except approvals.InvalidRuleContent as problem:
        raise errors.InvalidApprovalRuleTemplateContentException(str(problem)) from None


def find_template(session: Session, ctx: RequestContext, name: str) -> ApprovalRuleTemplate | None:
    check_template_name(name)
    return session.scalars(
        select(ApprovalRuleTemplate).where(
            ApprovalRuleTemplate.account_id == ctx.account_id,
            ApprovalRuleTemplate.region == ctx.region,
            ApprovalRuleTemplate.name == name,
        )
    ).first()


def get_template(session: Session, ctx: RequestContext, name: str) -> ApprovalRuleTemplate:
    template = find_template(session, ctx, name)
    if template is None:
        raise errors.ApprovalRuleTemplateDoesNotExistException(
            f"Approval rule template {name!r} does not exist in {ctx.region}."
        )
    return template


def create_template(
    session: Session, ctx: RequestContext, name: str, content: str, description: str | None
) -> ApprovalRuleTemplate:
    if find_template(session, ctx, name) is not None:
        raise _template_exists(name)
    check_template_content(content)
    count = session.scalar(
        select(func.count())
        .select_from(ApprovalRuleTemplate)
        .where(
            ApprovalRuleTemplate.account_id == ctx.account_id,
            ApprovalRuleTemplate.region == ctx.region,
        )
    )
    if (count or 0) >= MAX_TEMPLATES:
        raise errors.NumberOfRuleTemplatesExceededException(
            f"A region can have at most {MAX_TEMPLATES} approval rule templates."
        )
    now = utcnow()
    template = ApprovalRuleTemplate(
        id=str(uuid.uuid4()),
        account_id=ctx.account_id,
        region=ctx.region,
        name=name,
        description=description or "",
        content=content,
        content_sha256=approvals.content_sha256(content),
        last_modified_user=ctx.principal_arn,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _template_exists(name) from None
    return template


def _template_exists(name: str) -> AwsError:
    return errors.ApprovalRuleTemplateNameAlreadyExistsException(
        f"An approval rule template named {name!r} already exists."
    )


def rename_template(
    session: Session, ctx: RequestContext, old: str, new: str
) -> ApprovalRuleTemplate:
    template = get_template(session, ctx, old)
    check_template_name(new)
    if new != old:
        if find_template(session, ctx, new) is not None:
            raise _template_exists(new)
        template.name = new
        _touch_template(ctx, template)
    return template


def set_template_description(
    session: Session, ctx: RequestContext, name: str, description: str
) -> ApprovalRuleTemplate:
    template = get_template(session, ctx, name)
    template.description = description
    _touch_template(ctx, template)
    return template


def set_template_content(
    session: Session,
    ctx: RequestContext,
    name: str,
    content: str,
    expected_sha256: str | None,
) -> ApprovalRuleTemplate:
    template = get_template(session, ctx, name)
    if expected_sha256 is not None and expected_sha256 != template.content_sha256:
        raise errors.InvalidRuleContentSha256Exception(
            f"The rule content SHA-256 {expected_sha256!r} does not match the template's "
            "current content."
        )
    check_template_content(content)
    template.content = content
    template.content_sha256 = approvals.content_sha256(content)
    _touch_template(ctx, template)
    return template


def _touch_template(ctx: RequestContext, template: ApprovalRuleTemplate) -> None:
    template.last_modified_user = ctx.principal_arn
    template.updated_at = utcnow()


def delete_template(
    session: Session, ctx: RequestContext, name: str
) -> ApprovalRuleTemplate | None:
    """The deleted template, or None if it was already gone (AWS answers success)."""
    template = find_template(session, ctx, name)
    if template is None:
        return None
    if repositories_of_template(session, template):
        raise errors.ApprovalRuleTemplateInUseException(
            f"Approval rule template {name!r} is associated with repositories; disassociate "
            "them first."
        )
    session.delete(template)
    return template


def list_template_names(session: Session, ctx: RequestContext) -> list[str]:
    return list(
        session.scalars(
            select(ApprovalRuleTemplate.name)
            .where(
                ApprovalRuleTemplate.account_id == ctx.account_id,
                ApprovalRuleTemplate.region == ctx.region,
            )
            .order_by(ApprovalRuleTemplate.name)
        )
    )


def templates_of_repository(session: Session, repository: Repository) -> list[ApprovalRuleTemplate]:
    return list(
        session.scalars(
            select(ApprovalRuleTemplate)
            .join(
                ApprovalRuleTemplateAssociation,
                ApprovalRuleTemplateAssociation.template_id == ApprovalRuleTemplate.id,
            )
            .where(ApprovalRuleTemplateAssociation.repository_id == repository.id)
            .order_by(ApprovalRuleTemplate.name)
        )
    )


def repositories_of_template(session: Session, template: ApprovalRuleTemplate) -> list[Repository]:
    return list(
        session.scalars(
            select(Repository)
            .join(
                ApprovalRuleTemplateAssociation,
                ApprovalRuleTemplateAssociation.repository_id == Repository.id,
            )
            .where(ApprovalRuleTemplateAssociation.template_id == template.id)
            .order_by(Repository.name)
        )
    )


def associate(session: Session, template: ApprovalRuleTemplate, repository: Repository) -> bool:
    """Associate; True if it is new (associating twice is a no-op)."""
    if session.get(ApprovalRuleTemplateAssociation, (template.id, repository.id)) is not None:
        return False
    count = session.scalar(
        select(func.count())
        .select_from(ApprovalRuleTemplateAssociation)
        .where(ApprovalRuleTemplateAssociation.repository_id == repository.id)
    )
    if (count or 0) >= MAX_TEMPLATES_PER_REPOSITORY:
        raise errors.MaximumRuleTemplatesAssociatedWithRepositoryException(
            f"Repository {repository.name} already has {MAX_TEMPLATES_PER_REPOSITORY} "
            "associated approval rule templates."
        )
    session.add(
        ApprovalRuleTemplateAssociation(
            template_id=template.id, repository_id=repository.id, created_at=utcnow()
        )
    )
    session.flush()
    return True


def disassociate(session: Session, template: ApprovalRuleTemplate, repository: Repository) -> bool:
    association = session.get(ApprovalRuleTemplateAssociation, (template.id, repository.id))
    if association is None:
        return False
    session.delete(association)
    session.flush()
    return True


def batch(
    session: Session,
    ctx: RequestContext,
    template: ApprovalRuleTemplate,
    names: list[str],
    action: Callable[[Session, ApprovalRuleTemplate, Repository], bool],
) -> tuple[list[Repository], list[dict[str, str]]]:
    """Apply `action` per repository name; failures become error entries, not exceptions."""
    if not names:
        raise errors.RepositoryNamesRequiredException("At least one repository name is required.")
    if len(names) > MAX_BATCH_REPOSITORIES:
        raise errors.MaximumRepositoryNamesExceededException(
            f"At most {MAX_BATCH_REPOSITORIES} repository names are allowed."
        )
    done: list[Repository] = []
    problems: list[dict[str, str]] = []
    for name in dict.fromkeys(names):
        try:
            with session.begin_nested():
                repository = repositories.get(session, ctx, name)
                action(session, template, repository)
            done.append(repository)
        except AwsError as error:
            problems.append(
                {"repositoryName": name, "errorCode": error.code, "errorMessage": error.message}
            )
    return done, problems


def render_template(template: ApprovalRuleTemplate) -> dict[str, Any]:
    return {
        "approvalRuleTemplateId": template.id,
        "approvalRuleTemplateName": template.name,
        "approvalRuleTemplateDescription": template.description,
        "approvalRuleTemplateContent": template.content,
        "ruleContentSha256": template.content_sha256,
        "lastModifiedDate": template.updated_at,
        "creationDate": template.created_at,
        "lastModifiedUser": template.last_modified_user,
    }


def publish_template_change(
    session: Session,
    ctx: RequestContext,
    template: ApprovalRuleTemplate,
    event: str,
    repositories_touched: list[Repository],
) -> None:
    """Publish a "CodeCommit Approval Rule Template Change"; call it as the last write."""
    events.publish(
        session,
        account_id=template.account_id,
        region=template.region,
        source=EVENT_SOURCE,
        detail_type=TEMPLATE_DETAIL_TYPE,
        detail={
            "event": event,
            "approvalRuleTemplateId": template.id,
            "approvalRuleTemplateName": template.name,
            "approvalRuleTemplateContentSha256": template.content_sha256,
            "callerUserArn": ctx.principal_arn,
            "creationDate": _event_date(template.created_at),
            "lastModifiedDate": _event_date(template.updated_at),
            "repositories": {r.name: r.id for r in repositories_touched},
        },
        resources=[r.arn() for r in repositories_touched],
    )


def page(
    items: list[Any],
    key: Callable[[Any], Any],
    scope: dict[str, Any],
    token: str | None,
    limit: int,
    descending: bool = False,
) -> tuple[list[Any], str | None]:
    return page_tokens("InvalidContinuationTokenException").page(
        items, key, scope, token, limit, descending
    )
