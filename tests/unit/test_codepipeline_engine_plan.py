"""A pipeline declaration read as the engine's plan, and variable resolution on its own."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from forgeline.codepipeline.engine.plan import (
    PipelinePlan,
    default_timeout,
    plan_from_declaration,
)
from forgeline.codepipeline.engine.variables import Unresolved, failure_message, resolve


def declaration(**extra: Any) -> dict[str, Any]:
    return {
        "name": "web",
        "roleArn": "arn:aws:iam::123456789012:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {
                "name": "Source",
                "actions": [
                    {
                        "name": "Checkout",
                        "actionTypeId": {
                            "category": "Source",
                            "owner": "AWS",
                            "provider": "CodeCommit",
                            "version": "1",
                        },
                        "configuration": {"RepositoryName": "web", "BranchName": "main"},
                        "outputArtifacts": [{"name": "Src"}],
                        "namespace": "SourceVariables",
                    }
                ],
            },
            {
                "name": "Build",
                "onFailure": {
                    "result": "RETRY",
                    "retryConfiguration": {"retryMode": "ALL_ACTIONS"},
                },
                "actions": [
                    {
                        "name": "Run",
                        "actionTypeId": {
                            "category": "Build",
                            "owner": "AWS",
                            "provider": "Commands",
                            "version": "1",
                        },
                        "runOrder": 2,
                        "commands": ["make"],
                        "outputVariables": ["VERSION"],
                        "environmentVariables": [{"name": "A", "value": "b"}],
                        "inputArtifacts": [{"name": "Src"}],
                        "region": "eu-west-1",
                    }
                ],
            },
        ],
        **extra,
    }


def test_a_declaration_becomes_a_plan_with_aws_defaults():
    plan = plan_from_declaration(declaration(), version=3)
    assert (plan.name, plan.version, plan.pipeline_type, plan.execution_mode) == (
        "web",
        3,
        "V1",
        "SUPERSEDED",
    )
    checkout = plan.stages[0].actions[0]
    assert checkout.run_order == 1
    assert checkout.stage == "Source"
    assert checkout.output_artifacts == ("Src",) and checkout.input_artifacts == ()
    assert checkout.namespace == "SourceVariables"
    assert plan.stages[0].on_failure is None

    build = plan.stage("Build")
    assert build is not None
    assert (build.on_failure, build.retry_mode) == ("RETRY", "ALL_ACTIONS")
    run = build.actions[0]
    assert run.commands == ("make",) and run.output_variables == ("VERSION",)
    assert run.environment_variables[0].type == "PLAINTEXT"
    assert run.region == "eu-west-1"
    assert plan.stage_index("Build") == 1


def test_v2_variables_keep_their_defaults_and_a_retry_without_a_mode_retries_failed_actions():
    stages = declaration()["stages"]
    stages[1]["onFailure"] = {"result": "RETRY"}
    plan = plan_from_declaration(
        declaration(
            pipelineType="V2",
            executionMode="QUEUED",
            stages=stages,
            variables=[{"name": "env", "defaultValue": "dev"}, {"name": "required"}],
        ),
        version=1,
    )
    assert plan.variables == {"env": "dev"}
    assert plan.execution_mode == "QUEUED"
    assert plan.stages[1].retry_mode == "FAILED_ACTIONS"


def test_the_plan_round_trips_through_its_json_document():
    plan = plan_from_declaration(declaration(pipelineType="V2"), version=7)
    document = json.loads(json.dumps(plan.to_document()))
    assert PipelinePlan.from_document(document) == plan


@pytest.mark.parametrize(
    ("category", "owner", "provider", "timeout"),
    [
        ("Approval", "AWS", "Manual", timedelta(days=7)),
        ("Build", "AWS", "CodeBuild", timedelta(hours=8)),
        ("Test", "AWS", "CodeBuild", timedelta(hours=8)),
        ("Deploy", "AWS", "CodeDeploy", timedelta(days=5)),
        ("Deploy", "AWS", "CloudFormation", timedelta(days=3)),
        ("Deploy", "AWS", "S3", timedelta(minutes=90)),
        ("Invoke", "AWS", "Lambda", timedelta(hours=24)),
        ("Build", "Custom", "MyBuilder", timedelta(hours=24)),
        ("Source", "AWS", "CodeCommit", timedelta(hours=1)),
        ("Build", "AWS", "Commands", timedelta(hours=1)),
    ],
)
def test_default_timeouts_follow_the_quota_table(
    category: str, owner: str, provider: str, timeout: timedelta
):
    assert default_timeout(category, owner, provider) == timeout


def test_a_declared_timeout_overrides_the_default():
    raw = declaration()
    raw["stages"][1]["actions"][0]["timeoutInMinutes"] = 30
    plan = plan_from_declaration(raw, version=1)
    assert plan.stages[1].actions[0].timeout == timedelta(minutes=30)
    assert plan.stages[0].actions[0].timeout == timedelta(hours=1)


SCOPES = {
    "codepipeline": {"PipelineExecutionId": "e-1"},
    "variables": {"env": "prod"},
    "Src": {"CommitId": "abc", "Empty": ""},
}


def test_references_resolve_inside_text_and_unknown_ones_stay_as_written():
    resolution = resolve(
        [
            "#{Src.CommitId}-#{variables.env}",
            "plain #{text",
            "#{codepipeline.PipelineExecutionId}",
            "#{Src.Empty}|",
        ],
        SCOPES,
    )
    assert resolution.values == ("abc-prod", "plain #{text", "e-1", "|")
    assert resolution.unresolved == ()

    missing = resolve(["#{Other.X} and #{Other.X}", "#{Src.Nope}"], SCOPES)
    assert missing.values == ("#{Other.X} and #{Other.X}", "#{Src.Nope}")
    assert missing.unresolved == (
        Unresolved("#{Other.X}", "namespace Other not found"),
        Unresolved("#{Src.Nope}", "variable Nope not found in namespace Src"),
    )


def test_the_failure_message_uses_aws_words_and_names_each_reference():
    message = failure_message("Deploy", [Unresolved("#{A.B}", "namespace A not found")])
    assert message == (
        "An action in this pipeline failed because one or more variables could not be "
        "resolved: Action name=Deploy. Unable to resolve #{A.B}: namespace A not found"
    )
