"""Batch builds over boto3 against a real server: a build graph runs dependants after
their dependencies, builds carry their batch identifier, failures fail the batch (or
stop it early with fast-fail), restrictions and bad batchspecs fail it in
DOWNLOAD_BATCHSPEC, and stop, retry, list and delete behave as CodeBuild's."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from forgeline.core.blobstore import LocalBlobStore
from tests.support.builds import build_server

ROLE = "arn:aws:iam::123456789012:role/codebuild"

GRAPH = """version: 0.2
batch:
  build-graph:
    - identifier: first
    - identifier: second
      depend-on: [first]
      env:
        variables:
          GREETING: from-second
    - identifier: third
      depend-on: [first, second]
env:
  exported-variables: [CODEBUILD_BATCH_BUILD_IDENTIFIER, GREETING]
phases:
  build:
    commands:
      - echo "I am $CODEBUILD_BATCH_BUILD_IDENTIFIER"
"""

FAILING_LIST = """version: 0.2
batch:
  fast-fail: {fast_fail}
  build-list:
    - identifier: broken
    - identifier: slow
      env:
        variables:
          PAUSE: "{pause}"
phases:
  build:
    commands:
      - if [ "$CODEBUILD_BATCH_BUILD_IDENTIFIER" = broken ]; then exit 3; fi
      - sleep $PAUSE
