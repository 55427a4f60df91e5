"""Acceptance: a CodeCommit repository pushed with git, built in Docker from a buildspec
that reads secrets, writes test reports, secondary artifacts and a zip; the artifacts
downloaded through the S3 API with boto3 and the AWS CLI; secrets masked in the logs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.builds import (
    build_server,
    context_of,
    create_project,
    output_lines,
    phases_of,
    run_build,
    unique,
    write_tree,
)

AWS_HELPER = "!aws --profile forgeline codecommit credential-helper --ignore-host-check $@"

BUILDSPEC = """version: 0.2
env:
  parameter-store:
    DB_PASSWORD: /acceptance/db-password
  secrets-manager:
    API_TOKEN: acceptance/api:token
    WHOLE_SECRET: acceptance/api
  exported-variables:
    - BUILD_MARK
phases:
  install:
    run-as: codebuild-user
    commands:
      - echo "installing as $(id -un)"
  pre_build:
    commands:
      - echo "password is $DB_PASSWORD and token is $API_TOKEN"
      - echo "whole $WHOLE_SECRET"
      - echo "resolved $CODEBUILD_RESOLVED_SOURCE_VERSION"
      - echo "second source at $CODEBUILD_SRC_DIR_extra has $(cat $CODEBUILD_SRC_DIR_extra/extra.txt)"
  build:
    commands:
      - mkdir -p dist/docs reports
      - cp app/main.txt dist/
      - echo "docs" > dist/docs/readme.md
      - echo "not shipped" > dist/skip.log
      - cp junit.xml reports/
      - export BUILD_MARK="built-$CODEBUILD_BUILD_NUMBER"
reports:
  unit:
    files:
      - reports/junit.xml
    file-format: JUNITXML
artifacts:
  files:
    - '**/*'
  base-directory: dist
  exclude-paths:
    - '*.log'
  secondary-artifacts:
    docs:
      files:
        - dist/docs/readme.md
      discard-paths: yes
