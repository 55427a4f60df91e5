"""CodeCommit pull requests over HTTP: review, approval rules and states, templates, merges.

Branches are built with pygit2 straight into the repository directory and moved with
`git update-ref`, so these tests depend only on the pull request code; the source-branch
listener is driven by PutFile, which reports its ref change as every API write does.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest
from botocore.exceptions import ClientError

from forgeline.core.auth import sigv4
from forgeline.core.events import EventReader

RULE_VERSION = "2018-11-08"


# -- helpers -------------------------------------------------------------------------------
@contextlib.contextmanager
def raises(code: str) -> Iterator[None]:
    with pytest.raises(ClientError) as caught:
        yield
    assert caught.value.response["Error"]["Code"] == code, caught.value.response["Error"]


def rule(needed: int = 1, pool: list[str] | None = None, **extra: Any) -> str:
    statement: dict[str, Any] = {"Type": "Approvers", "NumberOfApprovalsNeeded": needed}
    if pool is not None:
        statement["ApprovalPoolMembers"] = pool
    return json.dumps({"Version": RULE_VERSION, "Statements": [statement], **extra})


class GitFixture:
    """Commits written with pygit2 into the server's bare repository; refs moved by git."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def head(self, branch: str) -> str | None:
        ref = pygit2.Repository(str(self.path)).references.get(f"refs/heads/{branch}")
        return str(ref.target) if ref is not None else None

    def commit(
        self, branch: str, files: dict[str, str], message: str, start: str | None = None
    ) -> str:
        git = pygit2.Repository(str(self.path))
        old = self.head(branch)
        parent_id = old or (self.head(start) if start else None)
        parent = git[parent_id] if parent_id else None
        builder = git.TreeBuilder(parent.tree) if parent is not None else git.TreeBuilder()
        for name, text in files.items():
            builder.insert(name, git.create_blob(text.encode()), pygit2.GIT_FILEMODE_BLOB)
        signature = pygit2.Signature("Fixture", "fixture@example.com")
        oid = git.create_commit(
            None,
            signature,
            signature,
            message,
            builder.write(),
            [parent_id] if parent_id else [],
        )
        subprocess.run(
            ["git", "-C", str(self.path), "update-ref", f"refs/heads/{branch}", str(oid)]
            + ([old] if old else []),
            check=True,
            capture_output=True,
        )
        return str(oid)

    def parents(self, commit_id: str) -> list[str]:
        return [str(p) for p in pygit2.Repository(str(self.path))[commit_id].parent_ids]

    def files(self, commit_id: str) -> dict[str, str]:
        git = pygit2.Repository(str(self.path))
        tree = git[commit_id].peel(pygit2.Tree)
        return {entry.name: git[entry.id].data.decode() for entry in tree}


def events_for(forgeline: Any, detail_type: str, **match: Any) -> list[Any]:
    reader = EventReader(f"pull-requests-test-{uuid.uuid4().hex}", forgeline.database_url)
    found = []
    while batch := reader.read(limit=1000, source="aws.codecommit", detail_type=detail_type):
        found += [e for e in batch if all(e.detail.get(k) == v for k, v in match.items())]
    return found


def history(cc: Any, pull_request_id: str, **filters: Any) -> list[str]:
    found = cc.describe_pull_request_events(pullRequestId=pull_request_id, **filters)
    return [event["pullRequestEventType"] for event in found["pullRequestEvents"]]


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def account(cc: Any) -> str:
    name = f"pr-probe-{uuid.uuid4().hex[:8]}"
    account_id = cc.create_repository(repositoryName=name)["repositoryMetadata"]["accountId"]
    cc.delete_repository(repositoryName=name)
    return str(account_id)


@pytest.fixture(scope="module")
def admin_arn(account: str) -> str:
    return f"arn:aws:iam::{account}:user/admin"


@pytest.fixture(scope="module")
def reviewer(forgeline: Any, account: str) -> dict[str, Any]:
    made = forgeline.cli("keys", "create", "--account-id", account, "--user", "reviewer")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    client = forgeline.client(
        "codecommit", credentials=(key["accessKeyId"], key["secretAccessKey"])
    )
    return {"client": client, "arn": f"arn:aws:iam::{account}:user/reviewer"}


@pytest.fixture
def repo(make_repo: Callable[..., dict[str, Any]], forgeline: Any) -> dict[str, Any]:
    """A repository with `main` and a `feature` branch one commit ahead of it."""
    created = make_repo("pr")
    name, repository_id = created["repositoryName"], created["repositoryId"]
    git = GitFixture(forgeline.data_dir / "repositories" / f"{repository_id}.git")
    main = git.commit("main", {"README.md": "hello\n"}, "initial")
    feature = git.commit("feature", {"feature.txt": "new feature\n"}, "add feature", start="main")
    return {"name": name, "id": repository_id, "git": git, "main": main, "feature": feature}


def open_pull_request(
    cc: Any, repo: dict[str, Any], source: str = "feature", destination: str = "main", **extra: Any
) -> dict[str, Any]:
    target = {"repositoryName": repo["name"], "sourceReference": source}
    if destination:
        target["destinationReference"] = destination
    created = cc.create_pull_request(
        title=extra.pop("title", "Add the feature"), targets=[target], **extra
    )
    return dict(created["pullRequest"])


