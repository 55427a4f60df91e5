"""Pipeline executions, for real: a git push to a watched branch starts the pipeline; the
CodeCommit source zips the commit into the artifact store; a manual approval waits for
PutApprovalResult with its token; the S3 deploy action extracts the artifact into a
bucket, where the pushed file can be read back. Stop, retry, the execution views and the
action executions answer as AWS's do."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.codepipeline.support import aws_action, wait_for
from tests.support.errors import code_of
from tests.support.git_cli import new_repository, signed_url

ROLE = "arn:aws:iam::000000000000:role/pipeline"


@pytest.fixture(scope="module")
def pipelines(forgeline: Any) -> Any:
    return forgeline.client("codepipeline")


@pytest.fixture(scope="module")
def s3(forgeline: Any) -> Any:
    return forgeline.client("s3")


def declaration(name: str, repository: str, artifacts: str, site: str) -> dict[str, Any]:
    return {
        "name": name,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": artifacts},
        "stages": [
            {
                "name": "Source",
                "actions": [
                    aws_action(
                        "Source",
                        "CodeCommit",
                        "Checkout",
                        configuration={
                            "RepositoryName": repository,
                            "BranchName": "main",
                            "PollForSourceChanges": "false",
                        },
                        outputArtifacts=[{"name": "Code"}],
                        namespace="SourceVariables",
                    )
                ],
            },
            {
                "name": "Approve",
                "actions": [
                    aws_action(
                        "Approval",
                        "Manual",
                        "Review",
                        configuration={"CustomData": "Commit #{SourceVariables.CommitId}"},
                    )
                ],
            },
            {
                "name": "Publish",
                "actions": [
                    aws_action(
                        "Deploy",
                        "S3",
                        "Site",
                        configuration={"BucketName": site, "Extract": "true", "ObjectKey": "www"},
                        inputArtifacts=[{"name": "Code"}],
                    )
                ],
            },
        ],
    }


def push(forgeline: Any, repository: str, work: Path, content: str) -> str:
    (work / "index.html").write_text(content)
    env = {"GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
           "HOME": str(work.parent), "PATH": "/usr/bin:/bin"}  # fmt: skip
    for args in (["add", "index.html"], ["commit", "-q", "-m", f"Publish {content}"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True)
    subprocess.run(
        ["git", "push", "-q", signed_url(forgeline, repository), "HEAD:main"],
        cwd=work, env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, env=env, check=True, capture_output=True, text=True
    )
    return head.stdout.strip()


def execution_of(pipelines: Any, name: str, execution_id: str) -> dict[str, Any]:
    return pipelines.get_pipeline_execution(pipelineName=name, pipelineExecutionId=execution_id)[
        "pipelineExecution"
    ]


def stage(pipelines: Any, name: str, stage_name: str) -> dict[str, Any]:
    states = pipelines.get_pipeline_state(name=name)["stageStates"]
    return next(s for s in states if s["stageName"] == stage_name)


def approval_token(pipelines: Any, name: str) -> str:
    def token() -> str | None:
        review = stage(pipelines, name, "Approve")["actionStates"][0]
        latest = review.get("latestExecution") or {}
        return latest.get("token") if latest.get("status") == "InProgress" else None

    return wait_for(token, what="the approval's token")


@pytest.fixture()
def setup(forgeline: Any, pipelines: Any, s3: Any, tmp_path: Path) -> dict[str, Any]:
    _, repository, _ = new_repository(forgeline, "app")
    suffix = uuid.uuid4().hex[:8]
    artifacts, site = f"artifacts-{suffix}", f"site-{suffix}"
    s3.create_bucket(Bucket=artifacts)
    s3.create_bucket(Bucket=site)
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    first = push(forgeline, repository, work, "v1")
    name = f"web-{suffix}"
    pipelines.create_pipeline(pipeline=declaration(name, repository, artifacts, site))
    return {"name": name, "repository": repository, "work": work, "site": site, "first": first}


def test_a_push_runs_the_pipeline_through_its_approval_to_the_bucket(
    forgeline: Any, pipelines: Any, s3: Any, setup: dict[str, Any]
) -> None:
    name = setup["name"]
    # CreatePipeline ran it once, on the commit already there: approve and let it finish.
    first = pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    assert len(first) == 1 and first[0]["trigger"]["triggerType"] == "CreatePipeline"
    pipelines.put_approval_result(
        pipelineName=name, stageName="Approve", actionName="Review",
        result={"summary": "ok", "status": "Approved"}, token=approval_token(pipelines, name),
    )  # fmt: skip
    wait_for(
        lambda: (
            execution_of(pipelines, name, first[0]["pipelineExecutionId"])["status"] == "Succeeded"
        ),
        what="the first execution",
    )
    body = s3.get_object(Bucket=setup["site"], Key="www/index.html")["Body"].read()
    assert body == b"v1"

    started = time.monotonic()
    commit = push(forgeline, setup["repository"], setup["work"], "v2")
    summaries = wait_for(
        lambda: [
            s
            for s in pipelines.list_pipeline_executions(pipelineName=name)[
                "pipelineExecutionSummaries"
            ]
            if s["trigger"]["triggerType"] == "CloudWatchEvent"
        ],
        what="an execution started by the push",
    )
    assert time.monotonic() - started < 10
    execution_id = summaries[0]["pipelineExecutionId"]
    token = approval_token(pipelines, name)
    source = stage(pipelines, name, "Source")
    assert source["latestExecution"] == {"pipelineExecutionId": execution_id, "status": "Succeeded"}

    assert code_of(
        pipelines.put_approval_result, pipelineName=name, stageName="Approve",
        actionName="Review", result={"summary": "x", "status": "Approved"}, token="wrong",
    ) == "InvalidApprovalTokenException"  # fmt: skip
    answer = pipelines.put_approval_result(
        pipelineName=name, stageName="Approve", actionName="Review",
        result={"summary": "ship it", "status": "Approved"}, token=token,
    )  # fmt: skip
    assert "approvedAt" in answer
    assert code_of(
        pipelines.put_approval_result, pipelineName=name, stageName="Approve",
        actionName="Review", result={"summary": "again", "status": "Approved"}, token=token,
    ) == "ApprovalAlreadyCompletedException"  # fmt: skip
    done = wait_for(
        lambda: (e := execution_of(pipelines, name, execution_id))["status"] == "Succeeded" and e,
        what="the pushed execution",
    )
    assert done["artifactRevisions"][0]["revisionId"] == commit
    assert s3.get_object(Bucket=setup["site"], Key="www/index.html")["Body"].read() == b"v2"

    details = pipelines.list_action_executions(
        pipelineName=name, filter={"pipelineExecutionId": execution_id}
    )["actionExecutionDetails"]
    by_action = {d["actionName"]: d for d in details}
    assert set(by_action) == {"Checkout", "Review", "Site"}
    checkout = by_action["Checkout"]
    assert checkout["status"] == "Succeeded"
    assert checkout["output"]["outputVariables"]["CommitId"] == commit
    assert checkout["output"]["outputVariables"]["BranchName"] == "main"
    code = checkout["output"]["outputArtifacts"][0]
    assert code["name"] == "Code" and code["s3location"]["bucket"].startswith("artifacts-")
    assert by_action["Site"]["input"]["inputArtifacts"][0]["s3location"] == code["s3location"]
    assert by_action["Review"]["input"]["resolvedConfiguration"]["CustomData"] == (
        f"Commit {commit}"
    )


def test_a_rejection_fails_the_execution_and_a_retry_runs_the_stage_again(
    forgeline: Any, pipelines: Any, setup: dict[str, Any]
) -> None:
    name = setup["name"]
    execution_id = pipelines.list_pipeline_executions(pipelineName=name)[
        "pipelineExecutionSummaries"
    ][0]["pipelineExecutionId"]
    pipelines.put_approval_result(
        pipelineName=name, stageName="Approve", actionName="Review",
        result={"summary": "not now", "status": "Rejected"}, token=approval_token(pipelines, name),
    )  # fmt: skip
    failed = wait_for(
        lambda: (e := execution_of(pipelines, name, execution_id))["status"] == "Failed" and e,
        what="the rejected execution",
    )
    assert "Review" in failed.get("statusSummary", "") or "Approve" in failed.get(
        "statusSummary", ""
    )
    assert code_of(
        pipelines.retry_stage_execution, pipelineName=name, stageName="Source",
        pipelineExecutionId=execution_id, retryMode="FAILED_ACTIONS",
    ) == "StageNotRetryableException"  # fmt: skip
    pipelines.retry_stage_execution(
        pipelineName=name, stageName="Approve",
        pipelineExecutionId=execution_id, retryMode="FAILED_ACTIONS",
    )  # fmt: skip
    pipelines.put_approval_result(
        pipelineName=name, stageName="Approve", actionName="Review",
        result={"summary": "now", "status": "Approved"}, token=approval_token(pipelines, name),
    )  # fmt: skip
    wait_for(
        lambda: execution_of(pipelines, name, execution_id)["status"] == "Succeeded",
        what="the retried execution",
    )
    attempts = [
        d for d in pipelines.list_action_executions(
            pipelineName=name, filter={"pipelineExecutionId": execution_id}
        )["actionExecutionDetails"]
        if d["actionName"] == "Review"
    ]  # fmt: skip
    assert sorted(d["status"] for d in attempts) == ["Failed", "Succeeded"]


def test_stop_and_abandon_ends_a_waiting_execution(
    forgeline: Any, pipelines: Any, setup: dict[str, Any]
) -> None:
    name = setup["name"]
    approval_token(pipelines, name)
    execution_id = pipelines.list_pipeline_executions(pipelineName=name)[
        "pipelineExecutionSummaries"
    ][0]["pipelineExecutionId"]
    pipelines.stop_pipeline_execution(
        pipelineName=name, pipelineExecutionId=execution_id, abandon=True, reason="enough"
    )
    stopped = execution_of(pipelines, name, execution_id)
    assert stopped["status"] == "Stopped"
    assert (
        code_of(
            pipelines.stop_pipeline_execution, pipelineName=name, pipelineExecutionId=execution_id
        )
        == "PipelineExecutionNotStoppableException"
    )
    summary = pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"][0]
    assert summary["stopTrigger"] == {"reason": "enough"}
    review = stage(pipelines, name, "Approve")["actionStates"][0]["latestExecution"]
    assert review["status"] == "Abandoned"


def test_disabled_transitions_hold_executions_until_enabled(
    forgeline: Any, pipelines: Any, setup: dict[str, Any]
) -> None:
    name = setup["name"]
    first = pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"][0]
    pipelines.stop_pipeline_execution(
        pipelineName=name, pipelineExecutionId=first["pipelineExecutionId"], abandon=True
    )
    pipelines.disable_stage_transition(
        pipelineName=name, stageName="Approve", transitionType="Inbound", reason="freeze"
    )
    execution_id = pipelines.start_pipeline_execution(name=name)["pipelineExecutionId"]
    held = wait_for(
        lambda: stage(pipelines, name, "Approve").get("inboundExecution"),
        what="the execution to wait at the disabled transition",
    )
    assert held["pipelineExecutionId"] == execution_id
    transition = stage(pipelines, name, "Approve")["inboundTransitionState"]
    assert transition["enabled"] is False and transition["disabledReason"] == "freeze"
    pipelines.enable_stage_transition(
        pipelineName=name, stageName="Approve", transitionType="Inbound"
    )
    approval_token(pipelines, name)
    assert stage(pipelines, name, "Approve")["latestExecution"]["pipelineExecutionId"] == (
        execution_id
    )


def test_put_action_revision_starts_the_pipeline_on_a_new_revision(
    forgeline: Any, pipelines: Any, setup: dict[str, Any]
) -> None:
    name = setup["name"]
    approval_token(pipelines, name)  # the first execution ran its source on the head
    head = pipelines.list_action_executions(pipelineName=name)["actionExecutionDetails"]
    ran = next(d for d in head if d["actionName"] == "Checkout")
    current = ran["output"]["outputVariables"]["CommitId"]
    revision = {"revisionChangeId": "c", "created": time.time()}
    same = pipelines.put_action_revision(
        pipelineName=name, stageName="Source", actionName="Checkout",
        actionRevision={"revisionId": current, **revision},
    )  # fmt: skip
    assert same["newRevision"] is False and "pipelineExecutionId" not in same
    second = push(forgeline, setup["repository"], setup["work"], "v9")
    wait_for(
        lambda: (
            stage(pipelines, name, "Source")["actionStates"][0]
            .get("latestExecution", {})
            .get("externalExecutionId")
            == second
        ),
        what="the push's execution to run its source",
    )
    assert code_of(
        pipelines.put_action_revision, pipelineName=name, stageName="Approve",
        actionName="Review", actionRevision={"revisionId": second, **revision},
    ) == "ValidationException"  # fmt: skip
    started = pipelines.put_action_revision(
        pipelineName=name, stageName="Source", actionName="Checkout",
        actionRevision={"revisionId": setup["first"], **revision},
    )  # fmt: skip
    assert started["newRevision"] is True
    execution_id = started["pipelineExecutionId"]
    wait_for(
        lambda: (
            stage(pipelines, name, "Source")["latestExecution"]
            == {"pipelineExecutionId": execution_id, "status": "Succeeded"}
        ),
        what="the source to run the given revision",
    )
    revisions = execution_of(pipelines, name, execution_id)["artifactRevisions"]
    assert revisions[0]["revisionId"] == setup["first"]
