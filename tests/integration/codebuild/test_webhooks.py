"""CodeBuild webhooks on Forgeline repositories, over boto3 against a real server:
commits start builds of the projects whose filters match, with AWS's webhook variables,
and the builds really run (Docker, the tiny image)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/codebuild"
BUILDSPEC = """version: 0.2
env:
  exported-variables:
    - CODEBUILD_WEBHOOK_EVENT
    - CODEBUILD_WEBHOOK_HEAD_REF
    - CODEBUILD_WEBHOOK_TRIGGER
    - CODEBUILD_WEBHOOK_PREV_COMMIT
    - CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID
    - CODEBUILD_WEBHOOK_BASE_REF
phases:
  build:
    commands:
      - echo "event=$CODEBUILD_WEBHOOK_EVENT ref=$CODEBUILD_WEBHOOK_HEAD_REF"
"""


@pytest.fixture
def clients(forgeline) -> tuple[Any, Any]:
    return forgeline.client("codecommit"), forgeline.client("codebuild")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_repository(codecommit) -> tuple[str, str]:
    """A repository whose main branch holds the buildspec; (name, head commit)."""
    name = unique("hooks")
    codecommit.create_repository(repositoryName=name)
    commit = codecommit.put_file(
        repositoryName=name,
        branchName="main",
        filePath="buildspec.yml",
        fileContent=BUILDSPEC.encode(),
        commitMessage="add buildspec",
    )["commitId"]
    return name, commit


def make_project(codebuild, repository: str, image: str) -> str:
    name = unique("hooked")
    codebuild.create_project(
        name=name,
        source={
            "type": "CODECOMMIT",
            "location": f"https://git-codecommit.us-east-1.amazonaws.com/v1/repos/{repository}",
        },
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": image,
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=ROLE,
    )
    return name


def build_ids(codebuild, project: str) -> list[str]:
    return codebuild.list_builds_for_project(projectName=project)["ids"]


def wait_for_builds(codebuild, project: str, count: int, timeout: float = 180) -> list[dict]:
    """The project's builds once `count` exist and all have finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = build_ids(codebuild, project)
        if len(ids) >= count:
            found = codebuild.batch_get_builds(ids=ids)["builds"]
            if all(build["buildComplete"] for build in found):
                return found
        time.sleep(0.3)
    raise AssertionError(f"{project}: {count} finished builds did not appear in {timeout}s")


def exported(build: dict) -> dict[str, str]:
    return {v["name"]: v.get("value", "") for v in build.get("exportedEnvironmentVariables", [])}


def test_push_starts_a_build_with_the_webhook_variables(clients, tiny_image):
    codecommit, codebuild = clients
    repository, first = make_repository(codecommit)
    project = make_project(codebuild, repository, tiny_image)
    created = codebuild.create_webhook(
        projectName=project,
        filterGroups=[
            [
                {"type": "EVENT", "pattern": "PUSH"},
                {"type": "HEAD_REF", "pattern": "^refs/heads/main$"},
            ]
        ],
    )["webhook"]
    assert created["buildType"] == "BUILD"
    assert created["secret"] and created["filterGroups"][0][0]["type"] == "EVENT"
    shown = codebuild.batch_get_projects(names=[project])["projects"][0]["webhook"]
    assert shown["filterGroups"] == created["filterGroups"] and "secret" not in shown

    second = codecommit.put_file(
        repositoryName=repository,
        branchName="main",
        parentCommitId=first,
        filePath="src/app.txt",
        fileContent=b"v2",
        commitMessage="second",
    )["commitId"]
    [build] = wait_for_builds(codebuild, project, 1)
    assert build["buildStatus"] == "SUCCEEDED", build["phases"]
    assert build["initiator"] == "codecommit-webhook"
    assert build["sourceVersion"] == second
    assert build["resolvedSourceVersion"] == second
    variables = exported(build)
    assert variables["CODEBUILD_WEBHOOK_EVENT"] == "PUSH"
    assert variables["CODEBUILD_WEBHOOK_HEAD_REF"] == "refs/heads/main"
    assert variables["CODEBUILD_WEBHOOK_TRIGGER"] == "branch/main"
    assert variables["CODEBUILD_WEBHOOK_PREV_COMMIT"] == first
    assert variables["CODEBUILD_WEBHOOK_ACTOR_ACCOUNT_ID"].startswith("arn:aws:")
    assert variables["CODEBUILD_WEBHOOK_BASE_REF"] == ""


