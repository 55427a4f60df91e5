"""Rolling a stage back: RollbackStage runs the stage again with what an earlier execution
shipped (executionType ROLLBACK), and a V2 stage whose onFailure result is ROLLBACK rolls
itself back to the last execution that succeeded in it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.integration.codepipeline.support import kind, zip_of
from tests.support.errors import code_of


def declaration(name: str, bucket: str) -> dict[str, Any]:
    return {
        "name": name,
        "pipelineType": "V2",
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": bucket},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Get", "actionTypeId": kind("Source", "S3"),
                "configuration": {"S3Bucket": bucket, "S3ObjectKey": "site.zip",
                                  "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "Site"}]}]},
            {"name": "Ship", "onFailure": {"result": "ROLLBACK"}, "actions": [{
                "name": "Publish", "actionTypeId": kind("Deploy", "S3"),
                "configuration": {"BucketName": bucket, "Extract": "true", "ObjectKey": "live"},
                "inputArtifacts": [{"name": "Site"}]}]},
        ],
    }  # fmt: skip


@pytest.fixture()
def site(forgeline: Any) -> dict[str, Any]:
    name, bucket = f"rb-{uuid.uuid4().hex[:8]}", f"rb-{uuid.uuid4().hex[:8]}"
    s3, pipelines = forgeline.client("s3"), forgeline.client("codepipeline")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="site.zip", Body=zip_of("one"))
    pipelines.create_pipeline(pipeline=declaration(name, bucket))
    return {"name": name, "bucket": bucket, "s3": s3, "pipelines": pipelines}


def settle(site: dict[str, Any]) -> list[dict[str, Any]]:
    """The executions, newest first, once none is running."""
    deadline = time.monotonic() + 60
    while True:
        summaries = site["pipelines"].list_pipeline_executions(pipelineName=site["name"])[
            "pipelineExecutionSummaries"
        ]
        if all(s["status"] not in ("InProgress", "Stopping") for s in summaries):
            return summaries
        assert time.monotonic() < deadline, summaries
        time.sleep(0.1)


def live(site: dict[str, Any]) -> bytes:
    return site["s3"].get_object(Bucket=site["bucket"], Key="live/index.html")["Body"].read()


def test_rollback_stage_ships_what_an_earlier_execution_shipped(site: dict[str, Any]) -> None:
    pipelines, name = site["pipelines"], site["name"]
    first = settle(site)[0]
    assert first["status"] == "Succeeded" and live(site) == b"one"
    site["s3"].put_object(Bucket=site["bucket"], Key="site.zip", Body=zip_of("two"))
    pipelines.start_pipeline_execution(name=name)
    assert settle(site)[0]["status"] == "Succeeded" and live(site) == b"two"

    assert code_of(
        pipelines.rollback_stage, pipelineName=name, stageName="Source",
        targetPipelineExecutionId=first["pipelineExecutionId"],
    ) == "UnableToRollbackStageException"  # fmt: skip
    rollback_id = pipelines.rollback_stage(
        pipelineName=name, stageName="Ship", targetPipelineExecutionId=first["pipelineExecutionId"]
    )["pipelineExecutionId"]
    newest = settle(site)[0]
    assert newest["pipelineExecutionId"] == rollback_id and newest["status"] == "Succeeded"
    assert newest["executionType"] == "ROLLBACK"
    assert newest["rollbackMetadata"] == {
        "rollbackTargetPipelineExecutionId": first["pipelineExecutionId"]
    }
    assert newest["trigger"]["triggerType"] == "ManualRollback"
    assert live(site) == b"one"


def test_a_failed_stage_with_on_failure_rollback_rolls_itself_back(site: dict[str, Any]) -> None:
    pipelines, name = site["pipelines"], site["name"]
    assert settle(site)[0]["status"] == "Succeeded" and live(site) == b"one"
    # Not a zip: extracting it fails the Ship stage.
    site["s3"].put_object(Bucket=site["bucket"], Key="site.zip", Body=b"not a zip")
    failed_id = pipelines.start_pipeline_execution(name=name)["pipelineExecutionId"]
    executions = settle(site)
    failed = next(e for e in executions if e["pipelineExecutionId"] == failed_id)
    assert failed["status"] == "Failed"
    rollback = executions[0]
    assert rollback["trigger"] == {"triggerType": "AutomatedRollback", "triggerDetail": failed_id}
    assert rollback["status"] == "Succeeded" and rollback["executionType"] == "ROLLBACK"
    assert live(site) == b"one"
