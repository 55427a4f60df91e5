"""CodeBuild projects over HTTP with boto3: CRUD, update semantics, listing, visibility,
source credentials, resource policies, the semantic input checks and account isolation."""

from __future__ import annotations

import concurrent.futures
import copy
import datetime as dt
import json
import uuid
from typing import Any

import pytest
import sqlalchemy
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/service-role/codebuild-role"
INLINE_BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n"


def unique(prefix: str = "proj") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def project_params(name: str, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "name": name,
        "source": {"type": "NO_SOURCE", "buildspec": INLINE_BUILDSPEC},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        "serviceRole": ROLE,
    }
    params.update(overrides)
    return params


def error_of(call: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    response = caught.value.response
    return (
        response["Error"]["Code"],
        response["Error"].get("Message", ""),
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


@pytest.fixture(scope="module")
def codebuild(forgeline: Any) -> Any:
    return forgeline.client("codebuild")


def new_account(forgeline: Any, name: str) -> tuple[str, tuple[str, str]]:
    result = forgeline.cli("accounts", "create", "--name", name)
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    return created["accountId"], (created["accessKeyId"], created["secretAccessKey"])


@pytest.fixture(scope="module")
def fresh(forgeline: Any) -> tuple[str, Any]:
    """A client of an account of its own, so listings hold only this module's projects."""
    account_id, credentials = new_account(forgeline, f"projects-{uuid.uuid4().hex[:6]}")
    return account_id, forgeline.client("codebuild", credentials=credentials)


# -- create / read -------------------------------------------------------------------------
def test_create_fills_aws_defaults(codebuild: Any) -> None:
    name = unique()
    project = codebuild.create_project(**project_params(name, description="first"))["project"]
    arn = project["arn"]
    account_id = arn.split(":")[4]
    assert arn == f"arn:aws:codebuild:us-east-1:{account_id}:project/{name}"
    assert project["name"] == name and project["description"] == "first"
    assert project["timeoutInMinutes"] == 60
    assert project["queuedTimeoutInMinutes"] == 480
    assert project["badge"] == {"badgeEnabled": False}
    assert project["projectVisibility"] == "PRIVATE"
    assert project["logsConfig"] == {
        "cloudWatchLogs": {"status": "ENABLED"},
        "s3Logs": {"status": "DISABLED", "encryptionDisabled": False},
    }
    assert project["cache"] == {"type": "NO_CACHE"}
    assert project["environment"]["privilegedMode"] is False
    assert project["environment"]["imagePullCredentialsType"] == "CODEBUILD"
    assert project["environment"]["environmentVariables"] == []
    assert project["encryptionKey"] == f"arn:aws:kms:us-east-1:{account_id}:alias/aws/s3"
    assert project["secondarySources"] == [] and project["secondaryArtifacts"] == []
    assert project["source"] == {
        "type": "NO_SOURCE",
        "buildspec": INLINE_BUILDSPEC,
        "insecureSsl": False,
    }
    assert project["artifacts"] == {"type": "NO_ARTIFACTS"}
    assert isinstance(project["created"], dt.datetime)
    assert project["created"] == project["lastModified"]

    got = codebuild.batch_get_projects(names=[name])
    assert got["projects"] == [project]
    assert got["projectsNotFound"] == []


def test_create_full_project_keeps_every_member(codebuild: Any, forgeline: Any) -> None:
    name = unique()
    params = project_params(
        name,
        source={
            "type": "CODECOMMIT",
            "location": f"{forgeline.url}/v1/repos/some-repo",
            "gitCloneDepth": 1,
            "gitSubmodulesConfig": {"fetchSubmodules": True},
            "buildspec": "ci/buildspec.yml",
        },
        secondarySources=[
            {"type": "S3", "location": "bucket/deps.zip", "sourceIdentifier": "deps"},
        ],
        sourceVersion="refs/heads/main",
        secondarySourceVersions=[{"sourceIdentifier": "deps", "sourceVersion": "v1"}],
        artifacts={"type": "S3", "location": "out-bucket", "path": "builds", "packaging": "ZIP"},
        secondaryArtifacts=[
            {"type": "S3", "location": "reports-bucket", "artifactIdentifier": "reports"}
        ],
        cache={"type": "LOCAL", "modes": ["LOCAL_SOURCE_CACHE", "LOCAL_CUSTOM_CACHE"]},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "forgeline/busybox",
            "computeType": "BUILD_GENERAL1_MEDIUM",
            # True only where the operator allows it: test_privileges.py.
            "privilegedMode": False,
            "environmentVariables": [
                {"name": "PLAIN", "value": "1"},
                {"name": "PARAM", "value": "/app/param", "type": "PARAMETER_STORE"},
                {"name": "SECRET", "value": "app/secret:key", "type": "SECRETS_MANAGER"},
            ],
        },
        timeoutInMinutes=2160,
        queuedTimeoutInMinutes=5,
        tags=[{"key": "team", "value": "ci"}, {"key": "empty", "value": ""}],
        badgeEnabled=True,
        logsConfig={
            "cloudWatchLogs": {"status": "ENABLED", "groupName": "g", "streamName": "s"},
            "s3Logs": {"status": "ENABLED", "location": "log-bucket/prefix"},
        },
        buildBatchConfig={"serviceRole": ROLE, "restrictions": {"maximumBuildsAllowed": 5}},
        concurrentBuildLimit=3,
        autoRetryLimit=2,
    )
    project = codebuild.create_project(**params)["project"]
    assert project["source"]["gitCloneDepth"] == 1
    assert project["source"]["gitSubmodulesConfig"] == {"fetchSubmodules": True}
    assert project["secondarySources"][0]["sourceIdentifier"] == "deps"
    assert project["secondarySourceVersions"] == [
        {"sourceIdentifier": "deps", "sourceVersion": "v1"}
    ]
    assert project["sourceVersion"] == "refs/heads/main"
    assert project["artifacts"] == {
        "type": "S3",
        "location": "out-bucket",
        "path": "builds",
        "packaging": "ZIP",
        "namespaceType": "NONE",
        "encryptionDisabled": False,
        "name": name,
    }
    assert project["secondaryArtifacts"][0]["artifactIdentifier"] == "reports"
    assert project["cache"]["modes"] == ["LOCAL_SOURCE_CACHE", "LOCAL_CUSTOM_CACHE"]
    variables = project["environment"]["environmentVariables"]
    assert [v["type"] for v in variables] == ["PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER"]
    assert project["environment"]["privilegedMode"] is False
    assert project["timeoutInMinutes"] == 2160 and project["queuedTimeoutInMinutes"] == 5
    assert project["tags"] == [{"key": "team", "value": "ci"}, {"key": "empty", "value": ""}]
    assert project["badge"]["badgeEnabled"] is True
    assert "/badges?uuid=" in project["badge"]["badgeRequestUrl"]
    assert project["logsConfig"]["s3Logs"]["location"] == "log-bucket/prefix"
    assert project["buildBatchConfig"]["timeoutInMins"] == 2160
    assert project["buildBatchConfig"]["restrictions"] == {"maximumBuildsAllowed": 5}
    assert project["concurrentBuildLimit"] == 3 and project["autoRetryLimit"] == 2
    assert codebuild.batch_get_projects(names=[name])["projects"] == [project]


def test_git_provider_sources_get_status_reporting_defaults(codebuild: Any) -> None:
    name = unique()
    project = codebuild.create_project(
        **project_params(
            name,
            source={"type": "GITHUB", "location": "https://github.com/octo/hello.git"},
            secondarySources=[
                {
                    "type": "BITBUCKET",
                    "location": "https://bitbucket.org/team/lib.git",
                    "sourceIdentifier": "lib",
                    "reportBuildStatus": True,
                }
            ],
        )
    )["project"]
    assert project["source"] == {
        "type": "GITHUB",
        "location": "https://github.com/octo/hello.git",
        "insecureSsl": False,
        "reportBuildStatus": False,
    }
    assert project["secondarySources"][0]["reportBuildStatus"] is True


def test_duplicate_name_is_already_exists(codebuild: Any) -> None:
    name = unique()
    arn = codebuild.create_project(**project_params(name))["project"]["arn"]
    code, message, status = error_of(codebuild.create_project, **project_params(name))
    assert (code, status) == ("ResourceAlreadyExistsException", 400)
    assert message == f"Project already exists: {arn}"


def test_batch_get_by_name_and_arn_with_not_found(codebuild: Any) -> None:
    a, b = unique(), unique()
    arn_a = codebuild.create_project(**project_params(a))["project"]["arn"]
    codebuild.create_project(**project_params(b))
    missing = unique("missing")
    other_account = "111111111111" if ":000000000000:" in arn_a else "000000000000"
    other_account_arn = arn_a.replace(arn_a.split(":")[4], other_account)
    got = codebuild.batch_get_projects(names=[arn_a, missing, b, other_account_arn])
    assert [p["name"] for p in got["projects"]] == [a, b]
    assert got["projectsNotFound"] == [missing, other_account_arn]


# -- update --------------------------------------------------------------------------------
def test_update_changes_only_given_members(codebuild: Any) -> None:
    name = unique()
    created = codebuild.create_project(
        **project_params(
            name,
            description="before",
            tags=[{"key": "a", "value": "1"}],
            secondarySources=[
                {"type": "S3", "location": "b/one.zip", "sourceIdentifier": "one"},
            ],
            concurrentBuildLimit=2,
        )
    )["project"]
    updated = codebuild.update_project(name=name, description="after", timeoutInMinutes=30)[
        "project"
    ]
    assert updated["description"] == "after" and updated["timeoutInMinutes"] == 30
    unchanged = {k: v for k, v in updated.items() if k not in {"description", "timeoutInMinutes"}}
    expected = {k: v for k, v in created.items() if k not in {"description", "timeoutInMinutes"}}
    unchanged.pop("lastModified")
    expected.pop("lastModified")
    assert unchanged == expected
    assert updated["lastModified"] >= created["lastModified"]

    # A list given replaces the whole list; an empty one removes every entry.
    updated = codebuild.update_project(name=name, secondarySources=[], tags=[])["project"]
    assert updated["secondarySources"] == [] and updated["tags"] == []

    # A structure given replaces the previous one whole, with defaults filled again.
    environment = {
        "type": "ARM_CONTAINER",
        "image": "img",
        "computeType": "BUILD_GENERAL1_LARGE",
    }
    updated = codebuild.update_project(name=updated["arn"], environment=environment)["project"]
    assert updated["environment"] == {
        **environment,
        "environmentVariables": [],
        "privilegedMode": False,
        "imagePullCredentialsType": "CODEBUILD",
    }

    # -1 removes the concurrent build limit.
    updated = codebuild.update_project(name=name, concurrentBuildLimit=-1)["project"]
    assert "concurrentBuildLimit" not in updated
    updated = codebuild.update_project(name=name, badgeEnabled=True)["project"]
    assert updated["badge"]["badgeEnabled"] is True
    updated = codebuild.update_project(name=name, badgeEnabled=False)["project"]
    assert updated["badge"] == {"badgeEnabled": False}
    assert codebuild.batch_get_projects(names=[name])["projects"] == [updated]


def test_update_checks_the_merged_project(codebuild: Any) -> None:
    name = unique()
    codebuild.create_project(**project_params(name))
    # Switching only the source to CodePipeline leaves NO_ARTIFACTS: AWS refuses it.
    code, message, _ = error_of(
        codebuild.update_project, name=name, source={"type": "CODEPIPELINE"}
    )
    assert code == "InvalidInputException"
    assert "both sourceType, and artifactType must be set to: CODEPIPELINE" in message
    updated = codebuild.update_project(
        name=name, source={"type": "CODEPIPELINE"}, artifacts={"type": "CODEPIPELINE"}
    )["project"]
    assert updated["source"]["type"] == "CODEPIPELINE"


def test_update_missing_project_is_not_found(codebuild: Any) -> None:
    name = unique("missing")
    code, message, _ = error_of(codebuild.update_project, name=name, description="x")
    assert code == "ResourceNotFoundException"
    assert message.startswith("Project cannot be found: arn:aws:codebuild:us-east-1:")
    assert message.endswith(f":project/{name}")


# -- delete --------------------------------------------------------------------------------
def test_delete_is_idempotent(codebuild: Any) -> None:
    name = unique()
    arn = codebuild.create_project(**project_params(name))["project"]["arn"]
    codebuild.put_resource_policy(resourceArn=arn, policy=json.dumps({"Statement": []}))
    assert codebuild.delete_project(name=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert codebuild.batch_get_projects(names=[name])["projectsNotFound"] == [name]
    codebuild.delete_project(name=name)  # gone already: still a success, as in AWS
    # Its policy went with it, and the name can be used again.
    recreated = codebuild.create_project(**project_params(name))["project"]
    assert recreated["arn"] == arn
    assert error_of(codebuild.get_resource_policy, resourceArn=arn)[0] == (
        "ResourceNotFoundException"
    )
    codebuild.delete_project(name=arn)
    assert codebuild.batch_get_projects(names=[name])["projectsNotFound"] == [name]


# -- list ----------------------------------------------------------------------------------
def test_list_sorts_and_pages(fresh: tuple[str, Any]) -> None:
    _, client = fresh
    assert client.list_projects()["projects"] == []
    names = [f"lst-{i:03d}-{uuid.uuid4().hex[:4]}" for i in range(105)]
    for name in reversed(names):
        client.create_project(**project_params(name))
    # The first created (last in name order) is modified last.
    client.update_project(name=names[0], description="touched")

    first = client.list_projects()
    assert first["projects"] == names[:100] and first["nextToken"]
    second = client.list_projects(nextToken=first["nextToken"])
    assert second["projects"] == names[100:] and "nextToken" not in second

    everything = [
        name
        for page in client.get_paginator("list_projects").paginate(
            sortBy="NAME", sortOrder="DESCENDING"
        )
        for name in page["projects"]
    ]
    assert everything == list(reversed(names))

    by_created = [
        name
        for page in client.get_paginator("list_projects").paginate(sortBy="CREATED_TIME")
        for name in page["projects"]
    ]
    assert set(by_created) == set(names)
    assert by_created.index(names[104]) < by_created.index(names[0])

    newest_change = client.list_projects(sortBy="LAST_MODIFIED_TIME", sortOrder="DESCENDING")
    assert newest_change["projects"][0] == names[0]

    code, _, _ = error_of(client.list_projects, nextToken="forged-token")
    assert code == "InvalidInputException"
    # A token belongs to its query: another sort order refuses it.
    code, _, _ = error_of(
        client.list_projects, sortOrder="DESCENDING", nextToken=first["nextToken"]
    )
    assert code == "InvalidInputException"

    assert client.list_shared_projects()["projects"] == []


# -- visibility ----------------------------------------------------------------------------
def test_project_visibility(codebuild: Any) -> None:
    name = unique()
    arn = codebuild.create_project(**project_params(name))["project"]["arn"]
    public = codebuild.update_project_visibility(
        projectArn=arn,
        projectVisibility="PUBLIC_READ",
        resourceAccessRole="arn:aws:iam::123456789012:role/public-read",
    )
    assert public["projectArn"] == arn and public["projectVisibility"] == "PUBLIC_READ"
    alias = public["publicProjectAlias"]
    project = codebuild.batch_get_projects(names=[name])["projects"][0]
    assert project["projectVisibility"] == "PUBLIC_READ"
    assert project["publicProjectAlias"] == alias
    assert project["resourceAccessRole"] == "arn:aws:iam::123456789012:role/public-read"

    private = codebuild.update_project_visibility(projectArn=arn, projectVisibility="PRIVATE")
    assert private["projectVisibility"] == "PRIVATE"
    again = codebuild.update_project_visibility(projectArn=arn, projectVisibility="PUBLIC_READ")
    assert again["publicProjectAlias"] == alias

    missing = arn.replace(name, unique("missing"))
    code, _, _ = error_of(
        codebuild.update_project_visibility, projectArn=missing, projectVisibility="PRIVATE"
    )
    assert code == "ResourceNotFoundException"


# -- resource policies ---------------------------------------------------------------------
def test_resource_policies(codebuild: Any) -> None:
    name = unique()
    arn = codebuild.create_project(**project_params(name))["project"]["arn"]
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
                    "Action": ["codebuild:BatchGetProjects"],
                    "Resource": arn,
                }
            ],
        }
    )
    assert codebuild.put_resource_policy(resourceArn=arn, policy=policy)["resourceArn"] == arn
    assert codebuild.get_resource_policy(resourceArn=arn)["policy"] == policy
    replaced = json.dumps({"Version": "2012-10-17", "Statement": []})
    codebuild.put_resource_policy(resourceArn=arn, policy=replaced)
    assert codebuild.get_resource_policy(resourceArn=arn)["policy"] == replaced

    codebuild.delete_resource_policy(resourceArn=arn)
    codebuild.delete_resource_policy(resourceArn=arn)  # idempotent
    code, _, _ = error_of(codebuild.get_resource_policy, resourceArn=arn)
    assert code == "ResourceNotFoundException"

    code, message, _ = error_of(codebuild.put_resource_policy, resourceArn=arn, policy="{not json")
    assert (code, message) == ("InvalidInputException", "Invalid input: policy is not valid JSON")
    code, _, _ = error_of(codebuild.put_resource_policy, resourceArn=arn, policy='{"a": 1}')
    assert code == "InvalidInputException"
    code, _, _ = error_of(codebuild.put_resource_policy, resourceArn="not-an-arn", policy=policy)
    assert code == "InvalidInputException"
    missing = arn.replace(name, unique("missing"))
    code, _, _ = error_of(codebuild.put_resource_policy, resourceArn=missing, policy=policy)
    assert code == "ResourceNotFoundException"