# -- the acceptance path ---------------------------------------------------------------------
def test_pull_request_is_blocked_until_the_pool_approves_then_merges(
    cc: Any, repo: dict[str, Any], reviewer: dict[str, Any], admin_arn: str, forgeline: Any
) -> None:
    git: GitFixture = repo["git"]
    # main moves on after feature branched, so the merge needs a real three-way commit.
    main_tip = git.commit("main", {"CHANGELOG.md": "0.2\n"}, "changelog")
    pr = open_pull_request(cc, repo, description="Please review")
    pr_id, revision = pr["pullRequestId"], pr["revisionId"]
    assert pr["authorArn"] == admin_arn and pr["pullRequestStatus"] == "OPEN"
    [target] = pr["pullRequestTargets"]
    assert target["sourceCommit"] == repo["feature"]
    assert target["destinationCommit"] == main_tip
    assert target["mergeBase"] == repo["main"]
    assert target["mergeMetadata"] == {"isMerged": False}

    cc.create_pull_request_approval_rule(
        pullRequestId=pr_id,
        approvalRuleName="Reviewer must approve",
        approvalRuleContent=rule(1, [reviewer["arn"]]),
    )
    evaluation = cc.evaluate_pull_request_approval_rules(pullRequestId=pr_id, revisionId=revision)[
        "evaluation"
    ]
    assert evaluation["approved"] is False
    assert evaluation["approvalRulesNotSatisfied"] == ["Reviewer must approve"]

    # Blocked: the rule is not satisfied, and the branch does not move.
    with raises("PullRequestApprovalRulesNotSatisfiedException"):
        cc.merge_pull_request_by_three_way(pullRequestId=pr_id, repositoryName=repo["name"])
    assert git.head("main") == main_tip
    # The author cannot approve their own pull request.
    with raises("PullRequestCannotBeApprovedByAuthorException"):
        cc.update_pull_request_approval_state(
            pullRequestId=pr_id, revisionId=revision, approvalState="APPROVE"
        )

    reviewer["client"].update_pull_request_approval_state(
        pullRequestId=pr_id, revisionId=revision, approvalState="APPROVE"
    )
    states = cc.get_pull_request_approval_states(pullRequestId=pr_id, revisionId=revision)
    assert states["approvals"] == [{"userArn": reviewer["arn"], "approvalState": "APPROVE"}]
    evaluation = cc.evaluate_pull_request_approval_rules(pullRequestId=pr_id, revisionId=revision)[
        "evaluation"
    ]
    assert evaluation["approved"] is True
    assert evaluation["approvalRulesSatisfied"] == ["Reviewer must approve"]

    merged = cc.merge_pull_request_by_three_way(
        pullRequestId=pr_id,
        repositoryName=repo["name"],
        sourceCommitId=repo["feature"],
        commitMessage="Merge the feature",
    )["pullRequest"]
    metadata = merged["pullRequestTargets"][0]["mergeMetadata"]
    assert merged["pullRequestStatus"] == "CLOSED"
    assert metadata["isMerged"] is True
    assert metadata["mergedBy"] == admin_arn
    assert metadata["mergeOption"] == "THREE_WAY_MERGE"
    # The branch really moved, to a merge commit of both tips holding both changes.
    new_main = git.head("main")
    assert new_main == metadata["mergeCommitId"]
    assert git.parents(new_main) == [main_tip, repo["feature"]]
    assert set(git.files(new_main)) == {"README.md", "CHANGELOG.md", "feature.txt"}

    assert history(cc, pr_id) == [
        "PULL_REQUEST_CREATED",
        "PULL_REQUEST_APPROVAL_RULE_CREATED",
        "PULL_REQUEST_APPROVAL_STATE_CHANGED",
        "PULL_REQUEST_MERGE_STATE_CHANGED",
        "PULL_REQUEST_STATUS_CHANGED",
    ]
    published = events_for(forgeline, "CodeCommit Pull Request State Change", pullRequestId=pr_id)
    kinds = [event.detail["event"] for event in published]
    assert kinds == [
        "pullRequestCreated",
        "pullRequestApprovalRuleCreated",
        "pullRequestApprovalStateChanged",
        "pullRequestMergeStatusUpdated",
    ]
    approved, merged_event = published[2].detail, published[3].detail
    assert approved["callerUserArn"] == reviewer["arn"] and approved["approvalStatus"] == "APPROVE"
    assert merged_event["isMerged"] == "True" and merged_event["pullRequestStatus"] == "Closed"
    assert merged_event["repositoryNames"] == [repo["name"]]
    assert merged_event["destinationReference"] == "refs/heads/main"
    assert merged_event["mergeOption"] == "THREE_WAY_MERGE"
    # The branch move itself is a repository event too.
    moved = events_for(
        forgeline, "CodeCommit Repository State Change", repositoryId=repo["id"], commitId=new_main
    )
    assert [event.detail["referenceName"] for event in moved] == ["main"]


