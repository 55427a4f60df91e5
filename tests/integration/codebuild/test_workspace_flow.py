"""Sources in, artifacts and caches out, through real builds: a CodeCommit repository made
over boto3, builds in Docker containers, artifacts and S3 caches in the server's blob store."""

from __future__ import annotations

import io
import uuid
import zipfile
from typing import Any

import pytest

from forgeline.core.blobstore import LocalBlobStore
from tests.support.builds import (
    build_server,
    context_of,
    create_project,
    log_lines,
    output_lines,
    run_build,
    unique,
)

SOURCE_BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - mkdir -p out/sub
      - echo "$CODEBUILD_RESOLVED_SOURCE_VERSION" > out/version.txt
      - cat .git/HEAD > out/head.txt
      - cp app.txt out/sub/
artifacts:
  files:
    - '**/*'
  base-directory: out
  name: bundle-$CODEBUILD_BUILD_NUMBER.zip
"""

CACHE_BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - if [ -f deps/lib.txt ]; then echo "had $(cat deps/lib.txt)"; else mkdir -p deps/x && echo "deps of build $CODEBUILD_BUILD_NUMBER" > deps/x/lib.txt && cp deps/x/lib.txt deps/lib.txt; fi
cache:
  paths:
    - deps/**/*
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any, tiny_image: str) -> Any:
    yield from build_server(tmp_path_factory, "docker")


@pytest.fixture(scope="module")
def codebuild(server: Any) -> Any:
    # Artifacts go to an existing bucket of the build's account.
    s3 = server.client("s3", s3={"addressing_style": "path"})
    s3.create_bucket(Bucket="artifacts-bucket")
    s3.create_bucket(Bucket="cache-bucket")  # S3 caches, too, live in a bucket of the account
    return server.client("codebuild")


@pytest.fixture(scope="module")
def repository(server: Any) -> dict[str, Any]:
    codecommit = server.client("codecommit")
    name = unique("ws")
    metadata = codecommit.create_repository(repositoryName=name)["repositoryMetadata"]
    first = codecommit.put_file(
        repositoryName=name,
        branchName="main",
        filePath="buildspec.yml",
        fileContent=SOURCE_BUILDSPEC.encode(),
        commitMessage="buildspec",
    )["commitId"]
    second = codecommit.put_file(
        repositoryName=name,
        branchName="main",
        parentCommitId=first,
        filePath="app.txt",
        fileContent=b"the app\n",
        commitMessage="app",
    )["commitId"]
    return {"name": name, "url": metadata["cloneUrlHttp"], "head": second}


def test_codecommit_source_to_zip_artifact(server, codebuild, repository) -> None:
    project = create_project(
        codebuild,
        source={"type": "CODECOMMIT", "location": repository["url"], "gitCloneDepth": 1},
        artifacts={
            "type": "S3",
            "location": "artifacts-bucket",
            "path": "ci",
            "namespaceType": "BUILD_ID",
            "name": "default.zip",
            "packaging": "ZIP",
            "overrideArtifactName": True,
        },
    )
    build = run_build(codebuild, project, sourceVersion="main")
    assert build["buildStatus"] == "SUCCEEDED", log_lines(server, build)
    assert build["resolvedSourceVersion"] == repository["head"]
    build_uuid = build["id"].split(":", 1)[1]
    expected_key = f"ci/{build_uuid}/bundle-{build['buildNumber']}.zip"
    assert build["artifacts"]["location"] == f"arn:aws:s3:::artifacts-bucket/{expected_key}"
    store = LocalBlobStore(server.data_dir / "blobs")
    data = store.read_bytes(f"buckets/artifacts-bucket/{expected_key}")
    assert (
        build["artifacts"]["sha256sum"]
        == store.stat(f"buckets/artifacts-bucket/{expected_key}").sha256
    )
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        assert sorted(bundle.namelist()) == ["head.txt", "sub/app.txt", "version.txt"]
        assert bundle.read("version.txt").decode().strip() == repository["head"]
        assert bundle.read("head.txt").decode().strip() == "ref: refs/heads/main"
        assert bundle.read("sub/app.txt") == b"the app\n"


def test_missing_source_version_fails_download_source(codebuild, repository) -> None:
    project = create_project(
        codebuild, source={"type": "CODECOMMIT", "location": repository["url"]}
    )
    build = run_build(codebuild, project, sourceVersion="no-such-branch")
    assert build["buildStatus"] == "FAILED"
    assert context_of(build, "DOWNLOAD_SOURCE") == (
        "CLIENT_ERROR: reference not found for primary source and source version no-such-branch"
    )


def test_no_matching_artifact_paths_fails_upload(codebuild) -> None:
    buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - 'true'\n"
    buildspec += "artifacts:\n  files:\n    - 'missing/**/*'\n"
    project = create_project(
        codebuild, buildspec, artifacts={"type": "S3", "location": "artifacts-bucket", "name": "x"}
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "FAILED"
    assert context_of(build, "UPLOAD_ARTIFACTS") == "CLIENT_ERROR: no matching artifact paths found"


@pytest.mark.parametrize(
    "cache",
    [
        {"type": "LOCAL", "modes": ["LOCAL_CUSTOM_CACHE"]},
        {"type": "S3", "location": f"cache-bucket/{uuid.uuid4().hex[:8]}"},
    ],
    ids=["local", "s3"],
)
def test_second_build_hits_the_cache_until_invalidated(server, codebuild, cache) -> None:
    project = create_project(codebuild, CACHE_BUILDSPEC, cache=cache)

    first = run_build(codebuild, project)
    assert first["buildStatus"] == "SUCCEEDED", log_lines(server, first)
    assert any("Cache miss" in line for line in output_lines(server, first))

    second = run_build(codebuild, project)
    assert second["buildStatus"] == "SUCCEEDED", log_lines(server, second)
    lines = output_lines(server, second)
    assert any("Cache restored: 1 paths" in line for line in lines), lines
    assert any(f"had deps of build {first['buildNumber']}" in line for line in lines), lines

    codebuild.invalidate_project_cache(projectName=project)
    third = run_build(codebuild, project)
    lines = output_lines(server, third)
    assert any("Cache miss" in line for line in lines), lines
    assert not any(line.startswith("had ") for line in lines)