# -- source credentials --------------------------------------------------------------------
def test_source_credentials(fresh: tuple[str, Any], forgeline: Any) -> None:
    account_id, client = fresh
    github_arn = f"arn:aws:codebuild:us-east-1:{account_id}:token/github"
    made = client.import_source_credentials(
        serverType="GITHUB", authType="PERSONAL_ACCESS_TOKEN", token="ghp_first"
    )
    assert made["arn"] == github_arn
    # Importing again overwrites by default (AWS: shouldOverwrite defaults to true)...
    client.import_source_credentials(
        serverType="GITHUB", authType="PERSONAL_ACCESS_TOKEN", token="ghp_second"
    )
    # ...and is refused when told not to.
    code, _, _ = error_of(
        client.import_source_credentials,
        serverType="GITHUB",
        authType="PERSONAL_ACCESS_TOKEN",
        token="ghp_third",
        shouldOverwrite=False,
    )
    assert code == "ResourceAlreadyExistsException"
    client.import_source_credentials(
        serverType="BITBUCKET", authType="BASIC_AUTH", token="app-password", username="me"
    )
    secret = f"arn:aws:secretsmanager:us-east-1:{account_id}:secret:gitlab-token"
    client.import_source_credentials(serverType="GITLAB", authType="SECRETS_MANAGER", token=secret)

    infos = client.list_source_credentials()["sourceCredentialsInfos"]
    assert infos == [
        {
            "arn": f"arn:aws:codebuild:us-east-1:{account_id}:token/bitbucket",
            "serverType": "BITBUCKET",
            "authType": "BASIC_AUTH",
        },
        {"arn": github_arn, "serverType": "GITHUB", "authType": "PERSONAL_ACCESS_TOKEN"},
        {
            "arn": f"arn:aws:codebuild:us-east-1:{account_id}:token/gitlab",
            "serverType": "GITLAB",
            "authType": "SECRETS_MANAGER",
            "resource": secret,
        },
    ]
    # Tokens are never returned and never stored in the clear.
    assert "ghp_second" not in json.dumps(infos)
    engine = sqlalchemy.create_engine(forgeline.database_url)
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                sqlalchemy.text(
                    "SELECT token_encrypted FROM build_source_credentials WHERE arn = :arn"
                ),
                {"arn": github_arn},
            ).scalar_one()
    finally:
        engine.dispose()
    assert "ghp_second" not in stored and stored.startswith("gAAAA")  # a Fernet token

    assert client.delete_source_credentials(arn=github_arn)["arn"] == github_arn
    code, _, _ = error_of(client.delete_source_credentials, arn=github_arn)
    assert code == "ResourceNotFoundException"
    assert {
        i["serverType"] for i in client.list_source_credentials()["sourceCredentialsInfos"]
    } == {
        "BITBUCKET",
        "GITLAB",
    }