"""


@pytest.fixture
def clients(forgeline) -> tuple[Any, Any]:
    return forgeline.client("codecommit"), forgeline.client("codebuild")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_project(
    codecommit, codebuild, buildspec: str, image: str, batch_config: dict | None = None
) -> tuple[str, str]:
    """A repository holding `buildspec` and a batch-enabled project on it; (project, commit)."""
    repository = unique("batched")
    codecommit.create_repository(repositoryName=repository)
    commit = codecommit.put_file(
        repositoryName=repository,
        branchName="main",
        filePath="buildspec.yml",
        fileContent=buildspec.encode(),
        commitMessage="buildspec",
    )["commitId"]
    project = unique("batch")
    codebuild.create_project(
        name=project,
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
        buildBatchConfig=batch_config or {"serviceRole": ROLE},
    )
    return project, commit


def wait_for_batch(codebuild, batch_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [batch] = codebuild.batch_get_build_batches(ids=[batch_id])["buildBatches"]
        if batch["complete"]:
            return batch
        time.sleep(0.3)
    raise AssertionError(
        f"batch {batch_id} did not finish in {timeout}s: {batch}\n{running_builds(codebuild)}"
    )


def running_builds(codebuild) -> str:
    """What still runs (for a failure message): builds not complete, with their phases."""
    ids = codebuild.list_builds(sortOrder="DESCENDING")["ids"][:50]
    found = codebuild.batch_get_builds(ids=ids)["builds"] if ids else []
    return "\n".join(
        f"{b['id']} {b['buildStatus']} {[(p['phaseType'], p.get('phaseStatus')) for p in b['phases']]}"
        for b in found
        if not b["buildComplete"]
    )


def builds_by_identifier(codebuild, batch: dict) -> dict[str, dict]:
    arns = {g["identifier"]: g["currentBuildSummary"]["arn"] for g in batch["buildGroups"]}
    ids = [arn.split(":build/", 1)[1] for arn in arns.values()]
    found = {b["arn"]: b for b in codebuild.batch_get_builds(ids=ids)["builds"]}
    return {identifier: found[arn] for identifier, arn in arns.items()}


def exported(build: dict) -> dict[str, str]:
    return {v["name"]: v.get("value", "") for v in build.get("exportedEnvironmentVariables", [])}


def test_build_graph_runs_dependants_after_dependencies(clients, tiny_image):
    codecommit, codebuild = clients
    project, commit = make_project(codecommit, codebuild, GRAPH, tiny_image)
    started = codebuild.start_build_batch(projectName=project)["buildBatch"]
    assert started["id"].startswith(f"{project}:")
    assert started["arn"].endswith(f":build-batch/{started['id']}")
    assert started["buildBatchNumber"] == 1
    assert started["buildBatchStatus"] == "IN_PROGRESS" and not started["complete"]
    assert [p["phaseType"] for p in started["phases"]] == [
        "SUBMITTED",
        "DOWNLOAD_BATCHSPEC",
        "IN_PROGRESS",
    ]
    groups = {g["identifier"]: g for g in started["buildGroups"]}
    assert groups["third"]["dependsOn"] == ["first", "second"]
    assert "currentBuildSummary" in groups["first"]
    assert "currentBuildSummary" not in groups["second"]  # waits for first

    batch = wait_for_batch(codebuild, started["id"])
    assert batch["buildBatchStatus"] == "SUCCEEDED", batch["phases"]
    assert batch["currentPhase"] == "SUCCEEDED"
    # combineArtifacts defaults to false: no COMBINE_ARTIFACTS phase, no batch artifact.
    assert batch["buildBatchConfig"]["combineArtifacts"] is False
    assert "COMBINE_ARTIFACTS" not in [p["phaseType"] for p in batch["phases"]]
    assert batch["artifacts"] == {"location": ""}
    assert batch["resolvedSourceVersion"] == commit
    assert [p["phaseType"] for p in batch["phases"]][-2:] == ["IN_PROGRESS", "SUCCEEDED"]
    by_identifier = builds_by_identifier(codebuild, batch)
    first, second, third = (by_identifier[k] for k in ("first", "second", "third"))
    for identifier, build in by_identifier.items():
        assert build["buildStatus"] == "SUCCEEDED"
        assert build["buildBatchArn"] == batch["arn"]
        assert build["resolvedSourceVersion"] == commit
        assert exported(build)["CODEBUILD_BATCH_BUILD_IDENTIFIER"] == identifier
    assert exported(second)["GREETING"] == "from-second"
    assert exported(first)["GREETING"] == ""
    assert second["startTime"] >= first["endTime"]
    assert third["startTime"] >= second["endTime"]
    summary = {g["identifier"]: g for g in batch["buildGroups"]}["third"]["currentBuildSummary"]
    assert summary["buildStatus"] == "SUCCEEDED" and summary["arn"] == third["arn"]

    listed = codebuild.list_build_batches_for_project(projectName=project)["ids"]
    assert listed == [batch["id"]]
    assert batch["id"] in codebuild.list_build_batches(filter={"status": "SUCCEEDED"})["ids"]
    assert batch["id"] not in codebuild.list_build_batches(filter={"status": "FAILED"})["ids"]

    deleted = codebuild.delete_build_batch(id=batch["id"])
    assert sorted(deleted["buildsDeleted"]) == sorted(b["id"] for b in by_identifier.values())
    gone = codebuild.batch_get_build_batches(ids=[batch["id"]])
    assert gone["buildBatches"] == [] and gone["buildBatchesNotFound"] == [batch["id"]]
    assert codebuild.batch_get_builds(ids=[first["id"]])["builds"] == []


def test_failure_fails_the_batch_and_retry_runs_failed_builds(clients, tiny_image):
    codecommit, codebuild = clients
    spec = FAILING_LIST.format(fast_fail="false", pause="0")
    project, _ = make_project(codecommit, codebuild, spec, tiny_image)
    batch_id = codebuild.start_build_batch(projectName=project)["buildBatch"]["id"]
    batch = wait_for_batch(codebuild, batch_id)
    assert batch["buildBatchStatus"] == "FAILED"
    statuses = {
        g["identifier"]: g["currentBuildSummary"]["buildStatus"] for g in batch["buildGroups"]
    }
    assert statuses == {"broken": "FAILED", "slow": "SUCCEEDED"}

    retried = codebuild.retry_build_batch(id=batch_id, retryType="RETRY_FAILED_BUILDS")
    assert retried["buildBatch"]["buildBatchStatus"] == "IN_PROGRESS"
    again = wait_for_batch(codebuild, batch_id)
    groups = {g["identifier"]: g for g in again["buildGroups"]}
    assert len(groups["broken"]["priorBuildSummaryList"]) == 1
    assert groups["slow"]["priorBuildSummaryList"] == []  # it had succeeded: not rerun
    assert again["buildBatchStatus"] == "FAILED"

    with pytest.raises(ClientError) as caught:
        codebuild.retry_build_batch(id=f"{project}:{uuid.uuid4()}")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


# The builds that must be stopped sleep 15 minutes: a batch that ends within the wait
# shows the stop worked (the generous wait only absorbs a slow machine's queue).
def test_fast_fail_stops_the_other_builds(clients, tiny_image):
    codecommit, codebuild = clients
    spec = FAILING_LIST.format(fast_fail="true", pause="900")
    project, _ = make_project(codecommit, codebuild, spec, tiny_image)
    batch_id = codebuild.start_build_batch(projectName=project)["buildBatch"]["id"]
    batch = wait_for_batch(codebuild, batch_id, timeout=170)
    assert batch["buildBatchStatus"] == "FAILED"
    statuses = {
        g["identifier"]: g["currentBuildSummary"]["buildStatus"] for g in batch["buildGroups"]
    }
    assert statuses == {"broken": "FAILED", "slow": "STOPPED"}


def test_stop_build_batch(clients, tiny_image):
    codecommit, codebuild = clients
    spec = (
        FAILING_LIST.format(fast_fail="false", pause="900")
        .replace("- identifier: broken", "- identifier: waiting\n      depend-on: [slow]")
        .replace("build-list", "build-graph")
    )
    project, _ = make_project(codecommit, codebuild, spec, tiny_image)
    batch_id = codebuild.start_build_batch(projectName=project)["buildBatch"]["id"]
    stopping = codebuild.stop_build_batch(id=batch_id)["buildBatch"]
    assert stopping["id"] == batch_id
    batch = wait_for_batch(codebuild, batch_id, timeout=170)
    assert batch["buildBatchStatus"] == "STOPPED" and batch["currentPhase"] == "STOPPED"
    groups = {g["identifier"]: g for g in batch["buildGroups"]}
    assert groups["slow"]["currentBuildSummary"]["buildStatus"] == "STOPPED"
    assert "currentBuildSummary" not in groups["waiting"]


def test_bad_batchspecs_and_restrictions_fail_in_download_batchspec(clients, tiny_image):
    codecommit, codebuild = clients
    cycle = GRAPH.replace("- identifier: first", "- identifier: first\n      depend-on: [third]")
    project, _ = make_project(codecommit, codebuild, cycle, tiny_image)
    batch = codebuild.start_build_batch(projectName=project)["buildBatch"]
    assert batch["complete"] and batch["buildBatchStatus"] == "FAILED"
    download = [p for p in batch["phases"] if p["phaseType"] == "DOWNLOAD_BATCHSPEC"][0]
    assert download["phaseStatus"] == "FAILED"
    assert "cycle" in download["contexts"][0]["message"]
    assert batch["buildGroups"] == []

    limited, _ = make_project(
        codecommit,
        codebuild,
        GRAPH,
        tiny_image,
        {"serviceRole": ROLE, "restrictions": {"maximumBuildsAllowed": 2}},
    )
    batch = codebuild.start_build_batch(projectName=limited)["buildBatch"]
    assert batch["buildBatchStatus"] == "FAILED"
    download = [p for p in batch["phases"] if p["phaseType"] == "DOWNLOAD_BATCHSPEC"][0]
    assert "at most 2" in download["contexts"][0]["message"]
    compute = codebuild.start_build_batch(
        projectName=limited,
        buildBatchConfigOverride={
            "serviceRole": ROLE,
            "restrictions": {"computeTypesAllowed": ["BUILD_GENERAL1_LARGE"]},
        },
    )["buildBatch"]
    download = [p for p in compute["phases"] if p["phaseType"] == "DOWNLOAD_BATCHSPEC"][0]
    assert "BUILD_GENERAL1_SMALL" in download["contexts"][0]["message"]
    assert compute["buildBatchNumber"] == 2
    token = str(uuid.uuid4())
    once = codebuild.start_build_batch(projectName=limited, idempotencyToken=token)
    again = codebuild.start_build_batch(projectName=limited, idempotencyToken=token)
    assert once["buildBatch"]["id"] == again["buildBatch"]["id"]
    assert once["buildBatch"]["buildBatchNumber"] == 3

    with pytest.raises(ClientError) as caught:
        codebuild.start_build_batch(projectName="no-such-project")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_batches_need_a_batch_configuration(clients):
    _, codebuild = clients
    plain = unique("plain")
    codebuild.create_project(
        name=plain,
        source={"type": "NO_SOURCE", "buildspec": GRAPH},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "forgeline/tiny:latest",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=ROLE,
    )
    with pytest.raises(ClientError) as caught:
        codebuild.start_build_batch(projectName=plain)
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidInputException" and "buildBatchConfig" in error["Message"]


def test_webhook_with_build_type_batch_starts_a_batch(clients, tiny_image):
    codecommit, codebuild = clients
    project, commit = make_project(codecommit, codebuild, GRAPH, tiny_image)
    repository = codebuild.batch_get_projects(names=[project])["projects"][0]["source"][
        "location"
    ].rsplit("/", 1)[1]
    codebuild.create_webhook(
        projectName=project,
        buildType="BUILD_BATCH",
        filterGroups=[[{"type": "EVENT", "pattern": "PUSH"}]],
    )
    pushed = codecommit.put_file(
        repositoryName=repository,
        branchName="main",
        parentCommitId=commit,
        filePath="more.txt",
        fileContent=b"x",
        commitMessage="more",
    )["commitId"]
    [batch_id] = codebuild.list_build_batches_for_project(projectName=project)["ids"]
    batch = wait_for_batch(codebuild, batch_id)
    assert batch["buildBatchStatus"] == "SUCCEEDED"
    assert batch["initiator"] == "codecommit-webhook"
    assert batch["resolvedSourceVersion"] == pushed
    build = builds_by_identifier(codebuild, batch)["first"]
    names = {v["name"]: v["value"] for v in build["environment"]["environmentVariables"]}
    assert names["CODEBUILD_WEBHOOK_EVENT"] == "PUSH"
    assert names["CODEBUILD_BATCH_BUILD_IDENTIFIER"] == "first"


ARTIFACT_LIST = """version: 0.2
batch:
  build-list:
    - identifier: linux
    - identifier: windows
