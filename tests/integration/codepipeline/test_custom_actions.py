"""Custom actions and their job workers through boto3: a custom action type, a pipeline
that uses it, and a worker that polls for the job, acknowledges it with its nonce, writes
its output artifact where the job says, and reports success (with a continuation first)
or failure, as AWS's job worker protocol goes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.codepipeline.support import wait_for, zip_of
from tests.support.errors import code_of

CATEGORY, PROVIDER = "Build", "Packager"


@pytest.fixture(scope="module")
def clients(forgeline: Any) -> dict[str, Any]:
    return {"pipelines": forgeline.client("codepipeline"), "s3": forgeline.client("s3")}


@pytest.fixture(scope="module")
def custom_type(clients: dict[str, Any]) -> dict[str, str]:
    version = uuid.uuid4().hex[:8]
    answer = clients["pipelines"].create_custom_action_type(
        category=CATEGORY,
        provider=PROVIDER,
        version=version,
        configurationProperties=[
            {
                "name": "Flavour",
                "required": True,
                "key": True,
                "secret": False,
                "queryable": True,
                "type": "String",
            },
        ],  # fmt: skip
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        settings={"executionUrlTemplate": "https://packager.example/{ExternalExecutionId}"},
    )
    assert answer["actionType"]["id"]["owner"] == "Custom"
    return {"category": CATEGORY, "owner": "Custom", "provider": PROVIDER, "version": version}


def pipeline(name: str, bucket: str, kind: dict[str, str], flavour: str) -> dict[str, Any]:
    return {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": bucket},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Get",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": bucket, "S3ObjectKey": "in.zip", "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "Src"}]}]},
            {"name": "Package", "actions": [{
                "name": "Pack", "actionTypeId": kind,
                "configuration": {"Flavour": flavour},
                "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Packed"}],
                "namespace": "Pack"}]},
        ],
    }  # fmt: skip


def poll(pipelines: Any, kind: dict[str, str], flavour: str) -> dict[str, Any]:
    return wait_for(
        lambda: next(
            iter(
                pipelines.poll_for_jobs(
                    actionTypeId=kind, maxBatchSize=1, queryParam={"Flavour": flavour}
                )["jobs"]
            ),
            None,
        )
    )


def status(pipelines: Any, name: str) -> str:
    summaries = pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    return str(summaries[0]["status"])


def setup_pipeline(clients: dict[str, Any], kind: dict[str, str], flavour: str) -> str:
    name, bucket = f"custom-{uuid.uuid4().hex[:8]}", f"custom-{uuid.uuid4().hex[:8]}"
    clients["s3"].create_bucket(Bucket=bucket)
    clients["s3"].put_object(Bucket=bucket, Key="in.zip", Body=zip_of("source"))
    clients["pipelines"].create_pipeline(pipeline=pipeline(name, bucket, kind, flavour))
    return name


def test_a_worker_runs_the_custom_action_through_a_continuation(
    clients: dict[str, Any], custom_type: dict[str, str]
) -> None:
    pipelines, s3 = clients["pipelines"], clients["s3"]
    kinds = pipelines.list_action_types(actionOwnerFilter="Custom")["actionTypes"]
    assert custom_type in [k["id"] for k in kinds]
    name = setup_pipeline(clients, custom_type, "vanilla")

    job = poll(pipelines, custom_type, "vanilla")
    data = job["data"]
    assert data["pipelineContext"]["pipelineName"] == name
    assert data["actionConfiguration"]["configuration"] == {"Flavour": "vanilla"}
    source = data["inputArtifacts"][0]["location"]["s3Location"]
    assert s3.get_object(Bucket=source["bucketName"], Key=source["objectKey"])["Body"].read()
    assert code_of(pipelines.acknowledge_job, jobId=job["id"], nonce="wrong") == (
        "InvalidNonceException"
    )
    assert pipelines.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
    assert pipelines.get_job_details(jobId=job["id"])["jobDetails"]["id"] == job["id"]
    pipelines.put_job_success_result(jobId=job["id"], continuationToken="half-way")
    assert code_of(pipelines.put_job_success_result, jobId=job["id"]) == "InvalidJobStateException"

    follow_up = poll(pipelines, custom_type, "vanilla")
    assert follow_up["id"] != job["id"]
    assert follow_up["data"]["continuationToken"] == "half-way"
    pipelines.acknowledge_job(jobId=follow_up["id"], nonce=follow_up["nonce"])
    target = follow_up["data"]["outputArtifacts"][0]["location"]["s3Location"]
    s3.put_object(Bucket=target["bucketName"], Key=target["objectKey"], Body=zip_of("packed"))
    pipelines.put_job_success_result(
        jobId=follow_up["id"],
        executionDetails={"summary": "packed", "externalExecutionId": "pk-1"},
        outputVariables={"Artifact": "packed.zip"},
    )
    wait_for(lambda: status(pipelines, name) == "Succeeded")
    details = pipelines.list_action_executions(pipelineName=name)["actionExecutionDetails"]
    pack = next(d for d in details if d["actionName"] == "Pack")
    assert pack["output"]["outputVariables"] == {"Artifact": "packed.zip"}
    assert pack["output"]["executionResult"]["externalExecutionId"] == "pk-1"
    assert pack["output"]["outputArtifacts"][0]["s3location"] == {
        "bucket": target["bucketName"],
        "key": target["objectKey"],
    }


def test_a_failure_result_fails_the_action(
    clients: dict[str, Any], custom_type: dict[str, str]
) -> None:
    pipelines = clients["pipelines"]
    name = setup_pipeline(clients, custom_type, "chocolate")
    job = poll(pipelines, custom_type, "chocolate")
    pipelines.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    pipelines.put_job_failure_result(
        jobId=job["id"], failureDetails={"type": "JobFailed", "message": "out of cocoa"}
    )
    wait_for(lambda: status(pipelines, name) == "Failed")
    states = pipelines.get_pipeline_state(name=name)["stageStates"]
    pack = next(s for s in states if s["stageName"] == "Package")["actionStates"][0]
    assert "out of cocoa" in pack["latestExecution"]["errorDetails"]["message"]


def test_unknown_types_and_jobs_are_refused(
    clients: dict[str, Any], custom_type: dict[str, str]
) -> None:
    pipelines = clients["pipelines"]
    missing = {**custom_type, "version": "nope"}
    assert code_of(pipelines.poll_for_jobs, actionTypeId=missing) == "ActionTypeNotFoundException"
    assert code_of(pipelines.get_job_details, jobId=str(uuid.uuid4())) == "JobNotFoundException"
    body = pipeline("uses-missing", "bucket", missing, "x")
    assert code_of(pipelines.create_pipeline, pipeline=body) == (
        "InvalidActionDeclarationException"
    )
    kind = {**custom_type, "version": uuid.uuid4().hex[:8]}
    pipelines.create_custom_action_type(
        category=kind["category"], provider=kind["provider"], version=kind["version"],
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
    )  # fmt: skip
    pipelines.delete_custom_action_type(
        category=kind["category"], provider=kind["provider"], version=kind["version"]
    )
    assert code_of(pipelines.poll_for_jobs, actionTypeId=kind) == "ActionTypeNotFoundException"


def test_built_in_action_types_cannot_be_updated(clients: dict[str, Any]) -> None:
    pipelines = clients["pipelines"]
    builtin = pipelines.get_action_type(
        category="Build", owner="AWS", provider="CodeBuild", version="1"
    )["actionType"]
    assert code_of(pipelines.update_action_type, actionType=builtin) == "RequestFailedException"
    builtin["id"]["provider"] = "Nope"
    assert code_of(pipelines.update_action_type, actionType=builtin) == (
        "ActionTypeNotFoundException"
    )


def test_no_third_party_job_exists_here(clients: dict[str, Any]) -> None:
    pipelines = clients["pipelines"]
    github = {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"}
    assert pipelines.poll_for_third_party_jobs(actionTypeId=github)["jobs"] == []
    unknown = {**github, "provider": "Nope"}
    assert code_of(pipelines.poll_for_third_party_jobs, actionTypeId=unknown) == (
        "ActionTypeNotFoundException"
    )
    job = str(uuid.uuid4())
    assert code_of(pipelines.get_third_party_job_details, jobId=job, clientToken="t") == (
        "JobNotFoundException"
    )
    assert (
        code_of(pipelines.acknowledge_third_party_job, jobId=job, nonce="n", clientToken="t")
        == "JobNotFoundException"
    )
