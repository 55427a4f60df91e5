"""A server (and its worker) killed mid-execution loses nothing: the execution waiting at
its approval is still there after a restart, takes the same token, and goes on to the
end."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.codepipeline.support import kind, newest_when_ended, wait_for
from tests.support.server import ForgelineServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgelineServer]:
    server = ForgelineServer(tmp_path_factory.mktemp("pipeline-restart"))
    try:
        yield server.start()
    finally:
        server.stop()


def declaration(name: str, bucket: str) -> dict[str, Any]:
    return {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": bucket},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Get", "actionTypeId": kind("Source", "S3"),
                "configuration": {"S3Bucket": bucket, "S3ObjectKey": "src.zip",
                                  "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "Hold", "actions": [{"name": "Wait", "actionTypeId": kind("Approval", "Manual")}]},
            {"name": "Ship", "actions": [{
                "name": "Copy", "actionTypeId": kind("Deploy", "S3"),
                "configuration": {"BucketName": bucket, "Extract": "false", "ObjectKey": "shipped.zip"},
                "inputArtifacts": [{"name": "Src"}]}]},
        ],
    }  # fmt: skip


def token_of(pipelines: Any, name: str) -> str | None:
    states = pipelines.get_pipeline_state(name=name)["stageStates"]
    hold = next(s for s in states if s["stageName"] == "Hold")
    latest = hold["actionStates"][0].get("latestExecution") or {}
    return latest.get("token") if latest.get("status") == "InProgress" else None


def test_an_execution_survives_a_killed_server(server: ForgelineServer) -> None:
    name, bucket = f"restart-{uuid.uuid4().hex[:8]}", f"restart-{uuid.uuid4().hex[:8]}"
    s3 = server.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="src.zip", Body=b"PK\x05\x06" + b"\0" * 18)
    pipelines = server.client("codepipeline")
    pipelines.create_pipeline(pipeline=declaration(name, bucket))
    token = wait_for(lambda: token_of(pipelines, name))

    server.end_processes(signal.SIGKILL)
    server.start()
    pipelines = server.client("codepipeline")
    assert token_of(pipelines, name) == token
    pipelines.put_approval_result(
        pipelineName=name, stageName="Hold", actionName="Wait",
        result={"summary": "after the crash", "status": "Approved"}, token=token,
    )  # fmt: skip
    summary = newest_when_ended(pipelines, name)
    assert summary["status"] == "Succeeded"
    assert server.client("s3").head_object(Bucket=bucket, Key="shipped.zip")["ContentLength"] > 0