@pytest.mark.parametrize(
    "params",
    [
        {"serverType": "GITHUB", "authType": "OAUTH", "token": "t"},
        {"serverType": "GITHUB", "authType": "BASIC_AUTH", "token": "t", "username": "u"},
        {"serverType": "BITBUCKET", "authType": "BASIC_AUTH", "token": "t"},
        {
            "serverType": "GITHUB",
            "authType": "PERSONAL_ACCESS_TOKEN",
            "token": "t",
            "username": "u",
        },
        {"serverType": "GITHUB", "authType": "CODECONNECTIONS", "token": "not-an-arn"},
        {"serverType": "GITLAB", "authType": "SECRETS_MANAGER", "token": "plain"},
    ],
    ids=["oauth", "basic-not-bitbucket", "basic-no-user", "user-not-basic", "conn", "secret"],
)
def test_source_credentials_invalid(codebuild: Any, params: dict[str, Any]) -> None:
    code, message, status = error_of(codebuild.import_source_credentials, **params)
    assert (code, status) == ("InvalidInputException", 400)
    assert message.startswith("Invalid input:")


# -- semantic checks -------------------------------------------------------------------------
NO_SOURCE = {"type": "NO_SOURCE", "buildspec": INLINE_BUILDSPEC}
S3_SOURCE = {"type": "S3", "location": "bucket/src.zip"}