"""

JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="calc" tests="3" failures="1" skipped="1" time="0.6">
    <testcase classname="calc.Add" name="adds" time="0.1"/>
    <testcase classname="calc.Add" name="overflows" time="0.2">
      <failure message="expected 3">assert 1 + 1 == 3</failure>
    </testcase>
    <testcase classname="calc.Div" name="by zero" time="0.3"><skipped/></testcase>
  </testsuite>
</testsuites>
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any, tiny_image: str) -> Any:
    yield from build_server(tmp_path_factory, "docker")


def git_env(server: Any, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "AWS_"))}
    env.update(
        HOME=str(home),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="Builder",
        GIT_AUTHOR_EMAIL="builder@example.com",
        GIT_COMMITTER_NAME="Builder",
        GIT_COMMITTER_EMAIL="builder@example.com",
        AWS_SHARED_CREDENTIALS_FILE=str(server.credentials_file),
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_PROFILE="forgeline",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def git(env: dict[str, str], *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [
            "git",
            "-c",
            f"credential.helper={AWS_HELPER}",
            "-c",
            "credential.UseHttpPath=true",
            *args,
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def push_repository(server: Any, tmp_path: Path, files: dict[str, str]) -> tuple[str, str]:
    """A new CodeCommit repository holding `files` on main, pushed with git; returns
    (repository name, commit id)."""
    codecommit = server.client("codecommit")
    name = unique("accept")
    url = codecommit.create_repository(repositoryName=name)["repositoryMetadata"]["cloneUrlHttp"]
    work = tmp_path / name
    write_tree(work, files)
    env = git_env(server, tmp_path / "home")
    (tmp_path / "home").mkdir(exist_ok=True)
    git(env, "init", "-q", "-b", "main", cwd=work)
    git(env, "add", "-A", cwd=work)
    git(env, "commit", "-q", "-m", "the app", cwd=work)
    git(env, "push", "-q", url, "main", cwd=work)
    return name, git(env, "rev-parse", "HEAD", cwd=work)


def test_a_codecommit_build_with_secrets_reports_and_artifacts(server: Any, tmp_path: Path) -> None:
    codebuild = server.client("codebuild")
    ssm = server.client("ssm")
    secrets = server.client("secretsmanager")
    s3 = server.client("s3", s3={"addressing_style": "path"})
    ssm.put_parameter(
        Name="/acceptance/db-password", Value="pa55-w0rd-xyz", Type="SecureString", Overwrite=True
    )
    try:
        secrets.create_secret(
            Name="acceptance/api", SecretString=json.dumps({"token": "tok-98765-abc"})
        )
    except secrets.exceptions.ResourceExistsException:
        pass
    s3.create_bucket(Bucket="acceptance-artifacts")

    repository, commit = push_repository(
        server,
        tmp_path,
        {"buildspec.yml": BUILDSPEC, "app/main.txt": "main program\n", "junit.xml": JUNIT},
    )
    extra_repository, _ = push_repository(server, tmp_path, {"extra.txt": "extra content\n"})
    clone_base = "https://git-codecommit.us-east-1.amazonaws.com/v1/repos"
    project = create_project(
        codebuild,
        source={"type": "CODECOMMIT", "location": f"{clone_base}/{repository}"},
        secondarySources=[
            {
                "type": "CODECOMMIT",
                "location": f"{clone_base}/{extra_repository}",
                "sourceIdentifier": "extra",
            }
        ],
        artifacts={
            "type": "S3",
            "location": "acceptance-artifacts",
            "packaging": "ZIP",
            "name": "app.zip",
            "namespaceType": "BUILD_ID",
        },
        secondaryArtifacts=[
            {
                "type": "S3",
                "location": "acceptance-artifacts",
                "artifactIdentifier": "docs",
                "packaging": "NONE",
                "name": "docs",
            }
        ],
    )

    build = run_build(codebuild, project, sourceVersion="main")
    assert build["buildStatus"] == "SUCCEEDED", [
        (p["phaseType"], p.get("contexts")) for p in build["phases"]
    ]
    assert build["resolvedSourceVersion"] == commit
    lines = output_lines(server, build)
    assert "installing as codebuild-user" in lines
    assert "password is *** and token is ***" in lines
    assert not any("pa55-w0rd-xyz" in line or "tok-98765-abc" in line for line in lines)
    assert "whole ***" in lines  # the whole JSON secret is masked as one value
    assert f"resolved {commit}" in lines
    assert "second source at " in next(line for line in lines if line.startswith("second source"))
    assert next(line for line in lines if line.startswith("second source")).endswith(
        "has extra content"
    )
    exported = {v["name"]: v["value"] for v in build["exportedEnvironmentVariables"]}
    assert exported == {"BUILD_MARK": f"built-{build['buildNumber']}"}

    # The zip artifact, downloaded with boto3's S3 client from Forgeline itself.
    build_uuid = build["id"].split(":", 1)[1]
    location = build["artifacts"]["location"]
    assert location == f"arn:aws:s3:::acceptance-artifacts/{build_uuid}/app.zip"
    body = s3.get_object(Bucket="acceptance-artifacts", Key=f"{build_uuid}/app.zip")["Body"].read()
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert sorted(archive.namelist()) == ["docs/readme.md", "main.txt"]
        assert archive.read("main.txt") == b"main program\n"
    assert build["artifacts"]["sha256sum"]
    secondary = build["secondaryArtifacts"]
    assert [a["artifactIdentifier"] for a in secondary] == ["docs"]
    readme = s3.get_object(Bucket="acceptance-artifacts", Key="docs/readme.md")["Body"].read()
    assert readme == b"docs\n"

    # The same artifact through the AWS CLI.
    target = tmp_path / "downloaded.zip"
    cli = subprocess.run(
        [
            "aws",
            "--endpoint-url",
            server.url,
            "s3",
            "cp",
            f"s3://acceptance-artifacts/{build_uuid}/app.zip",
            str(target),
        ],
        env=git_env(server, tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert target.read_bytes() == body

    # The report group named after the project, filled from the JUnit file.
    assert len(build["reportArns"]) == 1
    report = codebuild.batch_get_reports(reportArns=build["reportArns"])["reports"][0]
    assert report["reportGroupArn"].endswith(f":report-group/{project}-unit")
    assert report["testSummary"]["total"] == 3
    assert report["testSummary"]["statusCounts"]["SUCCEEDED"] == 1
    assert report["testSummary"]["statusCounts"]["FAILED"] == 1
    assert report["testSummary"]["statusCounts"]["SKIPPED"] == 1
    cases = codebuild.describe_test_cases(reportArn=build["reportArns"][0])["testCases"]
    failed = [case for case in cases if case["status"] == "FAILED"]
    assert [case["name"] for case in failed] == ["overflows"]


def test_a_missing_secret_fails_the_build_before_any_command(server: Any) -> None:
    codebuild = server.client("codebuild")
    project = create_project(
        codebuild,
        "version: 0.2\nenv:\n  parameter-store:\n    X: /no/such/parameter\n"
        "phases:\n  build:\n    commands:\n      - echo should-not-run\n",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED"
    assert phases_of(build)["DOWNLOAD_SOURCE"]["phaseStatus"] == "FAILED"
    assert "/no/such/parameter" in context_of(build, "DOWNLOAD_SOURCE")
    assert "should-not-run" not in output_lines(server, build)


def test_a_runtime_the_image_lacks_fails_install_clearly(server: Any) -> None:
    codebuild = server.client("codebuild")
    project = create_project(
        codebuild,
        "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      php: 8.2\n"
        "    commands:\n      - echo should-not-run\n",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED"
    assert phases_of(build)["INSTALL"]["phaseStatus"] == "FAILED"
    assert "php" in context_of(build, "INSTALL")
    assert "should-not-run" not in output_lines(server, build)


def test_artifact_symlinks_that_escape_the_source_fail_the_upload(server: Any) -> None:
    codebuild = server.client("codebuild")
    bucket = unique("escape")
    server.client("s3", s3={"addressing_style": "path"}).create_bucket(Bucket=bucket)
    project = create_project(
        codebuild,
        "version: 0.2\nphases:\n  build:\n    commands:\n      - ln -s /etc/passwd leak\n"
        "artifacts:\n  files:\n    - leak\n",
        artifacts={"type": "S3", "location": bucket, "packaging": "ZIP", "name": "a.zip"},
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED"
    assert phases_of(build)["UPLOAD_ARTIFACTS"]["phaseStatus"] == "FAILED"
    assert "leak" in context_of(build, "UPLOAD_ARTIFACTS")


def test_git_credential_helper_lets_the_build_clone_a_repository(server: Any) -> None:
    from forgeline.codebuild import images

    standard = images.ensure_image("standard")  # has git; the busybox image has not
    codecommit = server.client("codecommit")
    name = unique("private")
    url = codecommit.create_repository(repositoryName=name)["repositoryMetadata"]["cloneUrlHttp"]
    codecommit.put_file(
        repositoryName=name,
        branchName="main",
        filePath="secret-plans.txt",
        fileContent=b"the plan\n",
        commitMessage="plans",
    )
    codebuild = server.client("codebuild")
    project = create_project(
        codebuild,
        f"""version: 0.2