# -- creating ------------------------------------------------------------------------------------
def test_create_records_targets_and_refuses_bad_targets(cc: Any, repo: dict[str, Any]) -> None:
    name = repo["name"]
    pr = open_pull_request(cc, repo, source="refs/heads/feature", destination="refs/heads/main")
    target = pr["pullRequestTargets"][0]
    assert (target["sourceReference"], target["destinationReference"]) == (
        "refs/heads/feature",
        "refs/heads/main",
    )
    assert len(pr["revisionId"]) == 64 and pr["approvalRules"] == []
    cases = [
        ("TitleRequiredException", {"title": "   "}, {}),
        ("InvalidTitleException", {"title": "t" * 151}, {}),
        ("ReferenceDoesNotExistException", {}, {"sourceReference": "missing"}),
        ("SourceAndDestinationAreSameException", {}, {"destinationReference": "feature"}),
        (
            "SourceAndDestinationAreSameException",
            {},
            {"destinationReference": "refs/heads/feature"},
        ),
        ("InvalidReferenceNameException", {}, {"sourceReference": "bad..name"}),
        ("ReferenceTypeNotSupportedException", {}, {"sourceReference": "refs/tags/v1"}),
        ("ReferenceTypeNotSupportedException", {}, {"sourceReference": repo["main"]}),
        ("RepositoryDoesNotExistException", {}, {"repositoryName": f"{name}-missing"}),
        ("InvalidRepositoryNameException", {}, {"repositoryName": "bad name"}),
    ]
    for code, overrides, target_overrides in cases:
        target = {
            "repositoryName": name,
            "sourceReference": "feature",
            "destinationReference": "main",
        }
        target.update(target_overrides)
        params = {"title": "t", "targets": [target], **overrides}
        with raises(code):
            cc.create_pull_request(**params)
    with raises("TargetsRequiredException"):
        cc.create_pull_request(title="t", targets=[])
    two = [
        {"repositoryName": name, "sourceReference": "feature"},
        {"repositoryName": f"{name}-other", "sourceReference": "feature"},
    ]
    with raises("MultipleRepositoriesInPullRequestException"):
        cc.create_pull_request(title="t", targets=two)
    # The destination defaults to the default branch; this repository has none yet.
    with raises("ReferenceDoesNotExistException"):
        cc.create_pull_request(
            title="t", targets=[{"repositoryName": name, "sourceReference": "feature"}]
        )


def test_ids_increase_and_client_request_tokens_are_idempotent(
    cc: Any, repo: dict[str, Any]
) -> None:
    first = open_pull_request(cc, repo, clientRequestToken="token-one")
    again = open_pull_request(cc, repo, clientRequestToken="token-one")
    assert again["pullRequestId"] == first["pullRequestId"]
    assert again["clientRequestToken"] == "token-one"
    second = open_pull_request(cc, repo)
    assert int(second["pullRequestId"]) == int(first["pullRequestId"]) + 1
    with raises("IdempotencyParameterMismatchException"):
        open_pull_request(cc, repo, title="Another title", clientRequestToken="token-one")
    listed = cc.list_pull_requests(repositoryName=repo["name"])["pullRequestIds"]
    assert listed == [second["pullRequestId"], first["pullRequestId"]]


def test_get_list_and_their_errors(cc: Any, repo: dict[str, Any], reviewer: dict[str, Any]) -> None:
    mine = [open_pull_request(cc, repo, title=f"PR {i}")["pullRequestId"] for i in range(3)]
    theirs = open_pull_request(reviewer["client"], repo, title="Theirs")["pullRequestId"]
    cc.update_pull_request_status(pullRequestId=mine[0], pullRequestStatus="CLOSED")
    name = repo["name"]
    assert cc.get_pull_request(pullRequestId=mine[1])["pullRequest"]["title"] == "PR 1"

    everything = cc.list_pull_requests(repositoryName=name)["pullRequestIds"]
    assert everything == [theirs, *reversed(mine)]
    by_reviewer = cc.list_pull_requests(repositoryName=name, authorArn=reviewer["arn"])
    assert by_reviewer["pullRequestIds"] == [theirs]
    closed = cc.list_pull_requests(repositoryName=name, pullRequestStatus="CLOSED")
    assert closed["pullRequestIds"] == [mine[0]]

    pages, token = [], None
    while True:
        extra = {"nextToken": token} if token else {}
        page = cc.list_pull_requests(repositoryName=name, maxResults=1, **extra)
        pages += page["pullRequestIds"]
        token = page.get("nextToken")
        if not token:
            break
    assert pages == everything

    with raises("InvalidPullRequestIdException"):
        cc.get_pull_request(pullRequestId="not-a-number")
    with raises("PullRequestDoesNotExistException"):
        cc.get_pull_request(pullRequestId="987654321")
    with raises("InvalidAuthorArnException"):
        cc.list_pull_requests(repositoryName=name, authorArn="someone")
    with raises("InvalidContinuationTokenException"):
        cc.list_pull_requests(repositoryName=name, nextToken="forged")
    with raises("InvalidMaxResultsException"):
        cc.list_pull_requests(repositoryName=name, maxResults=0)
    with raises("RepositoryDoesNotExistException"):
        cc.list_pull_requests(repositoryName=f"{name}-missing")