phases:
  build:
    commands:
      - mkdir -p dist && echo "built on $CODEBUILD_BATCH_BUILD_IDENTIFIER" > dist/result.txt
artifacts:
  files: [dist/result.txt]
"""


def inline_project(codebuild, buildspec: str, image: str, batch_config: dict, **extra) -> str:
    """A batch-enabled project whose buildspec (with its batch section) is inline."""
    project = unique("inline")
    codebuild.create_project(
        name=project,
        source={"type": "NO_SOURCE", "buildspec": buildspec},
        artifacts=extra.pop("artifacts", {"type": "NO_ARTIFACTS"}),
        environment={
            "type": "LINUX_CONTAINER",
            "image": image,
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=ROLE,
        buildBatchConfig=batch_config,
        **extra,
    )
    return project


def test_combine_artifacts_gathers_each_build_under_its_identifier(forgeline, tiny_image):
    codebuild = forgeline.client("codebuild")
    bucket = unique("combined")
    forgeline.client("s3", s3={"addressing_style": "path"}).create_bucket(Bucket=bucket)
    project = inline_project(
        codebuild,
        ARTIFACT_LIST,
        tiny_image,
        {
            "serviceRole": ROLE,
            "combineArtifacts": True,
            "batchReportMode": "REPORT_INDIVIDUAL_BUILDS",
        },
        artifacts={
            "type": "S3",
            "location": bucket,
            "path": "ci",
            "namespaceType": "BUILD_ID",
            "name": "out",
            "packaging": "NONE",
        },
    )
    batch_id = codebuild.start_build_batch(projectName=project)["buildBatch"]["id"]
    batch = wait_for_batch(codebuild, batch_id)
    assert batch["buildBatchStatus"] == "SUCCEEDED", batch["phases"]
    assert batch["buildBatchConfig"]["batchReportMode"] == "REPORT_INDIVIDUAL_BUILDS"
    phases = [(p["phaseType"], p.get("phaseStatus")) for p in batch["phases"]]
    assert phases[-3:] == [
        ("IN_PROGRESS", "SUCCEEDED"),
        ("COMBINE_ARTIFACTS", "SUCCEEDED"),
        ("SUCCEEDED", None),
    ]
    batch_uuid = batch_id.split(":", 1)[1]
    assert batch["artifacts"]["location"] == f"arn:aws:s3:::{bucket}/ci/{batch_uuid}/out"

    store = LocalBlobStore(forgeline.data_dir / "blobs")
    combined = f"buckets/{bucket}/ci/{batch_uuid}/out"
    assert sorted(info.key for info in store.list(f"{combined}/")) == [
        f"{combined}/linux/dist/result.txt",
        f"{combined}/windows/dist/result.txt",
    ]
    assert store.read_bytes(f"{combined}/windows/dist/result.txt") == b"built on windows\n"
    # Each build kept its own artifact too, under its build id.
    for identifier, build in builds_by_identifier(codebuild, batch).items():
        build_uuid = build["id"].split(":", 1)[1]
        assert build["artifacts"]["location"] == f"arn:aws:s3:::{bucket}/ci/{build_uuid}/out"
        own = store.read_bytes(f"buckets/{bucket}/ci/{build_uuid}/out/dist/result.txt")
        assert own == f"built on {identifier}\n".encode()


def test_batch_timeout_must_be_at_least_five_minutes(forgeline, tiny_image):
    codebuild = forgeline.client("codebuild")
    project = inline_project(codebuild, ARTIFACT_LIST, tiny_image, {"serviceRole": ROLE})
    with pytest.raises(ClientError) as caught:
        codebuild.start_build_batch(
            projectName=project,
            buildBatchConfigOverride={"serviceRole": ROLE, "timeoutInMins": 3},
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidInputException" and "timeoutInMins" in error["Message"]
    assert codebuild.list_build_batches_for_project(projectName=project)["ids"] == []


# A server whose build "minute" lasts one second, so a five-minute batch timeout
# expires in five seconds.
@pytest.fixture(scope="module")
def fast_clock(tmp_path_factory, tiny_image) -> Iterator[Any]:
    yield from build_server(tmp_path_factory, "docker")


SLOW_GRAPH = """version: 0.2
batch:
  build-graph:
    - identifier: slow
    - identifier: later
      depend-on: [slow]
