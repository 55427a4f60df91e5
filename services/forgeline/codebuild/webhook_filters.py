"""Webhook settings and filter groups: what CreateWebhook/UpdateWebhook accept, and which
repository events fire a webhook. Pure: no git, no database.

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
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from forgeline.codebuild.generated import errors, shapes

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
MAX_FILTER_GROUPS = 100  # generous; AWS does not document a limit
# Git's namespace of branches (an event's head_ref is a full ref name).
BRANCH_PREFIX = "refs/heads/"


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


def _check_filter(webhook_filter: shapes.WebhookFilter) -> shapes.WebhookFilter:
    """One filter as CreateWebhook/UpdateWebhook accept it; returns it to store."""
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
    stored: shapes.WebhookFilter = {"type": kind, "pattern": pattern}
    if webhook_filter.get("excludeMatchedPattern") is not None:
        stored["excludeMatchedPattern"] = bool(webhook_filter["excludeMatchedPattern"])
    return stored


def check_filter_groups(
    groups: Sequence[Sequence[shapes.WebhookFilter]],
) -> list[list[shapes.WebhookFilter]]:
    """Validate filter groups as CreateWebhook/UpdateWebhook do; returns them to store."""
    if len(groups) > MAX_FILTER_GROUPS:
        raise errors.InvalidInputException(
            f"A webhook can have at most {MAX_FILTER_GROUPS} filter groups."
        )
    checked: list[list[shapes.WebhookFilter]] = []
    for number, group in enumerate(groups, start=1):
        if not group:
            raise errors.InvalidInputException(
                f"Filter group {number} is empty: a filter group needs at least one filter."
            )
        if number == 1 and not any(f.get("type") == "EVENT" for f in group):
            raise errors.InvalidInputException(
                "The first filter group must contain a filter of type EVENT."
            )
        checked.append([_check_filter(webhook_filter) for webhook_filter in group])
    return checked


def check_settings(
    params: shapes.CreateWebhookInput | shapes.UpdateWebhookInput,
    current: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The webhook settings (the JSON kept with the webhook) after CreateWebhook or
    UpdateWebhook `params`."""
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
    # CreateWebhook's own members (UpdateWebhook has neither): read by name.
    create_only: Mapping[str, object] = params
    if create_only.get("manualCreation"):
        raise errors.InvalidInputException(
            "manualCreation applies to GitHub webhooks; a Forgeline repository's webhook is "
            "always managed by CodeBuild."
        )
    if create_only.get("scopeConfiguration"):
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
        if self.head_ref.startswith(BRANCH_PREFIX):
            return self.head_ref[len(BRANCH_PREFIX) :]
        return None

    def environment(self) -> list[shapes.EnvironmentVariable]:
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


# -- matching -------------------------------------------------------------------------
def _filter_matches(webhook_filter: shapes.WebhookFilter, event: RepositoryEvent) -> bool:
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


def matches(settings: Mapping[str, Any], event: RepositoryEvent) -> bool:
    """Does this event fire a webhook with these (stored) settings?"""
    groups = settings.get("filterGroups") or []
    if groups:
        return any(all(_filter_matches(f, event) for f in group) for group in groups)
    if event.event not in DEFAULT_EVENTS:
        return False
    branch_filter = settings.get("branchFilter")
    if branch_filter:
        return event.branch is not None and re.search(branch_filter, event.branch) is not None
    return True
