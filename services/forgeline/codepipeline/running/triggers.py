"""Source triggers: pushes and pull requests of a CodeCommit repository start the pipelines
that watch it, inside the transaction that records the change.

- A CodeCommit source with no V2 trigger: a push to its BranchName starts the pipeline.
  On AWS the console makes an EventBridge rule for this (or the pipeline polls when
  PollForSourceChanges is true); here the repository's own ref changes stand for both,
  so a push starts the pipeline at once either way (trigger CloudWatchEvent).
- A CodeCommit source with a V2 trigger (AWS takes those on connection sources only;
  this server honours them on CodeCommit ones): its push filters (branches, tags, file
  paths) and pull request filters (events, destination branches, file paths) decide
  (trigger_filters.py), and the execution builds the commit that was pushed or the pull
  request's source commit (trigger WebhookV2).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codecommit import interface as codecommit
from forgeline.codepipeline import trigger_filters
from forgeline.codepipeline.running.starting import start_execution
from forgeline.codepipeline.tables.pipelines import Pipeline
from forgeline.core.context import RequestContext

TAG_PREFIX = "refs/tags/"
# CodeCommit's pull request event names, as the trigger filters name them.
_PULL_REQUEST_EVENTS = {
    "pullRequestCreated": "OPEN",
    "pullRequestSourceBranchUpdated": "UPDATED",
}


def on_ref_changes(
    session: Session,
    ctx: RequestContext | None,
    repository: codecommit.Repository,
    changes: list[codecommit.RefChange],
) -> None:
    pushed = [change for change in changes if change.new != codecommit.ZERO_OID]
    if not pushed:
        return
    git = codecommit.open_git(repository)
    for pipeline in _pipelines(session, repository):
        for action, trigger in _sources(pipeline.declaration, repository.name):
            if trigger is None:
                if _default_push(action, pushed):
                    _start(session, pipeline, repository, "CloudWatchEvent", None, None)
                    break
                continue
            matched = _filtered_push(git, trigger, pushed)
            if matched is not None:
                _start(session, pipeline, repository, "WebhookV2", action["name"], matched)
                break


def on_pull_request_change(
    session: Session, repository: codecommit.Repository, detail: dict[str, Any]
) -> None:
    event = _pull_request_event(detail)
    commit = detail.get("sourceCommit")
    if event is None or not commit:
        return
    destination = str(detail.get("destinationReference") or "").removeprefix(
        codecommit.BRANCH_PREFIX
    )
    git = codecommit.open_git(repository)
    base = detail.get("destinationCommit")

    def paths() -> list[str]:
        return codecommit.changed_paths(git, base, commit)

    for pipeline in _pipelines(session, repository):
        for action, trigger in _sources(pipeline.declaration, repository.name):
            if trigger is not None and trigger_filters.pull_request_matches(
                trigger, event, destination, paths
            ):
                _start(session, pipeline, repository, "WebhookV2", action["name"], commit)
                break


def _pull_request_event(detail: dict[str, Any]) -> str | None:
    name = detail.get("event")
    if name in _PULL_REQUEST_EVENTS:
        return _PULL_REQUEST_EVENTS[name]
    if name == "pullRequestStatusChanged" and detail.get("pullRequestStatus") == "Closed":
        return "CLOSED"
    if name == "pullRequestMergeStatusUpdated" and detail.get("isMerged") == "True":
        return "CLOSED"
    return None


def _default_push(action: dict[str, Any], pushed: list[codecommit.RefChange]) -> bool:
    branch = (action.get("configuration") or {}).get("BranchName", "")
    return any(change.ref == codecommit.BRANCH_PREFIX + branch for change in pushed)


def _filtered_push(
    git: Any, trigger: dict[str, Any], pushed: list[codecommit.RefChange]
) -> str | None:
    """The commit of the first push the trigger's filters take, if any."""
    for change in pushed:
        if change.ref.startswith(codecommit.BRANCH_PREFIX):
            kind, name = trigger_filters.BRANCH, change.ref[len(codecommit.BRANCH_PREFIX) :]
        elif change.ref.startswith(TAG_PREFIX):
            kind, name = trigger_filters.TAG, change.ref[len(TAG_PREFIX) :]
        else:
            continue
        old = None if change.old == codecommit.ZERO_OID else change.old

        def paths(old: str | None = old, new: str = change.new) -> list[str]:
            return codecommit.changed_paths(git, old, new)

        if trigger_filters.push_matches(trigger, kind, name, paths):
            return _commit_of(git, change.new)
    return None


def _commit_of(git: Any, target: str) -> str:
    """The commit a ref points to (an annotated tag points at a tag object)."""
    try:
        return str(git[target].peel(codecommit.Commit).id)
    except (KeyError, ValueError):
        return target


def _start(
    session: Session,
    pipeline: Pipeline,
    repository: codecommit.Repository,
    trigger_type: str,
    source_action: str | None,
    commit: str | None,
) -> None:
    if trigger_type == "CloudWatchEvent":
        detail = (
            f"arn:aws:events:{pipeline.region}:{pipeline.account_id}:rule/"
            f"codepipeline-{repository.name}"
        )
    else:
        detail = f"arn:aws:codecommit:{pipeline.region}:{pipeline.account_id}:{repository.name}"
    overrides = (
        {source_action: {"revisionType": "COMMIT_ID", "revisionValue": commit}}
        if source_action and commit
        else {}
    )
    start_execution(
        session,
        pipeline,
        {"triggerType": trigger_type, "triggerDetail": detail},
        source_revisions=overrides,
    )


def _pipelines(session: Session, repository: codecommit.Repository) -> list[Pipeline]:
    return list(
        session.scalars(
            select(Pipeline).where(
                Pipeline.account_id == repository.account_id,
                Pipeline.region == repository.region,
            )
        )
    )


def _sources(
    declaration: dict[str, Any], repository: str
) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """The CodeCommit source actions watching `repository`, each with its V2 trigger's git
    configuration (None without one)."""
    triggers = {
        trigger.get("gitConfiguration", {}).get("sourceActionName"): trigger.get("gitConfiguration")
        for trigger in declaration.get("triggers") or []
    }
    for stage in declaration.get("stages", [])[:1]:
        for action in stage.get("actions", []):
            kind = action.get("actionTypeId", {})
            configuration = action.get("configuration") or {}
            if (
                kind.get("category") == "Source"
                and kind.get("provider") == "CodeCommit"
                and configuration.get("RepositoryName") == repository
            ):
                yield action, triggers.get(action["name"])
