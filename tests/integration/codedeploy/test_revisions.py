"""Application revisions through boto3 and the AWS CLI (`aws deploy push` zips a folder into
Forgeline's S3 and registers it; `aws deploy get-application-revision` reads it back)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.codedeploy.resource_helpers import (
    make_application,
    make_group,
    s3_revision,
    unique,
)
from tests.support.errors import code_of

AWS_CLI = str(Path(sys.executable).parent / "aws")


@pytest.fixture(scope="module")
def deploy(forgeline: Any) -> Any:
    return forgeline.client("codedeploy")


@pytest.fixture(scope="module")
def raw(forgeline: Any) -> Any:
    return forgeline.client("codedeploy", parameter_validation=False)


@pytest.fixture
def app(deploy: Any) -> str:
    return make_application(deploy)


def test_register_and_get_an_s3_revision(deploy: Any, app: str) -> None:
    revision = s3_revision("app/v1.zip", eTag='"0123abcd"', version="v-1")
    deploy.register_application_revision(
        applicationName=app, revision=revision, description="first cut"
    )
    answer = deploy.get_application_revision(applicationName=app, revision=revision)
    assert answer["applicationName"] == app
    assert answer["revision"] == {
        "revisionType": "S3",
        "s3Location": {
            "bucket": "bundles",
            "key": "app/v1.zip",
            "bundleType": "zip",
            "version": "v-1",
            "eTag": "0123abcd",
        },
    }
    info = answer["revisionInfo"]
    assert info["description"] == "first cut"
    assert info["deploymentGroups"] == []
    assert "firstUsedTime" not in info and "lastUsedTime" not in info
    assert info["registerTime"].year >= 2024

    # Registered again: one revision, with the new description.
    deploy.register_application_revision(
        applicationName=app, revision=revision, description="second cut"
    )
    assert len(deploy.list_application_revisions(applicationName=app)["revisions"]) == 1
    again = deploy.get_application_revision(applicationName=app, revision=revision)
    assert again["revisionInfo"]["description"] == "second cut"

    other = s3_revision("app/v1.zip", eTag="ffff")
    assert code_of(deploy.get_application_revision, applicationName=app, revision=other) == (
        "RevisionDoesNotExistException"
    )


def test_inline_revisions_for_lambda_and_ecs(deploy: Any) -> None:
    function_app = make_application(deploy, "Lambda")
    content = "version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n"
    revision = {"revisionType": "AppSpecContent", "appSpecContent": {"content": content}}
    deploy.register_application_revision(applicationName=function_app, revision=revision)
    stored = deploy.get_application_revision(applicationName=function_app, revision=revision)
    assert (
        stored["revision"]["appSpecContent"]["sha256"]
        == hashlib.sha256(content.encode()).hexdigest()
    )
    legacy = {"revisionType": "String", "string": {"content": content + "# legacy\n"}}
    deploy.register_application_revision(applicationName=function_app, revision=legacy)
    yaml_in_s3 = s3_revision("appspec.yaml")
    yaml_in_s3["s3Location"]["bundleType"] = "YAML"
    deploy.register_application_revision(applicationName=function_app, revision=yaml_in_s3)
    assert len(deploy.list_application_revisions(applicationName=function_app)["revisions"]) == 3

    # A Server application takes neither inline content nor a bare AppSpec file.
    server_app = make_application(deploy)
    for wrong in (revision, yaml_in_s3):
        assert code_of(
            deploy.register_application_revision, applicationName=server_app, revision=wrong
        ) == ("InvalidRevisionException")


def test_revision_refusals(deploy: Any, raw: Any, app: str) -> None:
    def register(client: Any = deploy, **kwargs: Any) -> str:
        return code_of(client.register_application_revision, **{"applicationName": app, **kwargs})

    assert register(revision={"revisionType": "S3"}) == "InvalidRevisionException"
    assert register(
        revision={"revisionType": "S3", "s3Location": {"bucket": "b", "bundleType": "zip"}}
    ) == ("InvalidRevisionException")
    assert register(
        revision={"revisionType": "GitHub", "gitHubLocation": {"repository": "x", "commitId": "y"}}
    ) == ("InvalidRevisionException")
    assert register(revision=s3_revision("k"), description="d" * 300) == (
        "DescriptionTooLongException"
    )
    assert register(applicationName=unique("missing"), revision=s3_revision("k")) == (
        "ApplicationDoesNotExistException"
    )
    assert code_of(raw.register_application_revision, applicationName=app) == (
        "RevisionRequiredException"
    )
    assert register(
        raw,
        revision={
            "revisionType": "S3",
            "s3Location": {"bucket": "b", "key": "k", "bundleType": "rar"},
        },
    ) == ("InvalidRevisionException")
    assert register(raw, revision={"revisionType": "FTP"}) == "InvalidRevisionException"
    assert code_of(raw.register_application_revision, revision=s3_revision("k")) == (
        "ApplicationNameRequiredException"
    )


def test_github_revisions_are_stored(deploy: Any, app: str) -> None:
    revision = {
        "revisionType": "GitHub",
        "gitHubLocation": {"repository": "octo/site", "commitId": "a" * 40},
    }
    deploy.register_application_revision(applicationName=app, revision=revision)
    assert (
        deploy.get_application_revision(applicationName=app, revision=revision)["revision"]
        == revision
    )


def test_batch_get_reports_unknown_revisions(deploy: Any, app: str) -> None:
    known = s3_revision("known.zip")
    deploy.register_application_revision(applicationName=app, revision=known)
    unknown = s3_revision("unknown.zip")
    answer = deploy.batch_get_application_revisions(applicationName=app, revisions=[unknown, known])
    assert answer["applicationName"] == app
    assert [r["revisionLocation"]["s3Location"]["key"] for r in answer["revisions"]] == [
        "known.zip"
    ]
    assert "revisionInfo" not in answer["revisions"][0]
    assert answer["revisions"][0]["genericRevisionInfo"]["deploymentGroups"] == []
    assert "unknown.zip" in answer["errorMessage"]
    assert code_of(deploy.batch_get_application_revisions, applicationName=app, revisions=[]) == (
        "RevisionRequiredException"
    )


def test_list_sorts_filters_and_pages(deploy: Any, app: str, server_settings: None) -> None:
    from forgeline.codedeploy.ops.lookups import require_application, require_deployment_group
    from forgeline.codedeploy.revisions import record_revision_use
    from forgeline.core.db import session_scope, utcnow

    keys = ["web/a.zip", "web/b.zip", "api/c.zip"]
    for key in keys:
        deploy.register_application_revision(applicationName=app, revision=s3_revision(key))
        time.sleep(0.01)  # distinct registration times
    deploy.register_application_revision(
        applicationName=app, revision=s3_revision("other.zip", bucket="elsewhere")
    )
    group = make_group(deploy, app)
    # A deployment starting with web/b.zip records its use (as the deployment driver does);
    # one naming a revision never registered registers it.
    with session_scope() as session:
        application = require_application(session, "000000000000", "us-east-1", app)
        target = require_deployment_group(session, application, group)
        record_revision_use(session, application, s3_revision("web/b.zip"), target, utcnow())
        record_revision_use(session, application, s3_revision("new/d.zip"), target, utcnow())

    def listed(**kwargs: Any) -> list[str]:
        pages = deploy.get_paginator("list_application_revisions").paginate(
            applicationName=app, **kwargs
        )
        return [r["s3Location"]["key"] for page in pages for r in page["revisions"]]

    assert listed(s3Bucket="bundles") == ["web/a.zip", "web/b.zip", "api/c.zip", "new/d.zip"]
    assert listed(s3Bucket="bundles", sortOrder="descending") == [
        "new/d.zip",
        "api/c.zip",
        "web/b.zip",
        "web/a.zip",
    ]
    assert listed(s3Bucket="bundles", s3KeyPrefix="web/") == ["web/a.zip", "web/b.zip"]
    assert listed(deployed="include") == ["web/b.zip", "new/d.zip"]
    assert listed(deployed="exclude", s3Bucket="bundles") == ["web/a.zip", "api/c.zip"]
    assert listed(sortBy="lastUsedTime", sortOrder="descending", deployed="include") == [
        "new/d.zip",
        "web/b.zip",
    ]
    used = deploy.get_application_revision(applicationName=app, revision=s3_revision("web/b.zip"))
    assert used["revisionInfo"]["deploymentGroups"] == [group]
    assert "firstUsedTime" in used["revisionInfo"] and "lastUsedTime" in used["revisionInfo"]

    assert code_of(deploy.list_application_revisions, applicationName=app, s3KeyPrefix="web/") == (
        "BucketNameFilterRequiredException"
    )
    assert code_of(deploy.list_application_revisions, applicationName=app, s3Bucket="x") == (
        "InvalidBucketNameFilterException"
    )
    assert code_of(deploy.list_application_revisions, applicationName=app, sortBy="size") == (
        "InvalidSortByException"
    )
    assert code_of(deploy.list_application_revisions, applicationName=app, sortOrder="up") == (
        "InvalidSortOrderException"
    )
    assert code_of(deploy.list_application_revisions, applicationName=app, deployed="maybe") == (
        "InvalidDeployedStateFilterException"
    )


def test_list_pages_through_many_revisions(deploy: Any, app: str) -> None:
    keys = [f"many/{i:03d}.zip" for i in range(120)]
    for key in keys:
        deploy.register_application_revision(applicationName=app, revision=s3_revision(key))
    first = deploy.list_application_revisions(applicationName=app)
    assert len(first["revisions"]) == 100 and "nextToken" in first
    pages = deploy.get_paginator("list_application_revisions").paginate(applicationName=app)
    listed = [r["s3Location"]["key"] for page in pages for r in page["revisions"]]
    assert sorted(listed) == keys and len(set(listed)) == 120
    assert code_of(
        deploy.list_application_revisions,
        applicationName=app,
        sortOrder="descending",
        nextToken=first["nextToken"],
    ) == ("InvalidNextTokenException")


# -- the AWS CLI --------------------------------------------------------------------------
@pytest.fixture
def aws(forgeline: Any, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`aws <args>` against the server; `aws deploy push` makes its own S3 client, which
    AWS_ENDPOINT_URL points at the server too (path-style, as Forgeline's S3 answers)."""
    config = tmp_path / "aws-config"
    config.write_text("[profile forgeline]\ns3 =\n    addressing_style = path\n")
    env = dict(
        os.environ,
        AWS_SHARED_CREDENTIALS_FILE=str(forgeline.credentials_file),
        AWS_CONFIG_FILE=str(config),
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=forgeline.url,
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(name, None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AWS_CLI, "--profile", "forgeline", "--endpoint-url", forgeline.url, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_aws_deploy_push_uploads_and_registers_a_folder(
    forgeline: Any,
    deploy: Any,
    aws: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    app = make_application(deploy)
    bucket = unique("revisions")
    s3 = forgeline.client("s3", s3={"addressing_style": "path"})
    s3.create_bucket(Bucket=bucket)
    source = tmp_path / "site"
    (source / "scripts").mkdir(parents=True)
    (source / "appspec.yml").write_text(
        "version: 0.0\nos: linux\nfiles:\n  - source: index.html\n    destination: /srv/site\n"
    )
    (source / "index.html").write_text("<h1>v1</h1>\n")
    (source / "scripts" / "start.sh").write_text("#!/bin/sh\necho started\n")

    pushed = aws(
        "deploy",
        "push",
        "--application-name",
        app,
        "--s3-location",
        f"s3://{bucket}/site/v1.zip",
        "--source",
        str(source),
        "--description",
        "pushed by the CLI",
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "aws deploy create-deployment" in pushed.stdout

    # The bundle is in Forgeline's S3, zipped with the folder's files.
    head = s3.head_object(Bucket=bucket, Key="site/v1.zip")
    etag = head["ETag"].strip('"')
    body = s3.get_object(Bucket=bucket, Key="site/v1.zip")["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as bundle:
        assert sorted(bundle.namelist()) == ["appspec.yml", "index.html", "scripts/start.sh"]

    listed = deploy.list_application_revisions(applicationName=app)["revisions"]
    assert listed == [
        {
            "revisionType": "S3",
            "s3Location": {
                "bucket": bucket,
                "key": "site/v1.zip",
                "bundleType": "zip",
                "eTag": etag,
            },
        }
    ]

    got = aws(
        "deploy",
        "get-application-revision",
        "--application-name",
        app,
        "--s3-location",
        f"bucket={bucket},key=site/v1.zip,bundleType=zip,eTag={etag}",
        "--output",
        "json",
    )
    assert got.returncode == 0, got.stderr
    answer = json.loads(got.stdout)
    assert answer["applicationName"] == app
    assert answer["revisionInfo"]["description"] == "pushed by the CLI"
    assert answer["revision"]["s3Location"]["eTag"] == etag

    missing = aws(
        "deploy",
        "get-application-revision",
        "--application-name",
        app,
        "--s3-location",
        f"bucket={bucket},key=site/v2.zip,bundleType=zip",
    )
    assert missing.returncode != 0 and "RevisionDoesNotExistException" in missing.stderr
