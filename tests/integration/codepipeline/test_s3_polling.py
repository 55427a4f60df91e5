"""An S3 source that polls for changes: a new version of the source object (a new ETag)
starts the pipeline (trigger PollForSourceChanges); an unchanged object starts nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.codepipeline.support import kind, wait_for, zip_of
from tests.support.server import ForgelineServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgelineServer]:
    env = {"FORGELINE_CODEPIPELINE_S3_POLL_SECONDS": "1"}
    server = ForgelineServer(tmp_path_factory.mktemp("s3-polling"), extra_env=env)
    try:
        yield server.start()
    finally:
        server.stop()


def executions(pipelines: Any, name: str) -> list[dict[str, Any]]:
    return pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]


def test_a_new_object_version_starts_the_pipeline(server: ForgelineServer) -> None:
    name, bucket = f"poll-{uuid.uuid4().hex[:8]}", f"poll-{uuid.uuid4().hex[:8]}"
    s3, pipelines = server.client("s3"), server.client("codepipeline")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="site.zip", Body=zip_of("one"))
    pipelines.create_pipeline(
        pipeline={
            "name": name,
            "roleArn": "arn:aws:iam::000000000000:role/pipeline",
            "artifactStore": {"type": "S3", "location": bucket},
            "stages": [
                {"name": "Source", "actions": [{
                    "name": "Get", "actionTypeId": kind("Source", "S3"),
                    "configuration": {"S3Bucket": bucket, "S3ObjectKey": "site.zip"},
                    "outputArtifacts": [{"name": "Site"}]}]},
                {"name": "Ship", "actions": [{
                    "name": "Copy", "actionTypeId": kind("Deploy", "S3"),
                    "configuration": {"BucketName": bucket, "Extract": "false",
                                      "ObjectKey": "shipped.zip"},
                    "inputArtifacts": [{"name": "Site"}]}]},
            ],
        }
    )  # fmt: skip
    wait_for(lambda: executions(pipelines, name)[0]["status"] == "Succeeded")
    time.sleep(3)  # three polls of an unchanged object start nothing
    assert len(executions(pipelines, name)) == 1

    etag = s3.put_object(Bucket=bucket, Key="site.zip", Body=zip_of("two"))["ETag"].strip('"')
    polled = wait_for(lambda: len(found := executions(pipelines, name)) == 2 and found[0])
    assert polled["trigger"]["triggerType"] == "PollForSourceChanges"
    done = wait_for(lambda: (e := executions(pipelines, name)[0])["status"] == "Succeeded" and e)
    assert done["sourceRevisions"][0]["revisionId"] == etag
    time.sleep(3)
    assert len(executions(pipelines, name)) == 2
