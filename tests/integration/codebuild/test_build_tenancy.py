"""A build belongs to its account: the git credential a build gets (`git-credential-helper:
yes`) reads its own account's repositories only, never another account's of the same or
any name, and stops working when the build ends. On the host runner (these builds need the
host's git) the build's log also says plainly which limits that runner cannot enforce.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.builds import (
    build_server,
    create_project,
    log_lines,
    output_lines,
    phase_statuses,
    run_build,
    unique,
)
from tests.support.server import ForgelineServer

MARK = "credential:"


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any) -> Iterator[ForgelineServer]:
    yield from build_server(tmp_path_factory, "host")


def repository_with(codecommit: Any, name: str, text: str) -> tuple[str, str]:
    """A repository NAME holding one file; (its clone URL, its head commit)."""
    url = codecommit.create_repository(repositoryName=name)["repositoryMetadata"]["cloneUrlHttp"]
    commit = codecommit.put_file(
        repositoryName=name,
        branchName="main",
        filePath="secret.txt",
        fileContent=text.encode(),
        commitMessage="secret",
    )["commitId"]
    return url, commit


def test_a_builds_git_credential_reads_only_its_own_account_and_dies_with_the_build(
    server: ForgelineServer,
) -> None:
    created = server.cli("accounts", "create", "--name", unique("tenant-b"))
    assert created.returncode == 0, created.stderr
    keys = json.loads(created.stdout)
    tenant_b = server.client(
        "codecommit", credentials=(keys["accessKeyId"], keys["secretAccessKey"])
    )
    tenant_a = server.client("codecommit")
    shared_name, b_only_name = unique("shared"), unique("b-only")
    shared_url, b_commit = repository_with(tenant_b, shared_name, "b's secret\n")
    b_only_url, b_only_commit = repository_with(tenant_b, b_only_name, "b's other secret\n")
    same_url, a_commit = repository_with(tenant_a, shared_name, "a's own\n")
    assert same_url == shared_url  # the same clone URL in both accounts

    codebuild = server.client("codebuild")
    project = create_project(
        codebuild,
        f"""version: 0.2
env:
  git-credential-helper: yes
phases:
  build:
    commands:
      - git ls-remote {shared_url} refs/heads/main
      - if git ls-remote {b_only_url}; then echo reached-b; else echo refused-b; fi
      - echo "{MARK}$(printf 'url={shared_url}\\n\\n' | git credential fill | base64 | tr -d '\\n')"
""",
    )
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED", phase_statuses(build)
    output = "\n".join(output_lines(server, build))
    # Account A's build sees A's repository under the shared name, and nothing of B's.
    assert a_commit in output and b_commit not in output
    assert "refused-b" in output and "reached-b" not in output and b_only_commit not in output

    # The credential the build had: good during the build, refused once it ended.
    leaked = next(line for line in output.splitlines() if line.startswith(MARK))
    fields = dict(
        line.split("=", 1)
        for line in base64.b64decode(leaked[len(MARK) :]).decode().splitlines()
        if "=" in line
    )
    assert fields["username"].startswith("codebuild-")
    refs = f"{shared_url}/info/refs?service=git-upload-pack"
    deadline = time.monotonic() + 15
    while True:
        status = httpx.get(refs, auth=(fields["username"], fields["password"])).status_code
        if status == 401:
            break
        assert time.monotonic() < deadline, f"the build's credential still answers {status}"
        time.sleep(0.2)


def test_the_host_runner_says_what_it_cannot_enforce(server: ForgelineServer) -> None:
    codebuild = server.client("codebuild")
    project = create_project(codebuild, "version: 0.2\nphases:\n  build:\n    commands: [true]\n")
    build = run_build(codebuild, project)
    assert build["buildStatus"] == "SUCCEEDED", phase_statuses(build)
    notes = [line for line in log_lines(server, build) if "does not enforce" in line]
    assert len(notes) == 1, notes
    for missing in ("network isolation", "process (PID) limit", "memory limit", "CPU limit"):
        assert missing in notes[0]
    assert "FORGELINE_BUILD_DISK_LIMIT_BYTES" in notes[0]


def test_a_build_cannot_read_or_write_another_accounts_bucket(server: ForgelineServer) -> None:
    """An S3 source in account B's bucket is refused to account A's build (while A's own
    bucket works), and A's S3 cache is never written into B's bucket."""
    created = server.cli("accounts", "create", "--name", unique("tenant-b"))
    assert created.returncode == 0, created.stderr
    keys = json.loads(created.stdout)
    path_style = {"addressing_style": "path"}
    s3_b = server.client(
        "s3", credentials=(keys["accessKeyId"], keys["secretAccessKey"]), s3=path_style
    )
    s3_a = server.client("s3", s3=path_style)
    bucket_b, bucket_a = unique("bucket-b"), unique("bucket-a")
    s3_b.create_bucket(Bucket=bucket_b)
    s3_a.create_bucket(Bucket=bucket_a)
    for s3, bucket, text in ((s3_b, bucket_b, "b's source"), (s3_a, bucket_a, "a's source")):
        s3.put_object(Bucket=bucket, Key="src/readme.txt", Body=text.encode())

    codebuild = server.client("codebuild")
    buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - cat readme.txt\n"
    own = create_project(
        codebuild, buildspec, source={"type": "S3", "location": f"{bucket_a}/src/readme.txt"}
    )
    build = run_build(codebuild, own)
    assert build["buildStatus"] == "SUCCEEDED", phase_statuses(build)
    assert "a's source" in "\n".join(output_lines(server, build))

    foreign = create_project(
        codebuild,
        buildspec,
        source={"type": "S3", "location": f"{bucket_b}/src/readme.txt"},
        cache={"type": "S3", "location": f"{bucket_b}/cache"},
    )
    build = run_build(codebuild, foreign)
    assert build["buildStatus"] == "FAILED", phase_statuses(build)
    download = next(p for p in build["phases"] if p["phaseType"] == "DOWNLOAD_SOURCE")
    assert download["phaseStatus"] == "FAILED"
    assert download["contexts"][0]["statusCode"] == "CLIENT_ERROR"
    assert "AccessDenied" in download["contexts"][0]["message"]
    assert "b's source" not in "\n".join(output_lines(server, build))

    cached = create_project(
        codebuild,
        "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p c && echo x > c/f\n"
        "cache:\n  paths:\n    - c/**/*\n",
        cache={"type": "S3", "location": f"{bucket_b}/cache"},
    )
    build = run_build(codebuild, cached)
    assert build["buildStatus"] == "SUCCEEDED", phase_statuses(build)
    assert any("Cache not saved" in line for line in log_lines(server, build))
    assert s3_b.list_objects_v2(Bucket=bucket_b, Prefix="cache").get("KeyCount", 0) == 0