INVALID_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "codecommit-no-location",
        {"source": {"type": "CODECOMMIT"}},
        "Project source location is required",
    ),
    ("github-no-location", {"source": {"type": "GITHUB"}}, "Project source location is required"),
    ("s3-no-location", {"source": {"type": "S3"}}, "Project source location is required"),
    (
        "s3-no-key",
        {"source": {"type": "S3", "location": "bucket-only"}},
        "must be <bucket-name>/<object-key>",
    ),
    (
        "codecommit-not-url",
        {"source": {"type": "CODECOMMIT", "location": "my-repo"}},
        "HTTPS clone URL",
    ),
    (
        "codecommit-not-repo-url",
        {"source": {"type": "CODECOMMIT", "location": "https://example.com/x"}},
        "/v1/repos/",
    ),
    ("no-source-no-buildspec", {"source": {"type": "NO_SOURCE"}}, "buildspec is required"),
    (
        "no-source-with-location",
        {"source": {**NO_SOURCE, "location": "bucket/key"}},
        "location must be empty",
    ),
    (
        "report-status-s3",
        {"source": {**S3_SOURCE, "reportBuildStatus": True}},
        "reportBuildStatus is only valid",
    ),
    (
        "auth-without-resource",
        {
            "source": {
                "type": "GITHUB",
                "location": "https://github.com/o/r.git",
                "auth": {"type": "CODECONNECTIONS"},
            }
        },
        "needs the connection or secret ARN",
    ),
    (
        "submodules-s3",
        {"source": {**S3_SOURCE, "gitSubmodulesConfig": {"fetchSubmodules": True}}},
        "gitSubmodulesConfig is not valid",
    ),
    (
        "pipeline-source-only",
        {"source": {"type": "CODEPIPELINE"}},
        "both sourceType, and artifactType must be set to: CODEPIPELINE",
    ),
    (
        "pipeline-artifacts-only",
        {"artifacts": {"type": "CODEPIPELINE"}},
        "both sourceType, and artifactType must be set to: CODEPIPELINE",
    ),
    (
        "secondary-no-identifier",
        {"secondarySources": [S3_SOURCE]},
        "identifier must contain only alphanumeric characters and underscores",
    ),
    (
        "secondary-bad-identifier",
        {"secondarySources": [{**S3_SOURCE, "sourceIdentifier": "has-dash"}]},
        "identifier must contain only alphanumeric characters and underscores",
    ),
    (
        "secondary-duplicate",
        {
            "secondarySources": [
                {**S3_SOURCE, "sourceIdentifier": "same"},
                {**S3_SOURCE, "sourceIdentifier": "same"},
            ]
        },
        "duplicate source identifier: same",
    ),
    (
        "secondary-version-unknown",
        {"secondarySourceVersions": [{"sourceIdentifier": "nope", "sourceVersion": "v"}]},
        "unknown source identifier: nope",
    ),
    ("s3-artifacts-no-location", {"artifacts": {"type": "S3"}}, "artifacts location is required"),
    (
        "s3-artifacts-path-in-location",
        {"artifacts": {"type": "S3", "location": "bucket/prefix"}},
        "must be a bucket name",
    ),
    (
        "no-artifacts-location",
        {"artifacts": {"type": "NO_ARTIFACTS", "location": "bucket"}},
        "Invalid artifacts: artifact type NO_ARTIFACTS should have null location",
    ),
    (
        "no-artifacts-name",
        {"artifacts": {"type": "NO_ARTIFACTS", "name": "out"}},
        "Invalid artifacts: artifact type NO_ARTIFACTS should have null output name",
    ),
    (
        "secondary-artifact-no-identifier",
        {"secondaryArtifacts": [{"type": "S3", "location": "b"}]},
        "identifier must contain only alphanumeric characters",
    ),
    (
        "secondary-artifact-duplicate",
        {
            "secondaryArtifacts": [
                {"type": "S3", "location": "b", "artifactIdentifier": "x"},
                {"type": "S3", "location": "c", "artifactIdentifier": "x"},
            ]
        },
        "duplicate artifact identifier: x",
    ),
    (
        "lambda-env-general-compute",
        {
            "environment": {
                "type": "LINUX_LAMBDA_CONTAINER",
                "image": "i",
                "computeType": "BUILD_GENERAL1_SMALL",
            }
        },
        "requires a BUILD_LAMBDA_* compute type",
    ),
    (
        "lambda-compute-container-env",
        {
            "environment": {
                "type": "LINUX_CONTAINER",
                "image": "i",
                "computeType": "BUILD_LAMBDA_1GB",
            }
        },
        "requires environment type LINUX_LAMBDA_CONTAINER or ARM_LAMBDA_CONTAINER",
    ),
    (
        "lambda-privileged",
        {
            "environment": {
                "type": "ARM_LAMBDA_CONTAINER",
                "image": "i",
                "computeType": "BUILD_LAMBDA_2GB",
                "privilegedMode": True,
            }
        },
        "privilegedMode is not supported",
    ),
    (
        "parameter-store-empty",
        {
            "environment": {
                "type": "LINUX_CONTAINER",
                "image": "i",
                "computeType": "BUILD_GENERAL1_SMALL",
                "environmentVariables": [{"name": "P", "value": "", "type": "PARAMETER_STORE"}],
            }
        },
        "of type PARAMETER_STORE needs",
    ),
    (
        "reserved-variable-prefix",
        {
            "environment": {
                "type": "LINUX_CONTAINER",
                "image": "i",
                "computeType": "BUILD_GENERAL1_SMALL",
                "environmentVariables": [{"name": "CODEBUILD_MINE", "value": "x"}],
            }
        },
        "No user environment variables can start with CODEBUILD_",
    ),
    (
        "registry-credential-codebuild",
        {
            "environment": {
                "type": "LINUX_CONTAINER",
                "image": "private/img",
                "computeType": "BUILD_GENERAL1_SMALL",
                "registryCredential": {
                    "credential": "arn:aws:secretsmanager:us-east-1:123456789012:secret:r",
                    "credentialProvider": "SECRETS_MANAGER",
                },
            }
        },
        "requires imagePullCredentialsType SERVICE_ROLE",
    ),
    ("s3-cache-no-location", {"cache": {"type": "S3"}}, "cache location is required"),
    ("local-cache-no-modes", {"cache": {"type": "LOCAL"}}, "cache modes are required"),
    (
        "modes-without-local",
        {"cache": {"type": "S3", "location": "b/p", "modes": ["LOCAL_SOURCE_CACHE"]}},
        "only valid for cache type LOCAL",
    ),
    (
        "s3-logs-no-location",
        {"logsConfig": {"s3Logs": {"status": "ENABLED"}}},
        "S3 logs location is required",
    ),
    ("concurrency-zero", {"concurrentBuildLimit": 0}, "concurrentBuildLimit must be at least 1"),
    (
        "concurrency-over-account",
        {"concurrentBuildLimit": 1001},
        "cannot exceed the account-level concurrent build limit of 1000",
    ),
    ("auto-retry", {"autoRetryLimit": 11}, "autoRetryLimit must be between 0 and 10"),
    ("service-role", {"serviceRole": "arn:aws:s3:::bucket"}, "Invalid service role"),
    (
        "vpc-without-subnets",
        {"vpcConfig": {"vpcId": "vpc-1"}},
        "subnets and securityGroupIds are required",
    ),
    (
        "file-system-identifier",
        {
            "fileSystemLocations": [
                {"type": "EFS", "location": "fs:/", "mountPoint": "/mnt", "identifier": "a-b"}
            ]
        },
        "identifier must contain only alphanumeric characters",
    ),
    (
        "batch-timeout",
        {"buildBatchConfig": {"serviceRole": ROLE, "timeoutInMins": 3000}},
        "timeoutInMins must be between 5 and 2160",
    ),
    (
        "duplicate-tag",
        {"tags": [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]},
        "duplicate tag key: k",
    ),
    ("reserved-tag", {"tags": [{"key": "aws:owner", "value": "x"}]}, "reserved"),
]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [(case[1], case[2]) for case in INVALID_CASES],
    ids=[case[0] for case in INVALID_CASES],
)
def test_invalid_projects_are_refused(
    codebuild: Any, overrides: dict[str, Any], expected: str
) -> None:
    name = unique("bad")
    code, message, status = error_of(codebuild.create_project, **project_params(name, **overrides))
    assert (code, status) == ("InvalidInputException", 400), message
    assert expected in message
    assert codebuild.batch_get_projects(names=[name])["projectsNotFound"] == [name]


