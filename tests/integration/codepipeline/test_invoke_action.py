"""The Invoke action: a function (an HTTP server here, found through the Lambda function
routes) is handed AWS's `CodePipeline.job` event and ends the action with
PutJobSuccessResult (its output variables handed on) or PutJobFailureResult; a function
that cannot be reached fails the action with the reason."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.server import ForgelineServer, free_port


class Functions:
    """Answers each invocation, from another thread, with the verdict set per function."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.client: Any = None
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                function = self.path.strip("/")
                owner.events.append((function, event))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                threading.Thread(target=owner.answer, args=(function, event)).start()

            def log_message(self, *_: object) -> None:
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, function: str, event: dict[str, Any]) -> None:
        job = event["CodePipeline.job"]
        parameters = job["data"]["actionConfiguration"]["configuration"].get("UserParameters", "")
        if function == "approve":
            self.client.put_job_success_result(
                jobId=job["id"], outputVariables={"Echo": parameters}
            )
        else:
            self.client.put_job_failure_result(
                jobId=job["id"], failureDetails={"type": "JobFailed", "message": "said no"}
            )


@pytest.fixture(scope="module")
def functions() -> Iterator[Functions]:
    served = Functions()
    yield served
    served.server.shutdown()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, functions: Functions
) -> Iterator[ForgelineServer]:
    routes = {
        "approve": f"http://127.0.0.1:{functions.port}/approve",
        "refuse": f"http://127.0.0.1:{functions.port}/refuse",
        "gone": f"http://127.0.0.1:{free_port()}/",
    }
    env = {"FORGELINE_LAMBDA_FUNCTION_ROUTES": json.dumps(routes)}
    server = ForgelineServer(tmp_path_factory.mktemp("invoke"), extra_env=env)
    try:
        server.start()
        functions.client = server.client("codepipeline")
        yield server
    finally:
        server.stop()


def pipeline(name: str, bucket: str, function: str) -> dict[str, Any]:
    return {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": bucket},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Get",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": bucket, "S3ObjectKey": "in.zip", "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "Src"}], "namespace": "Src"}]},
            {"name": "Check", "actions": [{
                "name": "Call",
                "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
                "configuration": {"FunctionName": function, "UserParameters": "key #{Src.ObjectKey}"},
                "inputArtifacts": [{"name": "Src"}], "namespace": "Call"}]},
        ],
    }  # fmt: skip


def run(server: ForgelineServer, function: str) -> tuple[str, dict[str, Any]]:
    pipelines, s3 = server.client("codepipeline"), server.client("s3")
    name, bucket = f"invoke-{uuid.uuid4().hex[:8]}", f"invoke-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="in.zip", Body=b"PK\x05\x06" + b"\0" * 18)
    pipelines.create_pipeline(pipeline=pipeline(name, bucket, function))
    deadline = time.monotonic() + 30
    while True:
        summary = pipelines.list_pipeline_executions(pipelineName=name)[
            "pipelineExecutionSummaries"
        ][0]
        if summary["status"] in ("Succeeded", "Failed"):
            break
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.1)
    details = pipelines.list_action_executions(pipelineName=name)["actionExecutionDetails"]
    return summary["status"], next(d for d in details if d["actionName"] == "Call")


def test_the_function_gets_the_job_and_its_success_ends_the_action(
    server: ForgelineServer, functions: Functions
) -> None:
    status, call = run(server, "approve")
    assert status == "Succeeded"
    assert call["output"]["outputVariables"] == {"Echo": "key in.zip"}
    function, event = functions.events[-1]
    job = event["CodePipeline.job"]
    assert function == "approve" and job["accountId"] == "000000000000"
    assert job["data"]["actionTypeId"]["provider"] == "Lambda"
    assert job["data"]["inputArtifacts"][0]["name"] == "Src"


def test_a_failure_result_or_an_unreachable_function_fails_the_action(
    server: ForgelineServer,
) -> None:
    status, call = run(server, "refuse")
    assert status == "Failed"
    assert (
        "said no" in call["output"]["executionResult"].get("errorDetails", {}).get("message", "")
        or call["status"] == "Failed"
    )
    status, call = run(server, "gone")
    assert status == "Failed" and call["status"] == "Failed"