def test_a_push_no_filter_group_matches_starts_nothing(clients, tiny_image):
    codecommit, codebuild = clients
    repository, first = make_repository(codecommit)
    project = make_project(codebuild, repository, tiny_image)
    codebuild.create_webhook(
        projectName=project,
        filterGroups=[
            [
                {"type": "EVENT", "pattern": "PUSH"},
                {"type": "FILE_PATH", "pattern": "^src/"},
            ],
            [
                {"type": "EVENT", "pattern": "PUSH"},
                {"type": "COMMIT_MESSAGE", "pattern": r"\[build\]"},
            ],
        ],
    )
    docs = codecommit.put_file(
        repositoryName=repository,
        branchName="main",
        parentCommitId=first,
        filePath="docs/readme.md",
        fileContent=b"words",
        commitMessage="docs only",
    )["commitId"]
    # A push to another repository does not concern this project either.
    other, _ = make_repository(codecommit)
    time.sleep(1.5)
    assert build_ids(codebuild, project) == []

    # The second group matches on the message; the commit is on a new branch.
    codecommit.create_branch(repositoryName=repository, branchName="topic", commitId=docs)
    tagged = codecommit.put_file(
        repositoryName=repository,
        branchName="topic",
        parentCommitId=docs,
        filePath="docs/more.md",
        fileContent=b"more",
        commitMessage="more docs [build]",
    )["commitId"]
    [build] = wait_for_builds(codebuild, project, 1)
    assert build["sourceVersion"] == tagged
    assert exported(build)["CODEBUILD_WEBHOOK_TRIGGER"] == "branch/topic"
    assert other


def test_pull_request_events(clients, tiny_image):
    codecommit, codebuild = clients
    repository, first = make_repository(codecommit)
    project = make_project(codebuild, repository, tiny_image)
    codebuild.create_webhook(
        projectName=project,
        filterGroups=[
            [
                {"type": "EVENT", "pattern": "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED"},
                {"type": "BASE_REF", "pattern": "^refs/heads/main$"},
            ]
        ],
    )
    codecommit.create_branch(repositoryName=repository, branchName="feature", commitId=first)
    head = codecommit.put_file(
        repositoryName=repository,
        branchName="feature",
        parentCommitId=first,
        filePath="feature.txt",
        fileContent=b"f",
        commitMessage="feature work",
    )["commitId"]
    assert build_ids(codebuild, project) == []  # a push is not a pull request event
    pull_request = codecommit.create_pull_request(
        title="feature",
        targets=[
            {
                "repositoryName": repository,
                "sourceReference": "feature",
                "destinationReference": "main",
            }
        ],
    )["pullRequest"]
    [build] = wait_for_builds(codebuild, project, 1)
    variables = exported(build)
    assert build["sourceVersion"] == head
    assert variables["CODEBUILD_WEBHOOK_EVENT"] == "PULL_REQUEST_CREATED"
    assert variables["CODEBUILD_WEBHOOK_HEAD_REF"] == "refs/heads/feature"
    assert variables["CODEBUILD_WEBHOOK_BASE_REF"] == "refs/heads/main"
    assert variables["CODEBUILD_WEBHOOK_TRIGGER"] == f"pr/{pull_request['pullRequestId']}"


def test_webhook_api_errors_and_lifecycle(clients, forgeline):
    codecommit, codebuild = clients
    repository, _ = make_repository(codecommit)
    project = make_project(codebuild, repository, "forgeline/tiny:latest")

    def error(call, **params) -> tuple[str, str]:
        with pytest.raises(ClientError) as caught:
            call(**params)
        return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]

    code, message = error(
        codebuild.create_webhook,
        projectName=project,
        filterGroups=[[{"type": "HEAD_REF", "pattern": "main"}]],
    )
    assert code == "InvalidInputException" and "EVENT" in message
    code, message = error(
        codebuild.create_webhook,
        projectName=project,
        filterGroups=[[{"type": "EVENT", "pattern": "RELEASED"}]],
    )
    assert code == "InvalidInputException" and "RELEASED" in message
    code, message = error(
        codebuild.create_webhook,
        projectName=project,
        filterGroups=[[{"type": "EVENT", "pattern": "PUSH"}, {"type": "HEAD_REF", "pattern": "("}]],
    )
    assert code == "InvalidInputException" and "regular expression" in message
    assert error(codebuild.create_webhook, projectName="no-such-project")[0] == (
        "ResourceNotFoundException"
    )
    assert error(codebuild.update_webhook, projectName=project)[0] == "ResourceNotFoundException"

    created = codebuild.create_webhook(projectName=project, branchFilter="^main$")["webhook"]
    assert created["branchFilter"] == "^main$"
    assert error(codebuild.create_webhook, projectName=project)[0] == (
        "ResourceAlreadyExistsException"
    )
    rotated = codebuild.update_webhook(
        projectName=project, rotateSecret=True, buildType="BUILD_BATCH"
    )["webhook"]
    assert rotated["secret"] != created["secret"]
    assert rotated["buildType"] == "BUILD_BATCH" and rotated["branchFilter"] == "^main$"
    assert rotated["lastModifiedSecret"] >= created["lastModifiedSecret"]
    codebuild.delete_webhook(projectName=project)
    assert "webhook" not in codebuild.batch_get_projects(names=[project])["projects"][0]
    assert error(codebuild.delete_webhook, projectName=project)[0] == "ResourceNotFoundException"

    s3_project = unique("s3src")
    codebuild.create_project(
        name=s3_project,
        source={"type": "S3", "location": "bucket/source.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "forgeline/tiny:latest",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=ROLE,
    )
    code, message = error(codebuild.create_webhook, projectName=s3_project)
    assert code == "InvalidInputException" and "S3" in message