def test_title_description_and_status_updates(
    cc: Any, repo: dict[str, Any], admin_arn: str
) -> None:
    pr_id = open_pull_request(cc, repo)["pullRequestId"]
    updated = cc.update_pull_request_title(pullRequestId=pr_id, title="Better title")
    assert updated["pullRequest"]["title"] == "Better title"
    updated = cc.update_pull_request_description(pullRequestId=pr_id, description="Details")
    assert updated["pullRequest"]["description"] == "Details"
    with raises("TitleRequiredException"):
        cc.update_pull_request_title(pullRequestId=pr_id, title=" ")
    # OPEN to OPEN is accepted and changes nothing.
    same = cc.update_pull_request_status(pullRequestId=pr_id, pullRequestStatus="OPEN")
    assert same["pullRequest"]["pullRequestStatus"] == "OPEN"
    closed = cc.update_pull_request_status(pullRequestId=pr_id, pullRequestStatus="CLOSED")
    assert closed["pullRequest"]["pullRequestStatus"] == "CLOSED"
    assert closed["pullRequest"]["pullRequestTargets"][0]["mergeMetadata"]["isMerged"] is False
    cc.update_pull_request_status(pullRequestId=pr_id, pullRequestStatus="CLOSED")
    with raises("InvalidPullRequestStatusUpdateException"):
        cc.update_pull_request_status(pullRequestId=pr_id, pullRequestStatus="OPEN")
    with raises("PullRequestAlreadyClosedException"):
        cc.update_pull_request_title(pullRequestId=pr_id, title="Too late")
    with raises("PullRequestAlreadyClosedException"):
        cc.update_pull_request_description(pullRequestId=pr_id, description="Too late")
    with raises("InvalidPullRequestStatusException"):
        cc.update_pull_request_status(pullRequestId=pr_id, pullRequestStatus="MERGED")

    events = cc.describe_pull_request_events(pullRequestId=pr_id)["pullRequestEvents"]
    assert [e["pullRequestEventType"] for e in events] == [
        "PULL_REQUEST_CREATED",
        "PULL_REQUEST_STATUS_CHANGED",
    ]
    created, status = events
    assert created["actorArn"] == admin_arn
    assert created["pullRequestCreatedEventMetadata"] == {
        "repositoryName": repo["name"],
        "sourceCommitId": repo["feature"],
        "destinationCommitId": repo["main"],
        "mergeBase": repo["main"],
    }
    assert status["pullRequestStatusChangedEventMetadata"] == {"pullRequestStatus": "CLOSED"}
    only = history(cc, pr_id, pullRequestEventType="PULL_REQUEST_STATUS_CHANGED")
    assert only == ["PULL_REQUEST_STATUS_CHANGED"]
    assert history(cc, pr_id, actorArn=f"{admin_arn}-nobody") == []
    first = cc.describe_pull_request_events(pullRequestId=pr_id, maxResults=1)
    rest = cc.describe_pull_request_events(pullRequestId=pr_id, nextToken=first["nextToken"])
    assert [
        e["pullRequestEventType"] for e in first["pullRequestEvents"] + rest["pullRequestEvents"]
    ] == [
        "PULL_REQUEST_CREATED",
        "PULL_REQUEST_STATUS_CHANGED",
    ]
    with raises("InvalidActorArnException"):
        cc.describe_pull_request_events(pullRequestId=pr_id, actorArn="nobody")


# -- approval rules -----------------------------------------------------------------------------
def test_approval_rule_lifecycle(cc: Any, repo: dict[str, Any], admin_arn: str) -> None:
    pr_id = open_pull_request(cc, repo)["pullRequestId"]
    created = cc.create_pull_request_approval_rule(
        pullRequestId=pr_id, approvalRuleName="Two approvals", approvalRuleContent=rule(2)
    )["approvalRule"]
    assert created["approvalRuleContent"] == rule(2)
    assert created["lastModifiedUser"] == admin_arn
    assert "originApprovalRuleTemplate" not in created
    with raises("ApprovalRuleNameAlreadyExistsException"):
        cc.create_pull_request_approval_rule(
            pullRequestId=pr_id, approvalRuleName="Two approvals", approvalRuleContent=rule(1)
        )
    with raises("InvalidApprovalRuleContentException"):
        cc.create_pull_request_approval_rule(
            pullRequestId=pr_id, approvalRuleName="Broken", approvalRuleContent='{"Version": 1}'
        )
    with raises("InvalidApprovalRuleNameException"):
        cc.create_pull_request_approval_rule(
            pullRequestId=pr_id, approvalRuleName="bad/name", approvalRuleContent=rule(1)
        )

    with raises("InvalidRuleContentSha256Exception"):
        cc.update_pull_request_approval_rule_content(
            pullRequestId=pr_id,
            approvalRuleName="Two approvals",
            existingRuleContentSha256="0" * 64,
            newRuleContent=rule(1),
        )
    updated = cc.update_pull_request_approval_rule_content(
        pullRequestId=pr_id,
        approvalRuleName="Two approvals",
        existingRuleContentSha256=created["ruleContentSha256"],
        newRuleContent=rule(1),
    )["approvalRule"]
    assert updated["approvalRuleId"] == created["approvalRuleId"]
    assert updated["ruleContentSha256"] != created["ruleContentSha256"]
    with raises("ApprovalRuleDoesNotExistException"):
        cc.update_pull_request_approval_rule_content(
            pullRequestId=pr_id, approvalRuleName="Nope", newRuleContent=rule(1)
        )
    [listed] = cc.get_pull_request(pullRequestId=pr_id)["pullRequest"]["approvalRules"]
    assert listed["approvalRuleContent"] == rule(1)

    deleted = cc.delete_pull_request_approval_rule(
        pullRequestId=pr_id, approvalRuleName="Two approvals"
    )
    assert deleted["approvalRuleId"] == created["approvalRuleId"]
    again = cc.delete_pull_request_approval_rule(
        pullRequestId=pr_id, approvalRuleName="Two approvals"
    )
    assert again["approvalRuleId"] == ""
    assert cc.get_pull_request(pullRequestId=pr_id)["pullRequest"]["approvalRules"] == []
    events = cc.describe_pull_request_events(pullRequestId=pr_id)["pullRequestEvents"]
    rule_events = [e for e in events if "approvalRuleEventMetadata" in e]
    assert [e["pullRequestEventType"] for e in rule_events] == [
        "PULL_REQUEST_APPROVAL_RULE_CREATED",
        "PULL_REQUEST_APPROVAL_RULE_UPDATED",
        "PULL_REQUEST_APPROVAL_RULE_DELETED",
    ]
    assert rule_events[0]["approvalRuleEventMetadata"]["approvalRuleName"] == "Two approvals"

    cc.update_pull_request_status(pullRequestId=pr_id, pullRequestStatus="CLOSED")
    with raises("PullRequestAlreadyClosedException"):
        cc.create_pull_request_approval_rule(
            pullRequestId=pr_id, approvalRuleName="Late", approvalRuleContent=rule(1)
        )