@pytest.mark.parametrize(
    "overrides",
    [
        {"timeoutInMinutes": 4},
        {"timeoutInMinutes": 2161},
        {"queuedTimeoutInMinutes": 481},
        {"name": "-starts-with-dash"},
        {"name": "x"},
        {"name": "has space"},
        {"secondarySources": [{**S3_SOURCE, "sourceIdentifier": f"s{i}"} for i in range(13)]},
        {"tags": [{"key": f"k{i}", "value": "v"} for i in range(51)]},
    ],
    ids=[
        "timeout-low",
        "timeout-high",
        "queued-high",
        "name-dash",
        "name-short",
        "name-space",
        "secondary-too-many",
        "tags-too-many",
    ],
)
def test_model_constraints_are_invalid_input(forgeline: Any, overrides: dict[str, Any]) -> None:
    # Past the client's own checks, the server refuses with the model's error.
    client = forgeline.client("codebuild", parameter_validation=False)
    params = {**project_params(unique("bad")), **overrides}
    code, _, status = error_of(client.create_project, **params)
    assert (code, status) == ("InvalidInputException", 400)


def test_invalid_update_leaves_project_unchanged(codebuild: Any) -> None:
    name = unique()
    before = codebuild.create_project(**project_params(name))["project"]
    code, _, _ = error_of(codebuild.update_project, name=name, cache={"type": "S3"})
    assert code == "InvalidInputException"
    assert codebuild.batch_get_projects(names=[name])["projects"] == [before]


