"""Builds read SSM parameters and Secrets Manager secrets: the values reach the build's
environment, stay out of its logs, and a missing one fails the build as CodeBuild does."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support.builds import (
    build_server,
    context_of,
    create_project,
    log_lines,
    output_lines,
    phases_of,
    run_build,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any, tiny_image: str) -> Any:
    yield from build_server(tmp_path_factory, "docker")


@pytest.fixture(scope="module")
def clients(server: Any) -> dict[str, Any]:
    return {name: server.client(name) for name in ("codebuild", "ssm", "secretsmanager")}


def test_buildspec_and_project_secrets_reach_the_build_masked(server, clients):
    ssm, sm = clients["ssm"], clients["secretsmanager"]
    suffix = uuid.uuid4().hex[:8]
    token, password = f"tok-{uuid.uuid4().hex}", f"pw-{uuid.uuid4().hex}"
    ssm.put_parameter(Name=f"/builds/{suffix}/token", Value=token, Type="SecureString")
    ssm.put_parameter(Name=f"/builds/{suffix}/plain", Value="plain-value-one", Type="String")
    ssm.put_parameter(Name=f"/builds/{suffix}/plain", Value="plain-value-two", Overwrite=True)
    secret = sm.create_secret(
        Name=f"builds/{suffix}/db", SecretString=json.dumps({"user": "app", "password": password})
    )
    buildspec = f"""version: 0.2
env:
  parameter-store:
    TOKEN: /builds/{suffix}/token
    OLD_PLAIN: /builds/{suffix}/plain:1
  secrets-manager:
    DB_PASSWORD: builds/{suffix}/db:password
    DB_USER: {secret["ARN"]}:user:AWSCURRENT
phases:
  build:
    commands:
      - '[ "$TOKEN" = "{token}" ] && echo token-ok'
      - '[ "$DB_PASSWORD" = "{password}" ] && echo password-ok'
      - '[ "$FROM_PROJECT" = "plain-value-two" ] && echo project-parameter-ok'
      - '[ "$WHOLE_SECRET" = {json.dumps(json.dumps({"user": "app", "password": password}))} ] && echo whole-secret-ok'
      - '[ "$OLD_PLAIN" = "plain-value-one" ] && echo version-selector-ok'
      - '[ "$DB_USER" = "app" ] && echo arn-reference-ok'
      - echo "leak $TOKEN $DB_PASSWORD"
"""
    project = create_project(
        clients["codebuild"],
        buildspec,
        environment={
            "type": "LINUX_CONTAINER",
            "image": "forgeline/tiny:latest",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [
                {
                    "name": "FROM_PROJECT",
                    "value": f"/builds/{suffix}/plain",
                    "type": "PARAMETER_STORE",
                },
                {
                    "name": "WHOLE_SECRET",
                    "value": f"builds/{suffix}/db",
                    "type": "SECRETS_MANAGER",
                },
            ],
        },
    )
    build = run_build(clients["codebuild"], project)
    output = output_lines(server, build)
    assert build["buildStatus"] == "SUCCEEDED", (context_of(build, "BUILD"), output)
    for marker in (
        "token-ok",
        "password-ok",
        "project-parameter-ok",
        "whole-secret-ok",
        "version-selector-ok",
        "arn-reference-ok",
    ):
        assert marker in output
    text = "\n".join(log_lines(server, build))
    assert token not in text and password not in text  # secret values are masked in logs


@pytest.mark.parametrize(
    ("env_block", "status_code", "message"),
    [
        (
            "parameter-store:\n    MISSING: /builds/absent/parameter",
            "Decrypted Variables Error",
            "parameter does not exist: /builds/absent/parameter",
        ),
        (
            "secrets-manager:\n    MISSING: builds/absent/secret:key",
            "Secrets Manager Error",
            "ResourceNotFoundException: Secrets Manager can't find the specified secret.",
        ),
    ],
)
def test_a_missing_secret_fails_the_build_in_download_source(
    clients, env_block, status_code, message
):
    buildspec = (
        f"version: 0.2\nenv:\n  {env_block}\nphases:\n  build:\n    commands:\n      - echo never\n"
    )
    build = run_build(clients["codebuild"], create_project(clients["codebuild"], buildspec))
    assert build["buildStatus"] == "FAILED"
    assert phases_of(build)["DOWNLOAD_SOURCE"]["phaseStatus"] == "FAILED"
    assert context_of(build, "DOWNLOAD_SOURCE") == f"{status_code}: {message}"