env:
  git-credential-helper: yes
phases:
  build:
    commands:
      - git clone -q {url} cloned
      - cat cloned/secret-plans.txt
""",
        image=standard,
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED", [
        (p["phaseType"], p.get("contexts")) for p in build["phases"]
    ]
    assert "the plan" in output_lines(server, build)
    # The build's credential is gone shortly after the build ended.
    deadline = time.monotonic() + 10
    while True:
        listed = server.cli("git-credentials", "list")
        assert listed.returncode == 0, listed.stderr
        if "codebuild-" not in listed.stdout:
            break
        assert time.monotonic() < deadline, listed.stdout
        time.sleep(0.2)

    without = create_project(
        codebuild,
        f"version: 0.2\nphases:\n  build:\n    commands:\n      - git clone -q {url} cloned\n",
        image=standard,
    )
    assert run_build(codebuild, without)["buildStatus"] == "FAILED"


def test_artifacts_for_a_bucket_that_does_not_exist_fail_the_upload(server: Any) -> None:
    codebuild = server.client("codebuild")
    project = create_project(
        codebuild,
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi > out.txt\n"
        "artifacts:\n  files:\n    - out.txt\n",
        artifacts={
            "type": "S3",
            "location": unique("missing"),
            "packaging": "ZIP",
            "name": "a.zip",
        },
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED"
    assert "NoSuchBucket" in context_of(build, "UPLOAD_ARTIFACTS")