def test_approvals_follow_revisions_and_overrides(
    cc: Any, repo: dict[str, Any], reviewer: dict[str, Any], admin_arn: str
) -> None:
    pr = open_pull_request(cc, repo)
    pr_id, revision = pr["pullRequestId"], pr["revisionId"]
    cc.create_pull_request_approval_rule(
        pullRequestId=pr_id, approvalRuleName="One", approvalRuleContent=rule(1)
    )
    reviewing = reviewer["client"]
    with raises("InvalidRevisionIdException"):
        reviewing.update_pull_request_approval_state(
            pullRequestId=pr_id, revisionId="f" * 64, approvalState="APPROVE"
        )
    reviewing.update_pull_request_approval_state(
        pullRequestId=pr_id, revisionId=revision, approvalState="APPROVE"
    )
    reviewing.update_pull_request_approval_state(
        pullRequestId=pr_id, revisionId=revision, approvalState="REVOKE"
    )
    assert (
        cc.get_pull_request_approval_states(pullRequestId=pr_id, revisionId=revision)["approvals"]
        == []
    )

    # The source branch moves (an API commit): a new revision, approvals start over.
    reviewing.update_pull_request_approval_state(
        pullRequestId=pr_id, revisionId=revision, approvalState="APPROVE"
    )
    put = cc.put_file(
        repositoryName=repo["name"],
        branchName="feature",
        fileContent=b"more\n",
        filePath="more.txt",
        parentCommitId=repo["feature"],
    )
    moved = cc.get_pull_request(pullRequestId=pr_id)["pullRequest"]
    new_revision = moved["revisionId"]
    assert new_revision != revision
    assert moved["pullRequestTargets"][0]["sourceCommit"] == put["commitId"]
    assert history(cc, pr_id, pullRequestEventType="PULL_REQUEST_SOURCE_REFERENCE_UPDATED") == [
        "PULL_REQUEST_SOURCE_REFERENCE_UPDATED"
    ]
    updated_event = cc.describe_pull_request_events(
        pullRequestId=pr_id, pullRequestEventType="PULL_REQUEST_SOURCE_REFERENCE_UPDATED"
    )["pullRequestEvents"][0]
    assert (
        updated_event["pullRequestSourceReferenceUpdatedEventMetadata"]["afterCommitId"]
        == (put["commitId"])
    )
    assert (
        updated_event["pullRequestSourceReferenceUpdatedEventMetadata"]["beforeCommitId"]
        == (repo["feature"])
    )
    # The old revision keeps its approval; the new one has none.
    old_states = cc.get_pull_request_approval_states(pullRequestId=pr_id, revisionId=revision)
    assert [a["userArn"] for a in old_states["approvals"]] == [reviewer["arn"]]
    assert (
        cc.get_pull_request_approval_states(pullRequestId=pr_id, revisionId=new_revision)[
            "approvals"
        ]
        == []
    )
    with raises("RevisionNotCurrentException"):
        reviewing.update_pull_request_approval_state(
            pullRequestId=pr_id, revisionId=revision, approvalState="APPROVE"
        )
    with raises("RevisionNotCurrentException"):
        cc.evaluate_pull_request_approval_rules(pullRequestId=pr_id, revisionId=revision)
    with raises("PullRequestApprovalRulesNotSatisfiedException"):
        cc.merge_pull_request_by_fast_forward(pullRequestId=pr_id, repositoryName=repo["name"])

    # An override sets the rules aside for this revision only.
    cc.override_pull_request_approval_rules(
        pullRequestId=pr_id, revisionId=new_revision, overrideStatus="OVERRIDE"
    )
    state = cc.get_pull_request_override_state(pullRequestId=pr_id, revisionId=new_revision)
    assert state["overridden"] is True and state["overrider"] == admin_arn
    assert (
        cc.get_pull_request_override_state(pullRequestId=pr_id, revisionId=revision)["overridden"]
        is False
    )
    with raises("OverrideAlreadySetException"):
        cc.override_pull_request_approval_rules(
            pullRequestId=pr_id, revisionId=new_revision, overrideStatus="OVERRIDE"
        )
    evaluation = cc.evaluate_pull_request_approval_rules(
        pullRequestId=pr_id, revisionId=new_revision
    )["evaluation"]
    assert evaluation == {
        "approved": False,
        "overridden": True,
        "approvalRulesSatisfied": [],
        "approvalRulesNotSatisfied": ["One"],
    }
    cc.override_pull_request_approval_rules(
        pullRequestId=pr_id, revisionId=new_revision, overrideStatus="REVOKE"
    )
    with raises("PullRequestApprovalRulesNotSatisfiedException"):
        cc.merge_pull_request_by_fast_forward(pullRequestId=pr_id, repositoryName=repo["name"])
    cc.override_pull_request_approval_rules(
        pullRequestId=pr_id, revisionId=new_revision, overrideStatus="OVERRIDE"
    )
    merged = cc.merge_pull_request_by_fast_forward(pullRequestId=pr_id, repositoryName=repo["name"])
    assert merged["pullRequest"]["pullRequestTargets"][0]["mergeMetadata"]["mergeOption"] == (
        "FAST_FORWARD_MERGE"
    )
    assert repo["git"].head("main") == put["commitId"]
    with raises("PullRequestAlreadyClosedException"):
        cc.override_pull_request_approval_rules(
            pullRequestId=pr_id, revisionId=new_revision, overrideStatus="REVOKE"
        )
    overrides = cc.describe_pull_request_events(
        pullRequestId=pr_id, pullRequestEventType="PULL_REQUEST_APPROVAL_RULE_OVERRIDDEN"
    )["pullRequestEvents"]
    assert [e["approvalRuleOverriddenEventMetadata"]["overrideStatus"] for e in overrides] == [
        "OVERRIDE",
        "REVOKE",
        "OVERRIDE",
    ]


