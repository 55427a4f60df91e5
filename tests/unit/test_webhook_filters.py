"""Webhook filter groups: validation and matching against repository events."""

from __future__ import annotations

import pytest

from forgeline.codebuild.generated import errors
from forgeline.codebuild.webhook_filters import (
    RepositoryEvent,
    check_filter_groups,
    check_settings,
    matches,
)


def push(ref: str = "refs/heads/main", **extra) -> RepositoryEvent:
    fields = {
        "event": "PUSH",
        "repository_name": "app",
        "head_ref": ref,
        "commit": "c" * 40,
        "trigger": "branch/main",
        "actor": "arn:aws:iam::111111111111:user/alice",
        "commit_message": lambda: "Fix the parser [ci]",
        "changed_paths": lambda: ["src/parser.py", "README.md"],
    }
    fields.update(extra)
    return RepositoryEvent(**fields)


def event_filter(pattern: str) -> dict:
    return {"type": "EVENT", "pattern": pattern}


def test_groups_are_or_and_filters_are_and():
    settings = {
        "filterGroups": [
            [event_filter("PUSH"), {"type": "HEAD_REF", "pattern": "^refs/heads/release/"}],
            [
                event_filter("PUSH, PULL_REQUEST_CREATED"),
                {"type": "FILE_PATH", "pattern": r"\.py$"},
            ],
        ]
    }
    assert matches(settings, push())  # second group: a Python file changed
    assert not matches(settings, push(changed_paths=lambda: ["docs/index.md"]))
    assert matches(settings, push("refs/heads/release/1.0", changed_paths=lambda: []))


def test_exclude_matched_pattern_inverts_a_filter():
    settings = {
        "filterGroups": [
            [
                event_filter("PUSH"),
                {"type": "COMMIT_MESSAGE", "pattern": r"\[skip\]", "excludeMatchedPattern": True},
                {"type": "ACTOR_ACCOUNT_ID", "pattern": "user/bot$", "excludeMatchedPattern": True},
            ]
        ]
    }
    assert matches(settings, push())
    assert not matches(settings, push(commit_message=lambda: "docs [skip]"))
    assert not matches(settings, push(actor="arn:aws:iam::111111111111:user/bot"))


def test_base_ref_needs_a_pull_request():
    settings = {"filterGroups": [[event_filter("PUSH"), {"type": "BASE_REF", "pattern": "main"}]]}
    assert not matches(settings, push())
    pull_request = push(event="PULL_REQUEST_CREATED", base_ref="refs/heads/main")
    assert not matches(settings, pull_request)  # the EVENT filter says PUSH only
    settings["filterGroups"][0][0] = event_filter("PULL_REQUEST_CREATED")
    assert matches(settings, pull_request)


def test_no_groups_means_pushes_and_open_pull_requests_narrowed_by_branch_filter():
    assert matches({}, push())
    assert matches({}, push(event="PULL_REQUEST_UPDATED"))
    assert not matches({}, push(event="PULL_REQUEST_CLOSED"))
    assert not matches({}, push(event="PULL_REQUEST_MERGED"))
    assert matches({"branchFilter": "^ma"}, push())
    assert not matches({"branchFilter": "^dev"}, push())
    assert not matches({"branchFilter": ".*"}, push("refs/tags/v1"))


def test_webhook_variables():
    variables = {v["name"]: v["value"] for v in push(prev_commit="p" * 40).environment()}
    assert variables == {
        "CODEBUILD_WEBHOOK_EVENT": "PUSH",
        "CODEBUILD_WEBHOOK_HEAD_REF": "refs/heads/main",
        "CODEBUILD_WEBHOOK_TRIGGER": "branch/main",
        "CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID": "arn:aws:iam::111111111111:user/alice",
        "CODEBUILD_WEBHOOK_PREV_COMMIT": "p" * 40,
    }


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ([[{"type": "HEAD_REF", "pattern": "x"}]], "first filter group must contain"),
        ([[]], "is empty"),
        ([[event_filter("PUSH, RELEASED")]], "RELEASED is not supported"),
        ([[event_filter(" , ")]], "must name an event"),
        ([[event_filter("PUSH"), {"type": "TAG_NAME", "pattern": "v1"}]], "TAG_NAME does not"),
        ([[event_filter("PUSH"), {"type": "FILE_PATH", "pattern": "(["}]], "regular expression"),
    ],
)
def test_invalid_filter_groups(groups, message):
    with pytest.raises(errors.InvalidInputException, match=message):
        check_filter_groups(groups)


def test_later_groups_may_leave_out_the_event_filter():
    groups = [[event_filter("PUSH")], [{"type": "HEAD_REF", "pattern": "^refs/tags/"}]]
    assert check_filter_groups(groups) == groups


def test_settings_updates_keep_what_is_not_given():
    created = check_settings({"branchFilter": "main", "buildType": "BUILD_BATCH"}, None)
    assert created == {"buildType": "BUILD_BATCH", "filterGroups": [], "branchFilter": "main"}
    updated = check_settings({"filterGroups": [[event_filter("PUSH")]]}, created)
    assert updated["branchFilter"] == "main" and updated["buildType"] == "BUILD_BATCH"
    assert check_settings({"branchFilter": ""}, updated).get("branchFilter") is None
    with pytest.raises(errors.InvalidInputException, match="RUNNER_BUILDKITE_BUILD"):
        check_settings({"buildType": "RUNNER_BUILDKITE_BUILD"}, None)
    with pytest.raises(errors.InvalidInputException, match="GitHub"):
        check_settings({"manualCreation": True}, None)
