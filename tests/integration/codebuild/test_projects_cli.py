"""CodeBuild projects through the AWS CLI itself, as a user types the commands."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from typing import Any

import pytest

BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo from the CLI\n"


@pytest.fixture
def aws(forgeline: Any) -> Any:
    env = dict(
        os.environ,
        AWS_SHARED_CREDENTIALS_FILE=str(forgeline.credentials_file),
        AWS_CONFIG_FILE="/dev/null",
        AWS_DEFAULT_REGION="us-east-1",
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(name, None)

    def run(*args: str, expect_ok: bool = True) -> Any:
        done = subprocess.run(
            [
                "aws",
                "--profile",
                "forgeline",
                "--endpoint-url",
                forgeline.url,
                "--output",
                "json",
                "codebuild",
                *args,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if not expect_ok:
            return done
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    return run


def test_project_lifecycle_through_the_cli(aws: Any) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = aws(
        "create-project",
        "--name",
        name,
        "--description",
        "made by the CLI",
        "--source",
        json.dumps({"type": "NO_SOURCE", "buildspec": BUILDSPEC}),
        "--artifacts",
        "type=NO_ARTIFACTS",
        "--environment",
        "type=LINUX_CONTAINER,image=aws/codebuild/standard:7.0,computeType=BUILD_GENERAL1_SMALL",
        "--service-role",
        "arn:aws:iam::123456789012:role/codebuild",
        "--tags",
        "key=team,value=ci",
        "--badge-enabled",
    )["project"]
    assert created["name"] == name
    assert created["badge"]["badgeEnabled"] is True
    assert created["tags"] == [{"key": "team", "value": "ci"}]

    got = aws("batch-get-projects", "--names", name, f"missing-{name}")
    assert [p["name"] for p in got["projects"]] == [name]
    assert got["projectsNotFound"] == [f"missing-{name}"]

    # The CLI follows nextToken itself: the listing must end and hold the project once.
    listed = aws("list-projects", "--sort-by", "NAME", "--sort-order", "ASCENDING")["projects"]
    assert listed.count(name) == 1

    updated = aws("update-project", "--name", name, "--timeout-in-minutes", "15")["project"]
    assert updated["timeoutInMinutes"] == 15
    assert updated["description"] == "made by the CLI"

    failed = aws("update-project", "--name", name, "--cache", "type=S3", expect_ok=False)
    assert failed.returncode != 0
    assert "InvalidInputException" in failed.stderr

    aws("delete-project", "--name", name)
    assert aws("batch-get-projects", "--names", name)["projectsNotFound"] == [name]


def test_source_credentials_through_the_cli(aws: Any) -> None:
    imported = aws(
        "import-source-credentials",
        "--server-type",
        "GITLAB_SELF_MANAGED",
        "--auth-type",
        "PERSONAL_ACCESS_TOKEN",
        "--token",
        "glpat-cli",
    )
    assert imported["arn"].endswith(":token/gitlab_self_managed")
    infos = aws("list-source-credentials")["sourceCredentialsInfos"]
    assert {
        "arn": imported["arn"],
        "serverType": "GITLAB_SELF_MANAGED",
        "authType": "PERSONAL_ACCESS_TOKEN",
    } in infos
    assert aws("delete-source-credentials", "--arn", imported["arn"])["arn"] == imported["arn"]