# -- cache and images -------------------------------------------------------------------------
def test_invalidate_cache_needs_a_project(codebuild: Any) -> None:
    name = unique()
    codebuild.create_project(
        **project_params(name, cache={"type": "S3", "location": "cache-bucket/prefix"})
    )
    codebuild.invalidate_project_cache(projectName=name)
    code, _, _ = error_of(codebuild.invalidate_project_cache, projectName=unique("missing"))
    assert code == "ResourceNotFoundException"


def test_curated_images_answer(codebuild: Any) -> None:
    platforms = codebuild.list_curated_environment_images()["platforms"]
    assert isinstance(platforms, list)


# -- accounts --------------------------------------------------------------------------------
def test_accounts_do_not_see_each_other(forgeline: Any, codebuild: Any) -> None:
    account_b, credentials_b = new_account(forgeline, f"b-{uuid.uuid4().hex[:6]}")
    other = forgeline.client("codebuild", credentials=credentials_b)
    name = unique("shared")
    mine = codebuild.create_project(**project_params(name, description="A"))["project"]
    theirs = other.create_project(**project_params(name, description="B"))["project"]
    assert theirs["arn"] == f"arn:aws:codebuild:us-east-1:{account_b}:project/{name}"
    assert mine["arn"] != theirs["arn"]
    assert codebuild.batch_get_projects(names=[name])["projects"][0]["description"] == "A"
    assert other.batch_get_projects(names=[name])["projects"][0]["description"] == "B"

    only_b = unique("only-b")
    other.create_project(**project_params(only_b))
    assert only_b not in codebuild.list_projects(sortBy="NAME")["projects"]
    # Reaching across by ARN finds nothing and changes nothing.
    b_arn = f"arn:aws:codebuild:us-east-1:{account_b}:project/{only_b}"
    assert codebuild.batch_get_projects(names=[b_arn])["projectsNotFound"] == [b_arn]
    assert error_of(codebuild.update_project, name=b_arn, description="x")[0] == (
        "ResourceNotFoundException"
    )
    codebuild.delete_project(name=b_arn)
    assert other.batch_get_projects(names=[only_b])["projects"][0]["name"] == only_b
    policy = json.dumps({"Statement": []})
    assert error_of(codebuild.put_resource_policy, resourceArn=b_arn, policy=policy)[0] == (
        "ResourceNotFoundException"
    )
    # Another region of the same account is another place too.
    west = forgeline.client("codebuild", region="us-west-2")
    assert west.batch_get_projects(names=[name])["projectsNotFound"] == [name]
    original = copy.deepcopy(mine)
    assert codebuild.batch_get_projects(names=[name])["projects"] == [original]


