"""Privileged builds only where the operator allows them (FORGELINE_BUILD_PRIVILEGED).

On the suite's server nobody may: CreateProject, UpdateProject, StartBuild,
StartBuildBatch and batchspec entries asking for privilegedMode answer
InvalidInputException naming the setting, and a project that was made privileged before
the permission was withdrawn no longer starts. On a server that allows one account, that
account's privileged project is kept and builds, and another account is still refused.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.builds import TINY_IMAGE, wait_for_build
from tests.support.server import ForgelineServer, running_server

ROLE = "arn:aws:iam::000000000000:role/forgeline-build"
ALLOWED_ACCOUNT = "424242424242"
BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n"
PRIVILEGED_ENTRY = """version: 0.2
batch:
  build-list:
    - identifier: plain
    - identifier: docker_in_docker
      env:
        privileged-mode: true
phases:
  build:
    commands:
      - echo hi
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def environment(privileged: bool) -> dict[str, Any]:
    return {
        "type": "LINUX_CONTAINER",
        "image": TINY_IMAGE,
        "computeType": "BUILD_GENERAL1_SMALL",
        "privilegedMode": privileged,
    }


def project_params(
    name: str, *, privileged: bool = False, buildspec: str = BUILDSPEC
) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"type": "NO_SOURCE", "buildspec": buildspec},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": environment(privileged),
        "serviceRole": ROLE,
        "buildBatchConfig": {"serviceRole": ROLE},
    }


def refused(call: Any, **params: Any) -> str:
    """The message of the InvalidInputException that refuses a privileged build."""
    with pytest.raises(ClientError) as caught:
        call(**params)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidInputException", error
    assert "Privileged builds" in error["Message"], error
    assert "FORGELINE_BUILD_PRIVILEGED" in error["Message"], error
    return str(error["Message"])


def account_of(project: dict[str, Any]) -> str:
    return str(project["arn"].split(":")[4])


def test_privileged_builds_are_refused_where_the_operator_did_not_allow_them(
    forgeline: Any,
) -> None:
    codebuild = forgeline.client("codebuild")
    name = unique("privileged")
    message = refused(codebuild.create_project, **project_params(name, privileged=True))
    assert codebuild.batch_get_projects(names=[name])["projectsNotFound"] == [name]

    project = codebuild.create_project(**project_params(name))["project"]
    assert f"account {account_of(project)}" in message
    refused(codebuild.update_project, name=name, environment=environment(True))
    stored = codebuild.batch_get_projects(names=[name])["projects"][0]
    assert stored["environment"]["privilegedMode"] is False

    refused(codebuild.start_build, projectName=name, privilegedModeOverride=True)
    refused(codebuild.start_build_batch, projectName=name, privilegedModeOverride=True)
    assert codebuild.list_builds_for_project(projectName=name)["ids"] == []

    # A batchspec entry asking for privileged mode refuses the whole batch.
    entries = unique("entries")
    codebuild.create_project(**project_params(entries, buildspec=PRIVILEGED_ENTRY))
    refused(codebuild.start_build_batch, projectName=entries)
    assert codebuild.list_build_batches_for_project(projectName=entries)["ids"] == []
    assert codebuild.list_builds_for_project(projectName=entries)["ids"] == []


def test_a_project_privileged_before_the_permission_was_withdrawn_no_longer_builds(
    forgeline: Any,
) -> None:
    from forgeline.codebuild.tables.projects import BuildProject
    from forgeline.core.db import session_scope

    codebuild = forgeline.client("codebuild")
    name = unique("withdrawn")
    arn = codebuild.create_project(**project_params(name))["project"]["arn"]
    # As the project was kept while the server allowed it.
    with session_scope(forgeline.database_url) as session:
        row = session.query(BuildProject).filter_by(arn=arn).one()
        document = json.loads(json.dumps(row.document))
        document["environment"]["privilegedMode"] = True
        row.document = document

    refused(codebuild.start_build, projectName=name)
    refused(codebuild.start_build_batch, projectName=name)
    # The rest of the project can still be edited, and a build without privilege starts.
    updated = codebuild.update_project(name=name, description="still editable")["project"]
    assert updated["environment"]["privilegedMode"] is True
    build = codebuild.start_build(projectName=name, privilegedModeOverride=False)["build"]
    assert build["environment"]["privilegedMode"] is False
    codebuild.stop_build(id=build["id"])


@pytest.fixture(scope="module")
def allowing_server(tmp_path_factory: Any) -> Iterator[ForgelineServer]:
    env = {"FORGELINE_BUILD_PRIVILEGED": ALLOWED_ACCOUNT, "FORGELINE_BUILD_RUNNER": "host"}
    with running_server(tmp_path_factory.mktemp("privileged"), extra_env=env) as server:
        yield server


def test_an_allowed_account_keeps_and_builds_privileged_projects(
    allowing_server: ForgelineServer,
) -> None:
    created = allowing_server.cli(
        "accounts", "create", "--name", "trusted", "--account-id", ALLOWED_ACCOUNT
    )
    assert created.returncode == 0, created.stderr
    keys = json.loads(created.stdout)
    trusted = allowing_server.client(
        "codebuild", credentials=(keys["accessKeyId"], keys["secretAccessKey"])
    )
    name = unique("trusted")
    project = trusted.create_project(**project_params(name, privileged=True))["project"]
    assert project["environment"]["privilegedMode"] is True
    build = trusted.start_build(projectName=name)["build"]
    assert build["environment"]["privilegedMode"] is True
    assert wait_for_build(trusted, build["id"])["buildStatus"] == "SUCCEEDED"

    # The operator allowed one account, not this server's others.
    other = allowing_server.client("codebuild")
    message = refused(other.create_project, **project_params(name, privileged=True))
    assert ALLOWED_ACCOUNT not in message
