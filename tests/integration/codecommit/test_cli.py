"""A few CodeCommit flows through the AWS CLI itself, as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest


@pytest.fixture
def aws(forgeline):
    env = dict(
        os.environ,
        AWS_SHARED_CREDENTIALS_FILE=str(forgeline.credentials_file),
        AWS_CONFIG_FILE="/dev/null",
        AWS_DEFAULT_REGION="us-east-1",
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(name, None)

    def run(*args: str) -> dict:
        done = subprocess.run(
            [
                "aws",
                "--profile",
                "forgeline",
                "--endpoint-url",
                forgeline.url,
                "--output",
                "json",
                "codecommit",
                *args,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    return run


def test_files_branches_and_a_pull_request(aws, tmp_path):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    aws("create-repository", "--repository-name", name, "--repository-description", "from the CLI")
    try:
        content = tmp_path / "hello.txt"
        content.write_text("hello from the CLI\n")
        first = aws(
            "put-file",
            "--repository-name",
            name,
            "--branch-name",
            "main",
            "--file-path",
            "hello.txt",
            "--file-content",
            f"fileb://{content}",
            "--commit-message",
            "first",
        )
        got = aws("get-file", "--repository-name", name, "--file-path", "hello.txt")
        assert got["commitId"] == first["commitId"]
        import base64

        assert base64.b64decode(got["fileContent"]) == b"hello from the CLI\n"

        aws(
            "create-branch",
            "--repository-name",
            name,
            "--branch-name",
            "feature",
            "--commit-id",
            first["commitId"],
        )
        content.write_text("changed on feature\n")
        aws(
            "put-file",
            "--repository-name",
            name,
            "--branch-name",
            "feature",
            "--file-path",
            "hello.txt",
            "--file-content",
            f"fileb://{content}",
            "--parent-commit-id",
            first["commitId"],
        )
        assert set(aws("list-branches", "--repository-name", name)["branches"]) == {
            "main",
            "feature",
        }

        pr = aws(
            "create-pull-request",
            "--title",
            "Change greeting",
            "--targets",
            f"repositoryName={name},sourceReference=feature,destinationReference=main",
        )
        pr_id = pr["pullRequest"]["pullRequestId"]
        merged = aws(
            "merge-pull-request-by-fast-forward",
            "--pull-request-id",
            pr_id,
            "--repository-name",
            name,
        )
        assert merged["pullRequest"]["pullRequestStatus"] == "CLOSED"
        assert merged["pullRequest"]["pullRequestTargets"][0]["mergeMetadata"]["isMerged"] is True
        main = aws("get-branch", "--repository-name", name, "--branch-name", "main")
        feature = aws("get-branch", "--repository-name", name, "--branch-name", "feature")
        assert main["branch"]["commitId"] == feature["branch"]["commitId"]
        diff = aws(
            "get-differences",
            "--repository-name",
            name,
            "--before-commit-specifier",
            first["commitId"],
            "--after-commit-specifier",
            "main",
        )
        assert [d["changeType"] for d in diff["differences"]] == ["M"]
    finally:
        aws("delete-repository", "--repository-name", name)