phases:
  build:
    commands:
      - sleep 900
"""


def test_batch_timeout_stops_running_builds_and_ends_timed_out(fast_clock, tiny_image):
    codebuild = fast_clock.client("codebuild")
    project = inline_project(
        codebuild, SLOW_GRAPH, tiny_image, {"serviceRole": ROLE, "timeoutInMins": 5}
    )
    started = codebuild.start_build_batch(projectName=project, buildTimeoutInMinutesOverride=60)
    batch_id = started["buildBatch"]["id"]
    assert started["buildBatch"]["buildTimeoutInMinutes"] == 60
    begun = time.monotonic()
    batch = wait_for_batch(codebuild, batch_id, timeout=60)
    # The build's own timeout (60 "minutes") is far off: the batch timeout ended it.
    assert time.monotonic() - begun < 50
    assert batch["buildBatchStatus"] == "TIMED_OUT", batch["phases"]
    assert batch["currentPhase"] == "FAILED"
    running = [p for p in batch["phases"] if p["phaseType"] == "IN_PROGRESS"][0]
    assert running["phaseStatus"] == "TIMED_OUT"
    assert running["contexts"][0]["message"] == "Batch build has timed out after 5 minutes."
    assert batch["endTime"] - batch["startTime"] >= dt.timedelta(seconds=5)
    groups = {g["identifier"]: g for g in batch["buildGroups"]}
    assert groups["slow"]["currentBuildSummary"]["buildStatus"] == "STOPPED"
    assert "currentBuildSummary" not in groups["later"]  # never started
    slow = builds_by_identifier(codebuild, {"buildGroups": [groups["slow"]]})["slow"]
    assert slow["timeoutInMinutes"] == 60

    # A retry is a new run with a timeout of its own: it times out again, later.
    codebuild.retry_build_batch(id=batch_id, retryType="RETRY_FAILED_BUILDS")
    again = wait_for_batch(codebuild, batch_id, timeout=60)
    assert again["buildBatchStatus"] == "TIMED_OUT"
    assert again["endTime"] - batch["endTime"] >= dt.timedelta(seconds=5)
    assert (
        len({g["identifier"]: g for g in again["buildGroups"]}["slow"]["priorBuildSummaryList"])
        == 1
    )
