"""CodeBuild webhooks on Forgeline's own repositories.

AWS offers webhooks for GitHub, Bitbucket and GitLab sources; Forgeline offers the same
API for projects whose source is one of its CodeCommit repositories. No HTTP delivery is
involved: repository events reach the build service in the transaction that records
them, through CodeCommit's `ref_changes` hook (pushes, API commits, merges) and its
`pull_request_change` hook (pull request state changes), which codebuild/manifest.py
subscribes to, and every matching webhook starts its project's build (or batch) right
there.

Matching follows AWS: `filterGroups` is a list of groups, a group matches when all of
its filters do, the webhook fires when any group matches. With no groups, every push
and every pull request created, updated or reopened fires it, narrowed by the legacy
`branchFilter` regular expression on the branch name when one is set. Patterns are
regular expressions searched anywhere in the value (anchor them with ^ and $).

ACTOR_ACCOUNT_ID: the actor of a Forgeline repository event is an IAM principal, so the
filter and CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID use the caller's principal ARN.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import pygit2
from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codebuild import batch_coordinator, builds, scheduler_doorbell
from forgeline.codebuild.generated import errors
from forgeline.codebuild.sources import repository_name_from_url
from forgeline.codebuild.tables.batches import BuildWebhook
from forgeline.codebuild.tables.projects import BuildProject
from forgeline.codecommit import interface as codecommit
from forgeline.codecommit.interface import ZERO_OID, RefChange, Repository
from forgeline.core.auth.crypto import encrypt
from forgeline.core.context import RequestContext
from forgeline.core.lifecycle import server_key
from forgeline.core.settings import get_settings

logger = logging.getLogger(__name__)

INITIATOR = "codecommit-webhook"

PUSH = "PUSH"
PULL_REQUEST_CREATED = "PULL_REQUEST_CREATED"
PULL_REQUEST_UPDATED = "PULL_REQUEST_UPDATED"
PULL_REQUEST_MERGED = "PULL_REQUEST_MERGED"
PULL_REQUEST_REOPENED = "PULL_REQUEST_REOPENED"
PULL_REQUEST_CLOSED = "PULL_REQUEST_CLOSED"
SUPPORTED_EVENTS = (
    PUSH,
    PULL_REQUEST_CREATED,
    PULL_REQUEST_UPDATED,
    PULL_REQUEST_MERGED,
    PULL_REQUEST_REOPENED,
    PULL_REQUEST_CLOSED,
)
# What a webhook without filter groups reacts to (AWS's default for repository hooks).
DEFAULT_EVENTS = frozenset(
    {PUSH, PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED}
)
SUPPORTED_FILTER_TYPES = (
    "EVENT",
    "HEAD_REF",
    "BASE_REF",
    "FILE_PATH",
    "COMMIT_MESSAGE",
    "ACTOR_ACCOUNT_ID",
    "REPOSITORY_NAME",
)
OAUTH_SOURCE_TYPES = ("GITHUB", "GITHUB_ENTERPRISE", "BITBUCKET", "GITLAB", "GITLAB_SELF_MANAGED")
MAX_FILTER_GROUPS = 100  # generous; AWS does not document a limit

# Pull request event detail `event` -> webhook event (CodeCommit cannot reopen one).
_PULL_REQUEST_EVENTS = {
    "pullRequestCreated": PULL_REQUEST_CREATED,
    "pullRequestSourceBranchUpdated": PULL_REQUEST_UPDATED,
}


# -- validation -----------------------------------------------------------------------
def _compile(pattern: str, what: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise errors.InvalidInputException(
            f"{what} {pattern!r} is not a valid regular expression: {exc}."
        ) from None


def _event_names(pattern: str) -> list[str]:
    return [name.strip() for name in pattern.split(",") if name.strip()]


def check_filter_groups(groups: Sequence[Sequence[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Validate filter groups as CreateWebhook/UpdateWebhook do; returns them to store."""
    if len(groups) > MAX_FILTER_GROUPS:
        raise errors.InvalidInputException(
            f"A webhook can have at most {MAX_FILTER_GROUPS} filter groups."
        )
    checked: list[list[dict[str, Any]]] = []
    for number, group in enumerate(groups, start=1):
        if not group:
            raise errors.InvalidInputException(
                f"Filter group {number} is empty: a filter group needs at least one filter."
            )
        if number == 1 and not any(f.get("type") == "EVENT" for f in group):
            raise errors.InvalidInputException(
                "The first filter group must contain a filter of type EVENT."
            )
        stored_group = []
        for webhook_filter in group:
            kind = webhook_filter["type"]
            pattern = webhook_filter["pattern"]
            if kind not in SUPPORTED_FILTER_TYPES:
                raise errors.InvalidInputException(
                    f"Filter type {kind} does not apply to CodeCommit repositories; use one of "
                    f"{', '.join(SUPPORTED_FILTER_TYPES)}."
                )
            if kind == "EVENT":
                names = _event_names(pattern)
                if not names:
                    raise errors.InvalidInputException("An EVENT filter must name an event.")
                for name in names:
                    if name not in SUPPORTED_EVENTS:
                        raise errors.InvalidInputException(
                            f"Event {name} is not supported for CodeCommit repositories; use "
                            f"{', '.join(SUPPORTED_EVENTS)}."
                        )
            else:
                _compile(pattern, f"The {kind} pattern")
            stored: dict[str, Any] = {"type": kind, "pattern": pattern}
            if webhook_filter.get("excludeMatchedPattern") is not None:
                stored["excludeMatchedPattern"] = bool(webhook_filter["excludeMatchedPattern"])
            stored_group.append(stored)
        checked.append(stored_group)
    return checked