def test_deleting_a_project_removes_its_webhook(forgeline: Any, codebuild: Any) -> None:
    repository = unique("repo")
    forgeline.client("codecommit").create_repository(repositoryName=repository)
    name = unique()
    source = {"type": "CODECOMMIT", "location": f"{forgeline.url}/v1/repos/{repository}"}
    codebuild.create_project(**project_params(name, source=source))
    assert codebuild.create_webhook(projectName=name)["webhook"]
    assert "webhook" in codebuild.batch_get_projects(names=[name])["projects"][0]

    def webhooks_of(project: str) -> int:
        engine = sqlalchemy.create_engine(forgeline.database_url)
        try:
            with engine.connect() as connection:
                return int(
                    connection.execute(
                        sqlalchemy.text(
                            "SELECT count(*) FROM build_webhooks w JOIN build_projects p "
                            "ON p.id = w.project_id WHERE p.name = :name"
                        ),
                        {"name": project},
                    ).scalar_one()
                    + connection.execute(
                        sqlalchemy.text(
                            "SELECT count(*) FROM build_webhooks w WHERE NOT EXISTS "
                            "(SELECT 1 FROM build_projects p WHERE p.id = w.project_id)"
                        )
                    ).scalar_one()
                )
        finally:
            engine.dispose()

    assert webhooks_of(name) == 1
    codebuild.delete_project(name=name)
    assert webhooks_of(name) == 0  # none left behind, for this project or any other
    codebuild.create_project(**project_params(name, source=source))
    assert "webhook" not in codebuild.batch_get_projects(names=[name])["projects"][0]


def test_concurrent_creates_of_one_name_make_one_project(forgeline: Any) -> None:
    name = unique("race")
    clients = [forgeline.client("codebuild") for _ in range(8)]

    def create(client: Any) -> str:
        try:
            client.create_project(**project_params(name))
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "created"

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(pool.map(create, clients))
    assert outcomes == ["ResourceAlreadyExistsException"] * 7 + ["created"]
