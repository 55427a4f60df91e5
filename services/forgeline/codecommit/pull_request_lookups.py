"""Finding pull requests and their revisions, and the checks every change to one makes.

A pull request is known by its number in the account and region; each state of its
source branch is a revision, and approvals and overrides are kept per revision.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codecommit.generated import errors
from forgeline.codecommit.tables.pull_requests import PullRequest, PullRequestRevision
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext
from forgeline.core.protocol.errors import AwsError

OPEN, CLOSED = "OPEN", "CLOSED"

_PULL_REQUEST_ID = re.compile(r"[0-9]{1,18}")
_PRINCIPAL_ARN = re.compile(r"arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:\S+")


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
