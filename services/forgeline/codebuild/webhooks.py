"""CodeBuild webhooks on Forgeline's own repositories: from repository changes to builds.

AWS offers webhooks for GitHub, Bitbucket and GitLab sources; Forgeline offers the same
API for projects whose source is one of its CodeCommit repositories. No HTTP delivery is
involved: repository events reach the build service in the transaction that records
them, through CodeCommit's `ref_changes` hook (pushes, API commits, merges) and its
`pull_request_change` hook (pull request state changes), which codebuild/manifest.py
subscribes to, and every matching webhook starts its project's build (or batch) right
there. Which events match is webhook_filters.py's; the webhook operations are
ops/webhooks.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pygit2
from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codebuild import batch_coordinator, builds, projects, scheduler_doorbell
from forgeline.codebuild.sources import repository_name_from_url
from forgeline.codebuild.tables.batches import BuildWebhook
from forgeline.codebuild.tables.projects import BuildProject
from forgeline.codebuild.webhook_filters import (
    PULL_REQUEST_CLOSED,
    PULL_REQUEST_CREATED,
    PULL_REQUEST_MERGED,
    PULL_REQUEST_UPDATED,
    PUSH,
    RepositoryEvent,
    matches,
)
from forgeline.codecommit import interface as codecommit
from forgeline.codecommit.interface import ZERO_OID, RefChange, Repository
from forgeline.core.context import RequestContext

logger = logging.getLogger(__name__)

INITIATOR = "codecommit-webhook"

# Pull request event detail `event` -> webhook event (CodeCommit cannot reopen one).
_PULL_REQUEST_EVENTS = {
    "pullRequestCreated": PULL_REQUEST_CREATED,
    "pullRequestSourceBranchUpdated": PULL_REQUEST_UPDATED,
}


# -- from repository changes to events ------------------------------------------------
def _message_of(git: pygit2.Repository, commit: str) -> Callable[[], str]:
    def read() -> str:
        try:
            return str(git[commit].peel(pygit2.Commit).message)
        except (KeyError, ValueError):
            return ""

    return read


def _paths_between(git: pygit2.Repository, old: str | None, new: str) -> Callable[[], list[str]]:
    """Paths that differ between `old` (None: the new commit's first parent) and `new`,
    read only when a filter asks."""
    return lambda: codecommit.changed_paths(git, old, new)


def push_events(
    git: pygit2.Repository, repository: Repository, changes: list[RefChange], actor: str | None
) -> list[RepositoryEvent]:
    events = []
    for change in changes:
        if change.new == ZERO_OID or change.reference_type not in ("branch", "tag"):
            continue  # a deleted ref has nothing to build
        commit = change.new
        try:
            commit = str(git[change.new].peel(pygit2.Commit).id)  # an annotated tag's commit
        except (KeyError, ValueError, pygit2.GitError):
            pass
        prev = None if change.old == ZERO_OID else change.old
        events.append(
            RepositoryEvent(
                event=PUSH,
                repository_name=repository.name,
                head_ref=change.ref,
                commit=commit,
                trigger=f"{change.reference_type}/{change.short_name}",
                actor=actor,
                prev_commit=prev,
                commit_message=_message_of(git, commit),
                changed_paths=_paths_between(git, prev, commit),
            )
        )
    return events


def pull_request_event(
    session: Session, git: pygit2.Repository, repository: Repository, detail: dict[str, Any]
) -> RepositoryEvent | None:
    name = detail.get("event")
    merged = detail.get("isMerged") == "True"
    if name in _PULL_REQUEST_EVENTS:
        event = _PULL_REQUEST_EVENTS[name]
    elif name == "pullRequestMergeStatusUpdated" and merged:
        event = PULL_REQUEST_MERGED
    elif name == "pullRequestStatusChanged" and detail.get("pullRequestStatus") == "Closed":
        if merged:
            return None  # already reported as merged
        event = PULL_REQUEST_CLOSED
    else:
        return None
    source_commit = detail.get("sourceCommit")
    if not source_commit:
        return None
    merge_commit = None
    if event == PULL_REQUEST_MERGED:
        merge_commit = codecommit.merge_commit_of(
            session, repository.account_id, repository.region, str(detail.get("pullRequestId"))
        )
    base = _merge_base(git, source_commit, detail.get("destinationCommit"))
    return RepositoryEvent(
        event=event,
        repository_name=repository.name,
        head_ref=detail.get("sourceReference") or "",
        base_ref=detail.get("destinationReference"),
        commit=source_commit,
        trigger=f"pr/{detail.get('pullRequestId')}",
        actor=detail.get("callerUserArn"),
        merge_commit=merge_commit,
        commit_message=_message_of(git, source_commit),
        changed_paths=_paths_between(git, base, source_commit),
    )


def _merge_base(git: pygit2.Repository, one: str, other: str | None) -> str | None:
    if not other:
        return None
    try:
        found = git.merge_base(one, other)
    except (KeyError, ValueError, pygit2.GitError):
        return None
    return str(found) if found is not None else None


# -- firing ---------------------------------------------------------------------------
def _webhooks_of(
    session: Session, repository: Repository
) -> list[tuple[BuildWebhook, BuildProject]]:
    rows = session.execute(
        select(BuildWebhook, BuildProject)
        .join(BuildProject, BuildProject.id == BuildWebhook.project_id)
        .where(
            BuildWebhook.account_id == repository.account_id,
            BuildWebhook.region == repository.region,
        )
        .order_by(BuildProject.name)
    ).all()
    watching = []
    for webhook, project in rows:
        source = projects.stored_project(project).get("source")
        if (
            source
            and source.get("type") == "CODECOMMIT"
            and (repository_name_from_url(source.get("location") or "") == repository.name)
        ):
            watching.append((webhook, project))
    return watching


def _context(repository: Repository, actor: str | None) -> RequestContext:
    return RequestContext(
        account_id=repository.account_id,
        region=repository.region,
        principal_arn=actor or f"arn:aws:iam::{repository.account_id}:root",
        access_key_id=None,
        service="codebuild",
        operation="Webhook",
    )


def fire(
    session: Session,
    repository: Repository,
    events: list[RepositoryEvent],
    hooks: list[tuple[BuildWebhook, BuildProject]],
) -> None:
    """Start a build (or batch) of each project whose webhook an event matches."""
    started = False
    for event in events:
        for webhook, project in hooks:
            if not matches(webhook.settings, event):
                continue
            ctx = _context(repository, event.actor)
            variables = event.environment()
            try:
                # A project that cannot build (say, an invalid override) must not undo
                # the repository change or keep other projects from building.
                with session.begin_nested():
                    if webhook.settings.get("buildType") == "BUILD_BATCH":
                        batch_coordinator.start_batch(
                            session,
                            ctx,
                            {
                                "projectName": project.name,
                                "sourceVersion": event.commit,
                                "environmentVariablesOverride": variables,
                            },
                            initiator=INITIATOR,
                        )
                    else:
                        builds.queue_build(
                            session,
                            ctx,
                            {
                                "projectName": project.name,
                                "sourceVersion": event.commit,
                                "environmentVariablesOverride": variables,
                            },
                            initiator=INITIATOR,
                        )
                started = True
            except Exception:
                logger.exception(
                    "webhook of project %s could not start a build for %s %s",
                    project.name,
                    event.event,
                    event.head_ref,
                )
    if started:
        # A rolled-back savepoint (another project's failed start) also clears the
        # pending build doorbell; ring it for the builds that did start.
        scheduler_doorbell.ring_after_commit(session)


def on_ref_changes(
    session: Session,
    ctx: RequestContext | None,
    repository: Repository,
    changes: list[RefChange],
) -> None:
    """gitstore listener: pushes, API commits and merges."""
    hooks = _webhooks_of(session, repository)
    if not hooks:
        return
    git = codecommit.open_git(repository)
    fire(
        session,
        repository,
        push_events(git, repository, changes, ctx.principal_arn if ctx else None),
        hooks,
    )


def on_pull_request_change(
    session: Session, repository: Repository, detail: dict[str, Any]
) -> None:
    """pull_requests listener: created, source updated, merged, closed."""
    hooks = _webhooks_of(session, repository)
    if not hooks:
        return
    git = codecommit.open_git(repository)
    event = pull_request_event(session, git, repository, detail)
    if event is not None:
        fire(session, repository, [event], hooks)