def check_settings(params: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The webhook settings after CreateWebhook/UpdateWebhook `params`."""
    settings = dict(current or {"buildType": "BUILD", "filterGroups": []})
    if "branchFilter" in params:
        if params["branchFilter"]:
            _compile(params["branchFilter"], "The branch filter")
            settings["branchFilter"] = params["branchFilter"]
        else:
            settings.pop("branchFilter", None)
    if "filterGroups" in params:
        settings["filterGroups"] = check_filter_groups(params["filterGroups"] or [])
    if "buildType" in params:
        if params["buildType"] not in ("BUILD", "BUILD_BATCH"):
            raise errors.InvalidInputException(
                f"Build type {params['buildType']} is not supported; use BUILD or BUILD_BATCH."
            )
        settings["buildType"] = params["buildType"]
    if params.get("manualCreation"):
        raise errors.InvalidInputException(
            "manualCreation applies to GitHub webhooks; a Forgeline repository's webhook is "
            "always managed by CodeBuild."
        )
    if params.get("scopeConfiguration"):
        raise errors.InvalidInputException(
            "scopeConfiguration (organization, global or group webhooks) applies to GitHub "
            "and GitLab sources only."
        )
    policy = params.get("pullRequestBuildPolicy")
    if policy is not None:
        if policy.get("requiresCommentApproval") != "DISABLED":
            raise errors.InvalidInputException(
                "Comment approval for pull request builds applies to GitHub and GitLab "
                "sources only; use requiresCommentApproval DISABLED."
            )
        settings["pullRequestBuildPolicy"] = dict(policy)
    return settings


def repository_of_project(session: Session, project: BuildProject) -> Repository:
    """The Forgeline repository a project builds, or the error CreateWebhook answers."""
    source = project.document.get("source") or {}
    kind = source.get("type")
    if kind in OAUTH_SOURCE_TYPES:
        raise errors.OAuthProviderException(
            f"Forgeline cannot connect to {kind}: webhooks work for projects whose source is "
            "a CodeCommit repository on this server."
        )
    if kind != "CODECOMMIT":
        raise errors.InvalidInputException(
            f"Webhooks are not supported for source type {kind}; the project's source must "
            "be a CodeCommit repository."
        )
    name = repository_name_from_url(source.get("location") or "")
    repository = None
    if name is not None:
        repository = codecommit.find_repository(session, project.account_id, project.region, name)
    if repository is None:
        raise errors.InvalidInputException(
            f"The project's source location {source.get('location')!r} does not name a "
            "CodeCommit repository of this account and region."
        )
    return repository


def new_secret() -> tuple[str, str]:
    """(secret, secret encrypted with the server key)."""
    secret = secrets.token_hex(20)
    return secret, encrypt(server_key(get_settings()), secret)


def webhook_output(
    webhook: BuildWebhook, project: BuildProject, *, secret: str | None = None
) -> dict[str, Any]:
    """botocore's Webhook shape. The secret is shown only when made (create, rotate).

    `url` is the clone URL of the repository the webhook watches; `payloadUrl` is the
    project's ARN, where events are delivered (inside Forgeline, not over HTTP).
    """
    settings = webhook.settings
    output: dict[str, Any] = {
        "url": (project.document.get("source") or {}).get("location") or project.arn,
        "payloadUrl": webhook.payload_url,
        "filterGroups": settings.get("filterGroups") or [],
        "buildType": settings.get("buildType", "BUILD"),
        "manualCreation": False,
        "lastModifiedSecret": webhook.secret_modified_at,
        "status": "ACTIVE",
    }
    if settings.get("branchFilter"):
        output["branchFilter"] = settings["branchFilter"]
    if settings.get("pullRequestBuildPolicy"):
        output["pullRequestBuildPolicy"] = settings["pullRequestBuildPolicy"]
    if secret is not None:
        output["secret"] = secret
    return output


def mirror_into_project(project: BuildProject, shown: dict[str, Any] | None) -> None:
    """Show the webhook (never its secret) in the project, as BatchGetProjects does."""
    document = dict(project.document)
    if shown is None:
        document.pop("webhook", None)
    else:
        public = {k: v for k, v in shown.items() if k != "secret"}
        # The document is JSON: keep the time as the epoch seconds the wire carries.
        public["lastModifiedSecret"] = round(public["lastModifiedSecret"].timestamp(), 3)
        document["webhook"] = public
    project.document = document


# -- events ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RepositoryEvent:
    """One repository event, as webhook filters and builds see it."""

    event: str
    repository_name: str
    head_ref: str  # refs/heads/<branch> or refs/tags/<tag>
    commit: str  # what the build builds
    trigger: str  # branch/<name>, tag/<name> or pr/<id>
    actor: str | None = None
    base_ref: str | None = None
    prev_commit: str | None = None
    merge_commit: str | None = None
    # Read only when a filter needs them (they cost a look into git).
    commit_message: Callable[[], str] = lambda: ""
    changed_paths: Callable[[], Sequence[str]] = lambda: ()

    @property
    def branch(self) -> str | None:
        if self.head_ref.startswith(codecommit.BRANCH_PREFIX):
            return self.head_ref[len(codecommit.BRANCH_PREFIX) :]
        return None

    def environment(self) -> list[dict[str, str]]:
        """The CODEBUILD_WEBHOOK_* variables AWS sets in webhook builds."""
        values = {
            "CODEBUILD_WEBHOOK_EVENT": self.event,
            "CODEBUILD_WEBHOOK_HEAD_REF": self.head_ref,
            "CODEBUILD_WEBHOOK_BASE_REF": self.base_ref,
            "CODEBUILD_WEBHOOK_TRIGGER": self.trigger,
            "CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID": self.actor,
            "CODEBUILD_WEBHOOK_PREV_COMMIT": self.prev_commit,
            "CODEBUILD_WEBHOOK_MERGE_COMMIT": self.merge_commit,
        }
        return [
            {"name": name, "value": value, "type": "PLAINTEXT"}
            for name, value in values.items()
            if value
        ]


def _filter_matches(webhook_filter: dict[str, Any], event: RepositoryEvent) -> bool:
    kind = webhook_filter["type"]
    pattern = webhook_filter["pattern"]
    hit: bool
    if kind == "EVENT":
        hit = event.event in _event_names(pattern)
    elif kind == "FILE_PATH":
        regex = re.compile(pattern)
        hit = any(regex.search(path) for path in event.changed_paths())
    else:
        value = {
            "HEAD_REF": event.head_ref,
            "BASE_REF": event.base_ref,
            "COMMIT_MESSAGE": event.commit_message() if kind == "COMMIT_MESSAGE" else None,
            "ACTOR_ACCOUNT_ID": event.actor,
            "REPOSITORY_NAME": event.repository_name,
        }.get(kind)
        hit = value is not None and re.search(pattern, value) is not None
    return hit != bool(webhook_filter.get("excludeMatchedPattern"))


def matches(settings: dict[str, Any], event: RepositoryEvent) -> bool:
    """Does this event fire a webhook with these settings?"""
    groups = settings.get("filterGroups") or []
    if groups:
        return any(all(_filter_matches(f, event) for f in group) for group in groups)
    if event.event not in DEFAULT_EVENTS:
        return False
    branch_filter = settings.get("branchFilter")
    if branch_filter:
        return event.branch is not None and re.search(branch_filter, event.branch) is not None
    return True


# -- from repository changes to events ------------------------------------------------
def _message_of(git: pygit2.Repository, commit: str) -> Callable[[], str]:
    def read() -> str:
        try:
            return str(git[commit].peel(pygit2.Commit).message)
        except (KeyError, ValueError):
            return ""

    return read


def _paths_between(git: pygit2.Repository, old: str | None, new: str) -> Callable[[], list[str]]:
    """Paths that differ between `old` (None: the new commit's first parent) and `new`."""

    def read() -> list[str]:
        try:
            head = git[new].peel(pygit2.Commit)
            base: pygit2.Commit | None
            if old:
                base = git[old].peel(pygit2.Commit)
            else:
                base = head.parents[0] if head.parents else None
            diff = git.diff(base, head) if base is not None else head.tree.diff_to_tree(swap=True)
        except (KeyError, ValueError, pygit2.GitError):
            return []
        paths: list[str] = []
        for delta in diff.deltas:
            for path in (delta.old_file.path, delta.new_file.path):
                if path and path not in paths:
                    paths.append(path)
        return paths

    return read


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
        source = project.document.get("source") or {}
        if source.get("type") == "CODECOMMIT" and (
            repository_name_from_url(source.get("location") or "") == repository.name
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
            params = {
                "projectName": project.name,
                "sourceVersion": event.commit,
                "environmentVariablesOverride": event.environment(),
            }
            ctx = _context(repository, event.actor)
            try:
                # A project that cannot build (say, an invalid override) must not undo
                # the repository change or keep other projects from building.
                with session.begin_nested():
                    if webhook.settings.get("buildType") == "BUILD_BATCH":
                        batch_coordinator.start_batch(session, ctx, params, initiator=INITIATOR)
                    else:
                        builds.queue_build(session, ctx, params, initiator=INITIATOR)
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
