"""CodePipeline's pipelines through boto3 against a running server: create, read any
version, update, list, delete, tag; the structure rules answered with AWS's error codes;
providers this server cannot run refused by name; the built-in action types listed."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest

from tests.support.errors import code_of

ROLE = "arn:aws:iam::000000000000:role/pipeline"


@pytest.fixture(scope="module")
def pipelines(forgeline: Any) -> Any:
    return forgeline.client("codepipeline")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def declaration(name: str, **extra: Any) -> dict[str, Any]:
    """Source (CodeCommit) -> Build (CodeBuild): the smallest pipeline AWS accepts."""
    return {
        "name": name,
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "pipeline-artifacts"},
        "stages": [
            {
                "name": "Source",
                "actions": [
                    {
                        "name": "Source",
                        "actionTypeId": {
                            "category": "Source",
                            "owner": "AWS",
                            "provider": "CodeCommit",
                            "version": "1",
                        },
                        "configuration": {"RepositoryName": "app", "BranchName": "main"},
                        "outputArtifacts": [{"name": "SourceOutput"}],
                    }
                ],
            },
            {
                "name": "Build",
                "actions": [
                    {
                        "name": "Build",
                        "actionTypeId": {
                            "category": "Build",
                            "owner": "AWS",
                            "provider": "CodeBuild",
                            "version": "1",
                        },
                        "configuration": {"ProjectName": "app-build"},
                        "inputArtifacts": [{"name": "SourceOutput"}],
                        "outputArtifacts": [{"name": "BuildOutput"}],
                    }
                ],
            },
        ],
        **extra,
    }


def test_create_get_update_list_and_delete(pipelines: Any) -> None:
    name = unique("app")
    created = pipelines.create_pipeline(
        pipeline=declaration(name), tags=[{"key": "team", "value": "web"}]
    )
    assert created["pipeline"]["version"] == 1
    assert created["pipeline"]["pipelineType"] == "V1"
    assert created["pipeline"]["executionMode"] == "SUPERSEDED"
    assert created["tags"] == [{"key": "team", "value": "web"}]

    got = pipelines.get_pipeline(name=name)
    assert got["pipeline"]["stages"][1]["actions"][0]["configuration"] == {
        "ProjectName": "app-build"
    }
    arn = got["metadata"]["pipelineArn"]
    assert arn.endswith(f":codepipeline:us-east-1:000000000000:{name}")

    changed = declaration(name, pipelineType="V2", executionMode="QUEUED")
    changed["stages"][1]["actions"][0]["configuration"]["ProjectName"] = "other"
    updated = pipelines.update_pipeline(pipeline=changed)["pipeline"]
    assert updated["version"] == 2 and updated["executionMode"] == "QUEUED"
    assert pipelines.get_pipeline(name=name)["pipeline"]["version"] == 2
    first = pipelines.get_pipeline(name=name, version=1)["pipeline"]
    assert first["stages"][1]["actions"][0]["configuration"]["ProjectName"] == "app-build"
    assert code_of(pipelines.get_pipeline, name=name, version=7) == (
        "PipelineVersionNotFoundException"
    )

    summaries = {p["name"]: p for p in pipelines.list_pipelines()["pipelines"]}
    assert summaries[name]["version"] == 2
    assert summaries[name]["pipelineType"] == "V2"

    assert pipelines.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "team", "value": "web"}
    ]
    pipelines.tag_resource(resourceArn=arn, tags=[{"key": "tier", "value": "1"}])
    pipelines.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert pipelines.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"key": "tier", "value": "1"}
    ]

    pipelines.delete_pipeline(name=name)
    assert code_of(pipelines.get_pipeline, name=name) == "PipelineNotFoundException"
    assert code_of(pipelines.list_tags_for_resource, resourceArn=arn) == (
        "ResourceNotFoundException"
    )
    pipelines.delete_pipeline(name=name)  # gone already: still a success, as on AWS


def test_a_name_in_use_and_missing_pipelines_are_refused(pipelines: Any) -> None:
    name = unique("dup")
    pipelines.create_pipeline(pipeline=declaration(name))
    assert code_of(pipelines.create_pipeline, pipeline=declaration(name)) == (
        "PipelineNameInUseException"
    )
    assert code_of(pipelines.update_pipeline, pipeline=declaration(unique("nope"))) == (
        "PipelineNotFoundException"
    )
    assert code_of(pipelines.tag_resource, resourceArn="nonsense", tags=[]) in (
        "InvalidArnException",
        "ValidationException",
    )


def test_list_pipelines_pages(pipelines: Any) -> None:
    prefix = unique("page")
    for number in range(3):
        pipelines.create_pipeline(pipeline=declaration(f"{prefix}-{number}"))
    seen: list[str] = []
    token: str | None = None
    while True:
        answer = pipelines.list_pipelines(maxResults=2, **({"nextToken": token} if token else {}))
        seen += [p["name"] for p in answer["pipelines"]]
        token = answer.get("nextToken")
        if not token:
            break
    assert [name for name in seen if name.startswith(prefix)] == [f"{prefix}-{n}" for n in range(3)]
    assert seen == sorted(seen)


def test_structure_errors_answer_with_aws_codes(pipelines: Any) -> None:
    one_stage = declaration(unique("bad"))
    one_stage["stages"] = one_stage["stages"][:1]
    assert code_of(pipelines.create_pipeline, pipeline=one_stage) == "InvalidStructureException"

    missing_key = declaration(unique("bad"))
    del missing_key["stages"][1]["actions"][0]["configuration"]["ProjectName"]
    assert code_of(pipelines.create_pipeline, pipeline=missing_key) == (
        "InvalidActionDeclarationException"
    )

    unwired = declaration(unique("bad"))
    unwired["stages"][1]["actions"][0]["inputArtifacts"] = [{"name": "Nowhere"}]
    assert code_of(pipelines.create_pipeline, pipeline=unwired) in (
        "InvalidActionDeclarationException",
        "InvalidStructureException",
    )

    twice = declaration(unique("bad"))
    twice["stages"][1]["name"] = "Source"
    assert code_of(pipelines.create_pipeline, pipeline=twice) in (
        "InvalidStageDeclarationException",
        "InvalidStructureException",
    )


def test_a_provider_this_server_cannot_run_is_refused_by_name(pipelines: Any) -> None:
    name = unique("cfn")
    body = declaration(name)
    deploy = copy.deepcopy(body["stages"][1])
    deploy["name"] = "Deploy"
    deploy["actions"][0] = {
        "name": "Stack",
        "actionTypeId": {
            "category": "Deploy",
            "owner": "AWS",
            "provider": "CloudFormation",
            "version": "1",
        },
        "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "s"},
        "inputArtifacts": [{"name": "BuildOutput"}],
    }
    body["stages"].append(deploy)
    with pytest.raises(pipelines.exceptions.InvalidActionDeclarationException) as refused:
        pipelines.create_pipeline(pipeline=body)
    assert "CloudFormation" in str(refused.value)
    assert code_of(pipelines.get_pipeline, name=name) == "PipelineNotFoundException"


def test_action_types_are_listed_and_described(pipelines: Any) -> None:
    kinds = pipelines.list_action_types(actionOwnerFilter="AWS")["actionTypes"]
    providers = {(k["id"]["category"], k["id"]["provider"]) for k in kinds}
    assert {("Source", "CodeCommit"), ("Build", "CodeBuild"), ("Deploy", "CodeDeploy")} <= providers
    assert ("Approval", "Manual") in providers
    described = pipelines.get_action_type(
        category="Build", owner="AWS", provider="CodeBuild", version="1"
    )["actionType"]
    assert described["id"]["provider"] == "CodeBuild"
    assert (
        code_of(
            pipelines.get_action_type, category="Build", owner="AWS", provider="Nope", version="1"
        )
        == "ActionTypeNotFoundException"
    )


def test_condition_rules_are_refused_and_none_ever_run(pipelines: Any) -> None:
    name = unique("rules")
    body = declaration(name, pipelineType="V2")
    body["stages"][1]["beforeEntry"] = {
        "conditions": [
            {
                "result": "FAIL",
                "rules": [
                    {
                        "name": "Window",
                        "ruleTypeId": {
                            "category": "Rule",
                            "owner": "AWS",
                            "provider": "DeploymentWindow",
                            "version": "1",
                        },
                        "configuration": {"Cron": "0 9 * * ? *"},
                    }
                ],
            }
        ]
    }
    with pytest.raises(pipelines.exceptions.InvalidStageDeclarationException) as refused:
        pipelines.create_pipeline(pipeline=body)
    assert "Window (DeploymentWindow)" in str(refused.value)
    assert pipelines.list_rule_types()["ruleTypes"] == []
    del body["stages"][1]["beforeEntry"]
    pipelines.create_pipeline(pipeline=body)
    assert pipelines.list_rule_executions(pipelineName=name)["ruleExecutionDetails"] == []
    execution = pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"][
        0
    ]["pipelineExecutionId"]
    assert code_of(
        pipelines.override_stage_condition, pipelineName=name, stageName="Build",
        pipelineExecutionId=execution, conditionType="BEFORE_ENTRY",
    ) == "ConditionNotOverridableException"  # fmt: skip
