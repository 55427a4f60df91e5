"""V2 triggers on a CodeCommit source: push filters (branches, file paths) and pull
request filters decide which changes start the pipeline, and the execution builds the
commit that was pushed or the pull request's source commit."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.codepipeline.support import kind, wait_for


def executions(pipelines: Any, name: str) -> list[dict[str, Any]]:
    return pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]


def source_commit(pipelines: Any, name: str, execution_id: str) -> str:
    def revision() -> str | None:
        found = pipelines.get_pipeline_execution(
            pipelineName=name, pipelineExecutionId=execution_id
        )
        revisions = found["pipelineExecution"]["artifactRevisions"]
        return revisions[0]["revisionId"] if revisions else None

    return wait_for(revision, what="the source to run")


def put(codecommit: Any, repository: str, branch: str, path: str, parent: str) -> str:
    return codecommit.put_file(
        repositoryName=repository, branchName=branch, fileContent=b"x", filePath=path,
        parentCommitId=parent, commitMessage=f"change {path}",
    )["commitId"]  # fmt: skip


def test_push_and_pull_request_filters_choose_what_runs(forgeline: Any) -> None:
    codecommit, pipelines = forgeline.client("codecommit"), forgeline.client("codepipeline")
    repository, name = f"trig-{uuid.uuid4().hex[:8]}", f"trig-{uuid.uuid4().hex[:8]}"
    bucket = f"trig-{uuid.uuid4().hex[:8]}"
    forgeline.client("s3").create_bucket(Bucket=bucket)
    codecommit.create_repository(repositoryName=repository)
    first = codecommit.put_file(
        repositoryName=repository, branchName="main", fileContent=b"hi", filePath="README.md",
        commitMessage="first",
    )["commitId"]  # fmt: skip
    pipelines.create_pipeline(
        pipeline={
            "name": name,
            "pipelineType": "V2",
            "roleArn": "arn:aws:iam::000000000000:role/pipeline",
            "artifactStore": {"type": "S3", "location": bucket},
            "triggers": [{
                "providerType": "CodeStarSourceConnection",
                "gitConfiguration": {
                    "sourceActionName": "Checkout",
                    "push": [{"branches": {"includes": ["release/*"]},
                              "filePaths": {"includes": ["src/*"]}}],
                    "pullRequest": [{"events": ["OPEN"], "branches": {"includes": ["main"]}}],
                },
            }],
            "stages": [
                {"name": "Source", "actions": [{
                    "name": "Checkout", "actionTypeId": kind("Source", "CodeCommit"),
                    "configuration": {"RepositoryName": repository, "BranchName": "main"},
                    "outputArtifacts": [{"name": "Code"}]}]},
                {"name": "Hold", "actions": [{
                    "name": "Wait", "actionTypeId": kind("Approval", "Manual")}]},
            ],
            "executionMode": "PARALLEL",
        }
    )  # fmt: skip
    assert len(executions(pipelines, name)) == 1  # CreatePipeline's own run

    # A push to main: the trigger, not BranchName, decides, and it takes release/* only.
    second = put(codecommit, repository, "main", "docs/readme.md", first)
    assert len(executions(pipelines, name)) == 1

    codecommit.create_branch(repositoryName=repository, branchName="release/1", commitId=second)
    released = put(codecommit, repository, "release/1", "src/app.py", second)
    runs = executions(pipelines, name)
    assert len(runs) == 2 and runs[0]["trigger"]["triggerType"] == "WebhookV2"
    assert source_commit(pipelines, name, runs[0]["pipelineExecutionId"]) == released

    put(codecommit, repository, "release/1", "docs/notes.md", released)  # no src/ change
    assert len(executions(pipelines, name)) == 2

    head = codecommit.get_branch(repositoryName=repository, branchName="release/1")["branch"]
    codecommit.create_pull_request(
        title="release",
        targets=[{"repositoryName": repository, "sourceReference": "release/1",
                  "destinationReference": "main"}],
    )  # fmt: skip
    runs = executions(pipelines, name)
    assert len(runs) == 3 and runs[0]["trigger"]["triggerType"] == "WebhookV2"
    assert source_commit(pipelines, name, runs[0]["pipelineExecutionId"]) == head["commitId"]
