"""The Build action, for real: a CodeCommit commit goes through a CodeBuild project (its
buildspec from the commit, run on the host runner) whose artifact and exported variable
become the action's output artifact and output variables, then an S3 deploy extracts the
build's artifact. A failing build fails the pipeline at Build, naming the build's state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.codepipeline.support import aws_action, wait_for
from tests.support.builds import SERVICE_ROLE, build_server, unique
from tests.support.server import ForgelineServer

BUILDSPEC = """version: 0.2
env:
  exported-variables: [BUILT_FROM]
phases:
  build:
    commands:
      - test -f app.txt
      - grep -q fail app.txt && exit 3 || true
      - mkdir -p out && tr a-z A-Z < app.txt > out/app.txt
      - export BUILT_FROM="$(cat app.txt)"
artifacts:
  base-directory: out
  files: ['**/*']
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgelineServer]:
    yield from build_server(tmp_path_factory, "host")


@pytest.fixture(scope="module")
def chain(server: ForgelineServer) -> dict[str, Any]:
    codecommit, codebuild, s3 = (server.client(n) for n in ("codecommit", "codebuild", "s3"))
    repository, project, name = unique("app"), unique("build"), unique("pipe")
    codecommit.create_repository(repositoryName=repository)
    codecommit.put_file(
        repositoryName=repository, branchName="main", fileContent=BUILDSPEC.encode(),
        filePath="buildspec.yml", commitMessage="buildspec",
    )  # fmt: skip
    codebuild.create_project(
        name=project,
        source={"type": "CODEPIPELINE"},
        artifacts={"type": "CODEPIPELINE"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=SERVICE_ROLE,
    )
    artifacts, site = unique("arts"), unique("site")
    s3.create_bucket(Bucket=artifacts)
    s3.create_bucket(Bucket=site)
    return {
        "codecommit": codecommit,
        "codebuild": codebuild,
        "s3": s3,
        "pipelines": server.client("codepipeline"),
        "repository": repository,
        "project": project,
        "name": name,
        "artifacts": artifacts,
        "site": site,
    }


def commit(chain: dict[str, Any], content: str) -> str:
    codecommit = chain["codecommit"]
    parent = codecommit.get_branch(repositoryName=chain["repository"], branchName="main")
    return codecommit.put_file(
        repositoryName=chain["repository"], branchName="main", fileContent=content.encode(),
        filePath="app.txt", commitMessage=f"app {content}",
        parentCommitId=parent["branch"]["commitId"],
    )["commitId"]  # fmt: skip


def declaration(chain: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": chain["name"],
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": chain["artifacts"]},
        "stages": [
            {"name": "Source", "actions": [aws_action(
                "Source", "CodeCommit", "Checkout",
                configuration={"RepositoryName": chain["repository"], "BranchName": "main"},
                outputArtifacts=[{"name": "Code"}],
            )]},
            {"name": "Build", "actions": [aws_action(
                "Build", "CodeBuild", "Compile",
                configuration={"ProjectName": chain["project"]},
                inputArtifacts=[{"name": "Code"}], outputArtifacts=[{"name": "Built"}],
                namespace="BuildVariables",
            )]},
            {"name": "Publish", "actions": [aws_action(
                "Deploy", "S3", "Site",
                configuration={"BucketName": chain["site"], "Extract": "true"},
                inputArtifacts=[{"name": "Built"}],
            )]},
        ],
    }  # fmt: skip


def last_execution(pipelines: Any, name: str, after: set[str]) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        for summary in pipelines.list_pipeline_executions(pipelineName=name)[
            "pipelineExecutionSummaries"
        ]:
            if summary["pipelineExecutionId"] not in after and summary["status"] in (
                "Succeeded",
                "Failed",
            ):
                return summary
        return None

    return wait_for(finished, 120)


def test_a_commit_is_built_and_its_artifact_published(chain: dict[str, Any]) -> None:
    pipelines = chain["pipelines"]
    commit(chain, "hello")
    pipelines.create_pipeline(pipeline=declaration(chain))
    done = last_execution(pipelines, chain["name"], set())
    assert done["status"] == "Succeeded", done.get("statusSummary")
    body = chain["s3"].get_object(Bucket=chain["site"], Key="app.txt")["Body"].read()
    assert body == b"HELLO\n" or body == b"HELLO"
    details = pipelines.list_action_executions(
        pipelineName=chain["name"], filter={"pipelineExecutionId": done["pipelineExecutionId"]}
    )["actionExecutionDetails"]
    compile_ = next(d for d in details if d["actionName"] == "Compile")
    assert compile_["output"]["outputVariables"] == {"BUILT_FROM": "hello"}
    build_id = compile_["output"]["executionResult"]["externalExecutionId"]
    assert build_id.startswith(chain["project"] + ":")
    build = chain_build(chain, build_id)
    assert build["initiator"] == f"codepipeline/{chain['name']}"
    assert build["buildStatus"] == "SUCCEEDED"


def chain_build(chain: dict[str, Any], build_id: str) -> dict[str, Any]:
    return chain["codebuild"].batch_get_builds(ids=[build_id])["builds"][0]


def test_a_failing_build_fails_the_pipeline_at_build(chain: dict[str, Any]) -> None:
    pipelines = chain["pipelines"]
    seen = {
        s["pipelineExecutionId"]
        for s in pipelines.list_pipeline_executions(pipelineName=chain["name"])[
            "pipelineExecutionSummaries"
        ]
    }
    commit(chain, "fail")  # the push starts the pipeline
    failed = last_execution(pipelines, chain["name"], seen)
    assert failed["status"] == "Failed"
    state = pipelines.get_pipeline_state(name=chain["name"])["stageStates"]
    build_stage = next(s for s in state if s["stageName"] == "Build")
    assert build_stage["latestExecution"]["status"] == "Failed"
    error = build_stage["actionStates"][0]["latestExecution"]["errorDetails"]
    assert "Build terminated with state: FAILED" in error["message"]
    publish = next(s for s in state if s["stageName"] == "Publish")
    assert publish["latestExecution"]["pipelineExecutionId"] != failed["pipelineExecutionId"]


CLONE_BUILDSPEC = """version: 0.2
env:
  exported-variables: [COMMITS, HEAD_COMMIT]
phases:
  build:
    commands:
      - export COMMITS="$(git rev-list --count HEAD)"
      - export HEAD_COMMIT="$(git rev-parse HEAD)"
"""


def test_a_clone_ref_source_builds_from_a_full_git_clone(
    chain: dict[str, Any], server: ForgelineServer
) -> None:
    codebuild, pipelines = chain["codebuild"], chain["pipelines"]
    project, name = unique("clone"), unique("clone-pipe")
    codebuild.create_project(
        name=project,
        source={"type": "CODEPIPELINE", "buildspec": CLONE_BUILDSPEC},
        artifacts={"type": "CODEPIPELINE"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=SERVICE_ROLE,
    )
    body = declaration(chain)
    body["name"] = name
    source = body["stages"][0]["actions"][0]
    source["configuration"]["OutputArtifactFormat"] = "CODEBUILD_CLONE_REF"
    source["namespace"] = "Src"
    body["stages"][1]["actions"][0]["configuration"]["ProjectName"] = project
    body["stages"][1]["actions"][0]["outputArtifacts"] = []
    body["stages"] = body["stages"][:2]
    pipelines.create_pipeline(pipeline=body)
    done = last_execution(pipelines, name, set())
    assert done["status"] == "Succeeded", done.get("statusSummary")
    details = pipelines.list_action_executions(pipelineName=name)["actionExecutionDetails"]
    checkout = next(d for d in details if d["actionName"] == "Checkout")
    compiled = next(d for d in details if d["actionName"] == "Compile")
    variables = compiled["output"]["outputVariables"]
    assert variables["HEAD_COMMIT"] == checkout["output"]["outputVariables"]["CommitId"]
    assert int(variables["COMMITS"]) >= 2  # the history came along, not just the files