# -- merges ----------------------------------------------------------------------------------------
def test_merge_errors_leave_the_branch_alone(cc: Any, repo: dict[str, Any]) -> None:
    git: GitFixture = repo["git"]
    main_tip = git.commit("main", {"README.md": "hello again\n"}, "diverge")
    pr_id = open_pull_request(cc, repo)["pullRequestId"]
    name = repo["name"]
    with raises("ManualMergeRequiredException"):
        cc.merge_pull_request_by_fast_forward(pullRequestId=pr_id, repositoryName=name)
    with raises("TipOfSourceReferenceIsDifferentException"):
        cc.merge_pull_request_by_squash(
            pullRequestId=pr_id, repositoryName=name, sourceCommitId=repo["main"]
        )
    with raises("InvalidCommitIdException"):
        cc.merge_pull_request_by_squash(
            pullRequestId=pr_id, repositoryName=name, sourceCommitId="abc"
        )
    other = f"pr-other-{uuid.uuid4().hex[:8]}"
    cc.create_repository(repositoryName=other)
    try:
        with raises("RepositoryNotAssociatedWithPullRequestException"):
            cc.merge_pull_request_by_squash(pullRequestId=pr_id, repositoryName=other)
    finally:
        cc.delete_repository(repositoryName=other)
    assert git.head("main") == main_tip

    squashed = cc.merge_pull_request_by_squash(
        pullRequestId=pr_id, repositoryName=name, authorName="Squasher", email="s@example.com"
    )["pullRequest"]
    merge_commit = squashed["pullRequestTargets"][0]["mergeMetadata"]["mergeCommitId"]
    assert git.head("main") == merge_commit
    assert git.parents(merge_commit) == [main_tip]  # a squash has one parent
    assert git.files(merge_commit) == {"README.md": "hello again\n", "feature.txt": "new feature\n"}
    with raises("PullRequestAlreadyClosedException"):
        cc.merge_pull_request_by_squash(pullRequestId=pr_id, repositoryName=name)


def test_merging_one_pull_request_closes_others_already_merged(
    cc: Any, repo: dict[str, Any], forgeline: Any
) -> None:
    git: GitFixture = repo["git"]
    # `part` is an ancestor of `feature`: once feature is in main, so is part.
    git.commit("part", {}, "nothing new", start="main")
    part_tip = git.commit("part", {"part.txt": "part\n"}, "part")
    git.commit("feature", {"part.txt": "part\n"}, "include part")
    subprocess.run(
        ["git", "-C", str(git.path), "update-ref", "refs/heads/feature", part_tip],
        check=True,
        capture_output=True,
    )
    feature_tip = git.commit("feature", {"feature2.txt": "more\n"}, "more")
    whole = open_pull_request(cc, repo)["pullRequestId"]
    part = open_pull_request(cc, repo, source="part", title="Just the part")["pullRequestId"]
    unrelated_tip = git.commit("unrelated", {"x.txt": "x\n"}, "unrelated", start="main")
    unrelated = open_pull_request(cc, repo, source="unrelated", title="Other")["pullRequestId"]

    cc.merge_pull_request_by_fast_forward(pullRequestId=whole, repositoryName=repo["name"])
    assert git.head("main") == feature_tip
    closed = cc.get_pull_request(pullRequestId=part)["pullRequest"]
    assert closed["pullRequestStatus"] == "CLOSED"
    assert closed["pullRequestTargets"][0]["mergeMetadata"]["isMerged"] is True
    assert history(cc, part)[-2:] == [
        "PULL_REQUEST_MERGE_STATE_CHANGED",
        "PULL_REQUEST_STATUS_CHANGED",
    ]
    still_open = cc.get_pull_request(pullRequestId=unrelated)["pullRequest"]
    assert still_open["pullRequestStatus"] == "OPEN"
    assert still_open["pullRequestTargets"][0]["destinationCommit"] == feature_tip
    assert still_open["pullRequestTargets"][0]["sourceCommit"] == unrelated_tip
    published = events_for(forgeline, "CodeCommit Pull Request State Change", pullRequestId=part)
    assert published[-1].detail["event"] == "pullRequestMergeStatusUpdated"


