"""What a pull request tells of itself: its history and the state changes it publishes.

Every change is kept in the pull request's history (DescribePullRequestEvents answers
from it) and published as a "CodeCommit Pull Request State Change" event, which the
listeners in `PULL_REQUEST_LISTENERS` see first (CodeBuild webhooks start builds there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codecommit.event_format import EVENT_SOURCE, event_date
from forgeline.codecommit.generated import shapes
from forgeline.codecommit.tables.pull_requests import PullRequest, PullRequestEvent
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core import events
from forgeline.core.db import utcnow

PULL_REQUEST_DETAIL_TYPE = "CodeCommit Pull Request State Change"

# Called with each pull request state change (its event detail) just before it is
# published, in the same transaction; CodeBuild webhooks start builds from here.
PullRequestListener = Callable[[Session, Repository, dict[str, Any]], None]
PULL_REQUEST_LISTENERS: list[PullRequestListener] = []


# -- history ---------------------------------------------------------------------------------
def record(
    session: Session,
    pull_request: PullRequest,
    event_type: str,
    actor_arn: str | None,
    metadata: shapes.PullRequestEvent,
) -> None:
    """Keep one history event; `metadata` holds its one metadata member, as the model names
    it (pullRequestCreatedEventMetadata...)."""
    now = utcnow()
    pull_request.last_activity_at = now
    session.add(
        PullRequestEvent(
            pull_request_key=pull_request.key,
            event_type=event_type,
            actor_arn=actor_arn,
            event_date=now,
            detail=dict(metadata),
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


def render_event(pull_request: PullRequest, event: PullRequestEvent) -> shapes.PullRequestEvent:
    rendered: shapes.PullRequestEvent = {
        "pullRequestId": pull_request.pull_request_id,
        "eventDate": event.event_date,
        "pullRequestEventType": event.event_type,
    }
    if event.actor_arn is not None:
        rendered["actorArn"] = event.actor_arn
    # The JSON column holds the metadata member `record` was given as this shape.
    rendered.update(cast(shapes.PullRequestEvent, event.detail))
    return rendered


# -- published state changes ---------------------------------------------------------------
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
        "creationDate": event_date(pull_request.created_at),
        "lastModifiedDate": event_date(pull_request.last_activity_at),
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