def git_cli(home: Path, *args: str, cwd: Path | None = None) -> str:
    """The git CLI, isolated from this machine's configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "AWS_"))}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Pusher",
        GIT_AUTHOR_EMAIL="pusher@example.com",
        GIT_COMMITTER_NAME="Pusher",
        GIT_COMMITTER_EMAIL="pusher@example.com",
    )
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_push_that_merges_the_source_closes_the_pull_request(
    cc: Any, repo: dict[str, Any], forgeline: Any, tmp_path: Path
) -> None:
    pr_id = open_pull_request(cc, repo)["pullRequestId"]
    key, secret = forgeline.admin_credentials()
    host = forgeline.url.removeprefix("http://")
    password = sigv4.git_password(secret, f"/v1/repos/{repo['name']}", host, "us-east-1")
    url = f"http://{key}:{password}@{host}/v1/repos/{repo['name']}"
    work = tmp_path / "work"
    git_cli(tmp_path, "clone", "-q", "-b", "main", url, str(work))
    git_cli(tmp_path, "fetch", "-q", "origin", "feature", cwd=work)
    git_cli(tmp_path, "merge", "-q", "--no-ff", "-m", "merge by hand", "FETCH_HEAD", cwd=work)
    merge_commit = git_cli(tmp_path, "rev-parse", "HEAD", cwd=work)
    git_cli(tmp_path, "push", "-q", url, "main", cwd=work)

    assert repo["git"].head("main") == merge_commit
    closed = cc.get_pull_request(pullRequestId=pr_id)["pullRequest"]
    assert closed["pullRequestStatus"] == "CLOSED"
    metadata = closed["pullRequestTargets"][0]["mergeMetadata"]
    assert metadata["isMerged"] is True
    assert metadata["mergeCommitId"] == merge_commit
    assert "mergeOption" not in metadata  # merged outside the API: no merge option
    assert history(cc, pr_id)[-2:] == [
        "PULL_REQUEST_MERGE_STATE_CHANGED",
        "PULL_REQUEST_STATUS_CHANGED",
    ]


# -- approval rule templates -------------------------------------------------------------------------
def test_templates_apply_to_matching_pull_requests(
    cc: Any, repo: dict[str, Any], reviewer: dict[str, Any], forgeline: Any
) -> None:
    name = f"main-needs-reviewer-{uuid.uuid4().hex[:6]}"
    content = rule(1, [reviewer["arn"]], DestinationReferences=["refs/heads/main"])
    template = cc.create_approval_rule_template(
        approvalRuleTemplateName=name,
        approvalRuleTemplateContent=content,
        approvalRuleTemplateDescription="Reviewer approves changes to main",
    )["approvalRuleTemplate"]
    try:
        assert template["approvalRuleTemplateContent"] == content
        with raises("ApprovalRuleTemplateNameAlreadyExistsException"):
            cc.create_approval_rule_template(
                approvalRuleTemplateName=name, approvalRuleTemplateContent=content
            )
        with raises("InvalidApprovalRuleTemplateContentException"):
            cc.create_approval_rule_template(
                approvalRuleTemplateName=f"{name}-bad", approvalRuleTemplateContent="{}"
            )
        assert name in cc.list_approval_rule_templates()["approvalRuleTemplateNames"]
        cc.associate_approval_rule_template_with_repository(
            approvalRuleTemplateName=name, repositoryName=repo["name"]
        )
        assert cc.list_associated_approval_rule_templates_for_repository(
            repositoryName=repo["name"]
        )["approvalRuleTemplateNames"] == [name]
        assert cc.list_repositories_for_approval_rule_template(approvalRuleTemplateName=name)[
            "repositoryNames"
        ] == [repo["name"]]

        into_main = open_pull_request(cc, repo)
        [applied] = into_main["approvalRules"]
        assert applied["approvalRuleName"] == name
        assert applied["originApprovalRuleTemplate"] == {
            "approvalRuleTemplateId": template["approvalRuleTemplateId"],
            "approvalRuleTemplateName": name,
        }
        with raises("CannotModifyApprovalRuleFromTemplateException"):
            cc.update_pull_request_approval_rule_content(
                pullRequestId=into_main["pullRequestId"],
                approvalRuleName=name,
                newRuleContent=rule(1),
            )
        with raises("CannotDeleteApprovalRuleFromTemplateException"):
            cc.delete_pull_request_approval_rule(
                pullRequestId=into_main["pullRequestId"], approvalRuleName=name
            )
        # The template rule blocks the merge until the reviewer approves.
        with raises("PullRequestApprovalRulesNotSatisfiedException"):
            cc.merge_pull_request_by_fast_forward(
                pullRequestId=into_main["pullRequestId"], repositoryName=repo["name"]
            )
        reviewer["client"].update_pull_request_approval_state(
            pullRequestId=into_main["pullRequestId"],
            revisionId=into_main["revisionId"],
            approvalState="APPROVE",
        )
        cc.merge_pull_request_by_fast_forward(
            pullRequestId=into_main["pullRequestId"], repositoryName=repo["name"]
        )
        # A pull request into another branch does not match the template's branch filter.
        repo["git"].commit("develop", {}, "develop", start="main")
        repo["git"].commit("topic", {"t.txt": "t\n"}, "topic", start="main")
        into_develop = open_pull_request(cc, repo, source="topic", destination="develop")
        assert into_develop["approvalRules"] == []

        with raises("ApprovalRuleTemplateInUseException"):
            cc.delete_approval_rule_template(approvalRuleTemplateName=name)
        cc.disassociate_approval_rule_template_from_repository(
            approvalRuleTemplateName=name, repositoryName=repo["name"]
        )
        assert (
            cc.list_associated_approval_rule_templates_for_repository(repositoryName=repo["name"])[
                "approvalRuleTemplateNames"
            ]
            == []
        )
        assert open_pull_request(cc, repo, source="topic")["approvalRules"] == []
        kinds = [
            e.detail["event"]
            for e in events_for(
                forgeline,
                "CodeCommit Approval Rule Template Change",
                approvalRuleTemplateName=name,
            )
        ]
        assert kinds == [
            "approvalRuleTemplateCreated",
            "approvalRuleTemplateAssociatedWithRepository",
            "approvalRuleTemplateDisassociatedFromRepository",
        ]
    finally:
        cc.delete_approval_rule_template(approvalRuleTemplateName=name)


def test_template_updates_batches_and_deletion(cc: Any, repo: dict[str, Any]) -> None:
    name = f"tmpl-{uuid.uuid4().hex[:8]}"
    created = cc.create_approval_rule_template(
        approvalRuleTemplateName=name, approvalRuleTemplateContent=rule(1)
    )["approvalRuleTemplate"]
    assert created["approvalRuleTemplateDescription"] == ""
    renamed = cc.update_approval_rule_template_name(
        oldApprovalRuleTemplateName=name, newApprovalRuleTemplateName=f"{name}-v2"
    )["approvalRuleTemplate"]
    assert renamed["approvalRuleTemplateId"] == created["approvalRuleTemplateId"]
    name = f"{name}-v2"
    with raises("ApprovalRuleTemplateDoesNotExistException"):
        cc.get_approval_rule_template(approvalRuleTemplateName=name.removesuffix("-v2"))
    described = cc.update_approval_rule_template_description(
        approvalRuleTemplateName=name, approvalRuleTemplateDescription="Now described"
    )["approvalRuleTemplate"]
    assert described["approvalRuleTemplateDescription"] == "Now described"
    with raises("InvalidRuleContentSha256Exception"):
        cc.update_approval_rule_template_content(
            approvalRuleTemplateName=name, newRuleContent=rule(2), existingRuleContentSha256="x"
        )
    with raises("InvalidApprovalRuleTemplateContentException"):
        cc.update_approval_rule_template_content(approvalRuleTemplateName=name, newRuleContent="[]")
    changed = cc.update_approval_rule_template_content(
        approvalRuleTemplateName=name,
        newRuleContent=rule(2),
        existingRuleContentSha256=created["ruleContentSha256"],
    )["approvalRuleTemplate"]
    assert changed["approvalRuleTemplateContent"] == rule(2)
    fetched = cc.get_approval_rule_template(approvalRuleTemplateName=name)["approvalRuleTemplate"]
    assert fetched["ruleContentSha256"] == changed["ruleContentSha256"]
    with raises("InvalidApprovalRuleTemplateNameException"):
        cc.get_approval_rule_template(approvalRuleTemplateName="bad:name")

    missing = f"{repo['name']}-missing"
    batch = cc.batch_associate_approval_rule_template_with_repositories(
        approvalRuleTemplateName=name, repositoryNames=[repo["name"], missing, "named.git"]
    )
    assert batch["associatedRepositoryNames"] == [repo["name"]]
    assert {(e["repositoryName"], e["errorCode"]) for e in batch["errors"]} == {
        (missing, "RepositoryDoesNotExistException"),
        ("named.git", "InvalidRepositoryNameException"),
    }
    with raises("RepositoryNamesRequiredException"):
        cc.batch_associate_approval_rule_template_with_repositories(
            approvalRuleTemplateName=name, repositoryNames=[]
        )
    with raises("ApprovalRuleTemplateDoesNotExistException"):
        cc.associate_approval_rule_template_with_repository(
            approvalRuleTemplateName=f"{name}-missing", repositoryName=repo["name"]
        )
    undone = cc.batch_disassociate_approval_rule_template_from_repositories(
        approvalRuleTemplateName=name, repositoryNames=[repo["name"], missing]
    )
    assert undone["disassociatedRepositoryNames"] == [repo["name"]]
    assert [e["errorCode"] for e in undone["errors"]] == ["RepositoryDoesNotExistException"]

    deleted = cc.delete_approval_rule_template(approvalRuleTemplateName=name)
    assert deleted["approvalRuleTemplateId"] == created["approvalRuleTemplateId"]
    assert (
        cc.delete_approval_rule_template(approvalRuleTemplateName=name)["approvalRuleTemplateId"]
        == ""
    )
    assert name not in cc.list_approval_rule_templates()["approvalRuleTemplateNames"]


def test_templates_and_pull_requests_stay_in_their_account(
    forgeline: Any, cc: Any, repo: dict[str, Any]
) -> None:
    made = forgeline.cli("accounts", "create", "--name", f"other-{uuid.uuid4().hex[:6]}")
    assert made.returncode == 0, made.stderr
    other = json.loads(made.stdout)
    outsider = forgeline.client(
        "codecommit", credentials=(other["accessKeyId"], other["secretAccessKey"])
    )
    pr_id = open_pull_request(cc, repo)["pullRequestId"]
    with raises("PullRequestDoesNotExistException"):
        outsider.get_pull_request(pullRequestId=pr_id)
    name = f"private-{uuid.uuid4().hex[:6]}"
    cc.create_approval_rule_template(
        approvalRuleTemplateName=name, approvalRuleTemplateContent=rule()
    )
    try:
        with raises("ApprovalRuleTemplateDoesNotExistException"):
            outsider.get_approval_rule_template(approvalRuleTemplateName=name)
        assert name not in outsider.list_approval_rule_templates()["approvalRuleTemplateNames"]
    finally:
        cc.delete_approval_rule_template(approvalRuleTemplateName=name)
