"""CodePipeline's pipeline structure rules: the smallest V1 and V2 pipelines pass, and each
broken rule raises AWS's error with a message that names what is wrong."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, cast

import pytest

from forgeline.codepipeline import action_types
from forgeline.codepipeline.generated import errors, shapes
from forgeline.codepipeline.structure import CustomActionTypeInfo, validate_pipeline
from forgeline.core.protocol.errors import AwsError

ROLE = "arn:aws:iam::123456789012:role/pipeline"


def action(
    name: str,
    category: str,
    provider: str,
    *,
    owner: str = "AWS",
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    configuration: dict[str, str] | None = None,
    **members: Any,
) -> dict[str, Any]:
    declared: dict[str, Any] = {
        "name": name,
        "actionTypeId": {
            "category": category,
            "owner": owner,
            "provider": provider,
            "version": "1",
        },
        "inputArtifacts": [{"name": artifact} for artifact in inputs],
        "outputArtifacts": [{"name": artifact} for artifact in outputs],
        **members,
    }
    if configuration is not None:
        declared["configuration"] = configuration
    return declared


def codecommit(
    name: str = "Source", output: str = "SourceOutput", **members: Any
) -> dict[str, Any]:
    configuration = {"RepositoryName": "app", "BranchName": "main"}
    return action(
        name, "Source", "CodeCommit", outputs=(output,), configuration=configuration, **members
    )


def codebuild(
    name: str = "Build",
    inputs: tuple[str, ...] = ("SourceOutput",),
    outputs: tuple[str, ...] = ("BuildOutput",),
    **members: Any,
) -> dict[str, Any]:
    return action(
        name,
        "Build",
        "CodeBuild",
        inputs=inputs,
        outputs=outputs,
        configuration={"ProjectName": "app"},
        **members,
    )


def commands(name: str = "Run", **members: Any) -> dict[str, Any]:
    members.setdefault("commands", ["make test"])
    return action(name, "Compute", "Commands", inputs=("SourceOutput",), **members)


def approval(name: str = "Approve", **members: Any) -> dict[str, Any]:
    return action(name, "Approval", "Manual", **members)


def stage(name: str, *actions: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {"name": name, "actions": list(actions), **members}


def pipeline(*stages: dict[str, Any], **members: Any) -> dict[str, Any]:
    declared: dict[str, Any] = {
        "name": "app",
        "roleArn": ROLE,
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": list(stages),
    }
    declared.update(members)
    return declared


def minimal(**members: Any) -> dict[str, Any]:
    """Source (CodeCommit) -> Build (CodeBuild)."""
    return pipeline(stage("Source", codecommit()), stage("Build", codebuild()), **members)


def minimal_v2(**members: Any) -> dict[str, Any]:
    return minimal(pipelineType="V2", **members)


def validate(declared: dict[str, Any], **options: Any) -> None:
    validate_pipeline(cast(shapes.PipelineDeclaration, declared), **options)


def rejected(declared: dict[str, Any], error: type[AwsError], **options: Any) -> str:
    """The message of the `error` that validating `declared` raises."""
    with pytest.raises(error) as raised:
        validate(declared, **options)
    assert type(raised.value) is error
    return raised.value.message


def run_as_supported(monkeypatch: pytest.MonkeyPatch, category: str, provider: str) -> None:
    """Have the built-in type the checks look up count as one this server runs, for this test
    only, so the rules of a type it does not run yet can still be tested."""
    key = (category, "AWS", provider, "1")
    shipped = action_types.find_builtin(*key)
    assert shipped is not None, key
    monkeypatch.setitem(action_types._BY_ID, key, dataclasses.replace(shipped, supported=True))


def trigger(source_action: str = "Source", **git: Any) -> dict[str, Any]:
    return {
        "providerType": "CodeStarSourceConnection",
        "gitConfiguration": {"sourceActionName": source_action, **git},
    }


def connection_source(name: str = "Source") -> dict[str, Any]:
    configuration = {"ConnectionArn": "arn", "FullRepositoryId": "o/r", "BranchName": "main"}
    return action(
        name,
        "Source",
        "CodeStarSourceConnection",
        outputs=("SourceOutput",),
        configuration=configuration,
    )


def condition(result: str, *, with_rule: bool = False) -> dict[str, Any]:
    rule = {"name": "Check", "ruleTypeId": {"category": "Rule", "provider": "LambdaInvoke"}}
    return {"result": result, "rules": [rule]} if with_rule else {"result": result}


# -- valid pipelines ------------------------------------------------------------------------
def test_minimal_v1_pipeline_passes() -> None:
    validate(minimal())


def test_minimal_v2_pipeline_with_variables_and_queued_mode_passes() -> None:
    validate(
        minimal_v2(
            executionMode="QUEUED",
            variables=[{"name": "Env", "defaultValue": "dev"}],
        )
    )


def test_a_full_v2_pipeline_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    run_as_supported(monkeypatch, "Compute", "Commands")
    run_as_supported(monkeypatch, "Invoke", "Lambda")
    declared = pipeline(
        stage("Source", codecommit(namespace="SourceVariables")),
        stage(
            "Build",
            codebuild(runOrder=1, namespace="BuildVariables"),
            commands(runOrder=2, outputVariables=["VERSION"], outputArtifacts=[{"name": "Out"}]),
            action(
                "Test",
                "Test",
                "CodeBuild",
                inputs=("BuildOutput", "Out"),
                configuration={"ProjectName": "t", "PrimarySource": "BuildOutput"},
                runOrder=3,
            ),
            beforeEntry={"conditions": [condition("FAIL")]},
            onSuccess={"conditions": [condition("ROLLBACK")]},
            onFailure={"result": "RETRY", "retryConfiguration": {"retryMode": "FAILED_ACTIONS"}},
            blockers=[{"name": "Nightly", "type": "Schedule"}],
        ),
        stage(
            "Deploy",
            approval(timeoutInMinutes=60),
            action(
                "Deploy",
                "Deploy",
                "CodeDeploy",
                inputs=("BuildOutput",),
                runOrder=2,
                configuration={"ApplicationName": "app", "DeploymentGroupName": "prod"},
            ),
            action(
                "Publish",
                "Deploy",
                "S3",
                inputs=("BuildOutput",),
                runOrder=2,
                configuration={"BucketName": "site", "Extract": "true"},
            ),
            action(
                "Notify",
                "Invoke",
                "Lambda",
                runOrder=3,
                configuration={"FunctionName": "notify"},
            ),
        ),
        pipelineType="V2",
        executionMode="PARALLEL",
    )
    validate(declared)


def test_runorder_defaults_to_1_and_an_s3_source_is_a_source() -> None:
    s3 = action(
        "Bucket",
        "Source",
        "S3",
        outputs=("Zip",),
        configuration={"S3Bucket": "b", "S3ObjectKey": "app.zip"},
    )
    validate(
        pipeline(stage("Source", codecommit(), s3), stage("Build", codebuild(inputs=("Zip",))))
    )


# -- pipeline rules (InvalidStructureException) -----------------------------------------------
def test_a_pipeline_needs_two_stages() -> None:
    declared = pipeline(stage("Source", codecommit()))
    assert "at least 2 stages" in rejected(declared, errors.InvalidStructureException)


def test_a_pipeline_has_at_most_50_stages() -> None:
    builds = [stage(f"Build{n}", codebuild(f"Build{n}", outputs=())) for n in range(50)]
    declared = pipeline(stage("Source", codecommit()), *builds)
    assert "at most 50 stages" in rejected(declared, errors.InvalidStructureException)


def test_the_first_stage_holds_only_source_actions() -> None:
    declared = pipeline(stage("Source", codecommit(), codebuild()), stage("Build", codebuild("B2")))
    message = rejected(declared, errors.InvalidStructureException)
    assert "'Source'" in message and "'Build' is a Build action" in message


def test_a_source_action_outside_the_first_stage_is_refused() -> None:
    declared = minimal()
    declared["stages"][1]["actions"].append(codecommit("Late", output="LateOutput"))
    message = rejected(declared, errors.InvalidStructureException)
    assert "Action 'Late' in stage 'Build' is a Source action" in message


def test_pipeline_type_defaults_to_v1_which_has_no_variables() -> None:
    declared = minimal(variables=[{"name": "Env"}])
    assert "variables are only available for V2" in rejected(
        declared, errors.InvalidStructureException
    )


def test_v1_has_no_triggers() -> None:
    declared = minimal(triggers=[trigger()])
    assert "Triggers are only available for V2" in rejected(
        declared, errors.InvalidStructureException
    )


@pytest.mark.parametrize("mode", ["QUEUED", "PARALLEL"])
def test_v1_runs_superseded_only(mode: str) -> None:
    assert f"Execution mode {mode}" in rejected(
        minimal(executionMode=mode), errors.InvalidStructureException
    )
    validate(minimal(executionMode="SUPERSEDED"))


def test_artifact_store_and_artifact_stores_are_exclusive() -> None:
    declared = minimal(artifactStores={"us-east-1": {"type": "S3", "location": "a"}})
    assert "not both" in rejected(declared, errors.InvalidStructureException)


def test_a_pipeline_needs_an_artifact_store() -> None:
    declared = minimal()
    del declared["artifactStore"]
    assert "needs an artifactStore" in rejected(declared, errors.InvalidStructureException)


def test_an_artifact_store_is_s3_with_a_location() -> None:
    declared = minimal(artifactStore={"type": "S3", "location": ""})
    assert "needs a location" in rejected(declared, errors.InvalidStructureException)
    declared = minimal(artifactStore={"type": "FTP", "location": "x"})
    assert "'FTP'" in rejected(declared, errors.InvalidStructureException)


def test_artifact_stores_keys_are_regions() -> None:
    declared = minimal()
    del declared["artifactStore"]
    declared["artifactStores"] = {"moon-base": {"type": "S3", "location": "a"}}
    message = rejected(declared, errors.ValidationException)
    assert "moon-base" in message and "not a valid AWS Region" in message


def test_artifact_stores_include_the_pipeline_region() -> None:
    declared = minimal()
    del declared["artifactStore"]
    declared["artifactStores"] = {"eu-west-1": {"type": "S3", "location": "a"}}
    message = rejected(declared, errors.InvalidStructureException, region="us-east-1")
    assert "us-east-1" in message


def test_pipeline_variable_names_are_unique() -> None:
    declared = minimal_v2(variables=[{"name": "Env"}, {"name": "Env"}])
    assert "'Env' is declared more than once" in rejected(
        declared, errors.InvalidStructureException
    )


def test_a_pipeline_has_at_most_50_variables() -> None:
    declared = minimal_v2(variables=[{"name": f"V{n}"} for n in range(51)])
    assert "at most 50 variables" in rejected(declared, errors.InvalidStructureException)


# -- triggers ---------------------------------------------------------------------------------
def test_a_trigger_names_a_source_action_of_the_pipeline() -> None:
    declared = minimal_v2(triggers=[trigger("Elsewhere")])
    message = rejected(declared, errors.InvalidStructureException)
    assert "'Elsewhere' names no Source action" in message and "Source" in message


def test_a_trigger_on_a_codecommit_source_is_honoured() -> None:
    validate(minimal_v2(triggers=[trigger("Source", push=[{"branches": {"includes": ["main"]}}])]))


def test_a_trigger_needs_a_git_source() -> None:
    declared = minimal_v2(triggers=[trigger("Source")])
    declared["stages"][0]["actions"][0] = action(
        "Source", "Source", "S3", outputs=("SourceOutput",),
        configuration={"S3Bucket": "b", "S3ObjectKey": "k"},
    )  # fmt: skip
    message = rejected(declared, errors.InvalidStructureException)
    assert "CodeStarSourceConnection and CodeCommit" in message and "'Source' uses S3" in message


def test_a_trigger_provider_is_codestar_source_connection() -> None:
    declared = minimal_v2(triggers=[{**trigger(), "providerType": "CodeCommit"}])
    assert "'CodeCommit' is not supported" in rejected(declared, errors.InvalidStructureException)


def test_trigger_filter_counts_are_limited() -> None:
    too_many_pushes = trigger(push=[{"branches": {"includes": ["main"]}}] * 4)
    declared = minimal_v2(triggers=[too_many_pushes])
    # Trigger rules come before the (unsupported) connection provider is refused.
    declared["stages"][0]["actions"] = [connection_source()]
    assert "4 push filters" in rejected(declared, errors.InvalidStructureException)


def test_trigger_filter_pattern_lists_are_limited() -> None:
    patterns = [f"release-{n}" for n in range(9)]
    declared = minimal_v2(triggers=[trigger(pullRequest=[{"branches": {"excludes": patterns}}])])
    declared["stages"][0]["actions"] = [connection_source()]
    message = rejected(declared, errors.InvalidStructureException)
    assert "9 pullRequest branches excludes" in message


def test_one_trigger_per_source_action() -> None:
    declared = minimal_v2(triggers=[trigger(), trigger()])
    declared["stages"][0]["actions"] = [connection_source()]
    message = rejected(declared, errors.InvalidStructureException)
    assert "'Source' has more than one trigger" in message


# -- stages (InvalidStageDeclarationException) -------------------------------------------------
def test_stage_names_are_unique() -> None:
    declared = minimal()
    declared["stages"][1]["name"] = "Source"
    assert "'Source' is used by more than one stage" in rejected(
        declared, errors.InvalidStageDeclarationException
    )


def test_stage_names_are_case_sensitive() -> None:
    declared = minimal()
    declared["stages"][1]["name"] = "source"
    validate(declared)


def test_a_stage_needs_an_action() -> None:
    declared = minimal()
    declared["stages"][1]["actions"] = []
    assert "Stage 'Build' has no actions" in rejected(
        declared, errors.InvalidStageDeclarationException
    )


def test_a_stage_has_at_most_50_actions() -> None:
    builds = [codebuild(f"Build{n}", outputs=()) for n in range(51)]
    declared = pipeline(stage("Source", codecommit()), stage("Build", *builds))
    assert "51 actions" in rejected(declared, errors.InvalidStageDeclarationException)


@pytest.mark.parametrize("kind", ["beforeEntry", "onSuccess", "onFailure"])
def test_stage_conditions_are_v2_only(kind: str) -> None:
    declared = minimal()
    declared["stages"][1][kind] = {"conditions": [condition("ROLLBACK")]}
    message = rejected(declared, errors.InvalidStageDeclarationException)
    assert f"'Build' declares {kind}" in message and "V2" in message


@pytest.mark.parametrize(
    ("kind", "result"),
    [("beforeEntry", "ROLLBACK"), ("onSuccess", "SKIP"), ("onFailure", "FAIL")],
)
def test_each_condition_kind_engages_its_documented_results(kind: str, result: str) -> None:
    declared = minimal_v2()
    declared["stages"][1][kind] = {"conditions": [condition(result)]}
    message = rejected(declared, errors.InvalidStageDeclarationException)
    assert f"{kind} condition with result {result}" in message


@pytest.mark.parametrize(
    ("kind", "result"),
    [
        ("beforeEntry", "FAIL"),
        ("beforeEntry", "SKIP"),
        ("onSuccess", "FAIL"),
        ("onSuccess", "ROLLBACK"),
        ("onFailure", "ROLLBACK"),
    ],
)
def test_documented_condition_results_pass(kind: str, result: str) -> None:
    declared = minimal_v2()
    declared["stages"][1][kind] = {"conditions": [condition(result)]}
    validate(declared)


def test_condition_rules_are_refused_by_name() -> None:
    declared = minimal_v2()
    declared["stages"][1]["beforeEntry"] = {"conditions": [condition("FAIL", with_rule=True)]}
    message = rejected(declared, errors.InvalidStageDeclarationException)
    assert "Check (LambdaInvoke)" in message and "does not evaluate" in message


def test_on_failure_result_is_rollback_or_retry() -> None:
    declared = minimal_v2()
    declared["stages"][1]["onFailure"] = {"result": "SKIP"}
    assert "onFailure result SKIP" in rejected(declared, errors.InvalidStageDeclarationException)
    declared["stages"][1]["onFailure"] = {"result": "ROLLBACK"}
    validate(declared)


def test_a_retry_configuration_goes_with_retry() -> None:
    declared = minimal_v2()
    declared["stages"][1]["onFailure"] = {
        "result": "ROLLBACK",
        "retryConfiguration": {"retryMode": "ALL_ACTIONS"},
    }
    assert "retryConfiguration without result RETRY" in rejected(
        declared, errors.InvalidStageDeclarationException
    )


# -- blockers (InvalidBlockerDeclarationException) ---------------------------------------------
def test_blocker_names_are_unique_in_a_stage() -> None:
    declared = minimal()
    declared["stages"][1]["blockers"] = [
        {"name": "Window", "type": "Schedule"},
        {"name": "Window", "type": "Schedule"},
    ]
    assert "'Window' is used more than once in stage 'Build'" in rejected(
        declared, errors.InvalidBlockerDeclarationException
    )


def test_blockers_are_schedules() -> None:
    declared = minimal()
    declared["stages"][1]["blockers"] = [{"name": "Gate", "type": "Manual"}]
    assert "'Gate' in stage 'Build' has type 'Manual'" in rejected(
        declared, errors.InvalidBlockerDeclarationException
    )


# -- actions (InvalidActionDeclarationException) -----------------------------------------------
def test_action_names_are_unique_within_a_stage() -> None:
    declared = minimal()
    declared["stages"][1]["actions"].append(codebuild(outputs=("Other",)))
    assert "'Build' is used more than once in stage 'Build'" in rejected(
        declared, errors.InvalidActionDeclarationException
    )


def test_the_same_action_name_in_two_stages_passes() -> None:
    declared = pipeline(
        stage("Source", codecommit()),
        stage("Build", codebuild()),
        stage("Test", codebuild(outputs=())),
    )
    validate(declared)


@pytest.mark.parametrize("run_order", [0, 1000])
def test_run_order_is_1_to_999(run_order: int) -> None:
    declared = minimal()
    declared["stages"][1]["actions"][0]["runOrder"] = run_order
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert f"Action 'Build' in stage 'Build' has runOrder {run_order}" in message


def test_an_unknown_action_type_is_named() -> None:
    declared = minimal()
    declared["stages"][1]["actions"][0]["actionTypeId"]["provider"] = "Jenkins"
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "Category: 'Build', Provider: 'Jenkins', Owner: 'AWS', Version: '1'" in message
    assert "action 'Build' in stage 'Build' does not exist" in message


def test_a_provider_this_server_cannot_run_is_refused_by_name() -> None:
    declared = minimal()
    declared["stages"].append(
        stage(
            "Prod",
            action(
                "Deploy",
                "Deploy",
                "CloudFormation",
                inputs=("BuildOutput",),
                configuration={"ActionMode": "CREATE_UPDATE", "StackName": "app"},
            ),
        )
    )
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert message.startswith(
        "Action 'Deploy' in stage 'Prod' uses provider CloudFormation, which this server "
        "cannot run: supported providers are Source/CodeCommit, Source/S3, Build/CodeBuild"
    )


def test_commands_is_refused_by_name_while_this_server_cannot_run_it() -> None:
    declared = minimal_v2()
    declared["stages"][1]["actions"].append(commands())
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "'Run' in stage 'Build' uses provider Commands, which this server cannot run" in message


def test_a_lambda_invoke_action_is_accepted() -> None:
    declared = minimal_v2()
    declared["stages"][1]["actions"].append(
        action("Notify", "Invoke", "Lambda", configuration={"FunctionName": "notify"})
    )
    validate_pipeline(cast(shapes.PipelineDeclaration, declared))


def test_commands_is_refused_in_a_v1_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    run_as_supported(monkeypatch, "Compute", "Commands")
    declared = minimal()
    declared["stages"][1]["actions"].append(commands())
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "'Run' in stage 'Build' uses Compute/Commands" in message and "V2" in message


def test_input_artifact_count_is_within_the_type_bounds() -> None:
    declared = minimal()
    declared["stages"][1]["actions"][0]["inputArtifacts"] = []
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "has 0 input artifacts; Build/CodeBuild takes 1 to 5" in message


def test_output_artifact_count_is_within_the_type_bounds() -> None:
    declared = minimal()
    declared["stages"][0]["actions"][0]["outputArtifacts"] = []
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert (
        "'Source' in stage 'Source' has 0 output artifacts; Source/CodeCommit takes exactly 1"
        in message
    )


def test_a_required_configuration_key_is_present() -> None:
    declared = minimal()
    del declared["stages"][0]["actions"][0]["configuration"]["BranchName"]
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "missing required configuration BranchName for Source/CodeCommit" in message


def test_a_configuration_key_the_type_lacks_is_refused_with_the_allowed_keys() -> None:
    declared = minimal()
    declared["stages"][1]["actions"][0]["configuration"]["Project"] = "typo"
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "has configuration Project, which Build/CodeBuild does not have" in message
    assert (
        "BatchEnabled, CombineArtifacts, EnvironmentVariables, PrimarySource, ProjectName"
        in message
    )


def test_commands_takes_no_configuration_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    run_as_supported(monkeypatch, "Compute", "Commands")
    declared = minimal_v2()
    declared["stages"][1]["actions"].append(commands(configuration={"ProjectName": "x"}))
    assert "Compute/Commands takes no configuration keys" in rejected(
        declared, errors.InvalidActionDeclarationException
    )


def test_commands_action_needs_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    run_as_supported(monkeypatch, "Compute", "Commands")
    declared = minimal_v2()
    runner = commands()
    del runner["commands"]
    declared["stages"][1]["actions"].append(runner)
    assert "needs 1 to 50 commands; it has 0" in rejected(
        declared, errors.InvalidActionDeclarationException
    )


def test_commands_only_on_the_commands_action() -> None:
    declared = minimal_v2()
    declared["stages"][1]["actions"][0]["commands"] = ["make"]
    assert "'Build' in stage 'Build' has commands" in rejected(
        declared, errors.InvalidActionDeclarationException
    )


def test_output_variables_only_on_the_commands_action() -> None:
    declared = minimal_v2()
    declared["stages"][1]["actions"][0]["outputVariables"] = ["VERSION"]
    assert "has outputVariables" in rejected(declared, errors.InvalidActionDeclarationException)


def test_timeout_only_on_manual_approval() -> None:
    declared = minimal()
    declared["stages"][1]["actions"][0]["timeoutInMinutes"] = 30
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "'Build' in stage 'Build' sets timeoutInMinutes" in message
    del declared["stages"][1]["actions"][0]["timeoutInMinutes"]
    declared["stages"][1]["actions"].append(approval(timeoutInMinutes=30))
    validate(declared)


def test_output_artifact_names_are_unique_in_the_pipeline() -> None:
    declared = minimal()
    declared["stages"][1]["actions"][0]["outputArtifacts"] = [{"name": "SourceOutput"}]
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "output artifact 'SourceOutput'" in message
    assert "action 'Source' in stage 'Source' also declares" in message


def test_an_input_artifact_nobody_produces_is_refused() -> None:
    declared = minimal()
    declared["stages"][1]["actions"][0]["inputArtifacts"] = [{"name": "Nowhere"}]
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "input artifact 'Nowhere', which no action of the pipeline produces" in message


def test_an_input_from_a_later_stage_is_refused() -> None:
    declared = pipeline(
        stage("Source", codecommit()),
        stage("Build", codebuild(inputs=("TestOutput",))),
        stage("Test", codebuild("Test", outputs=("TestOutput",))),
    )
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "'Build' in stage 'Build' takes input artifact 'TestOutput'" in message
    assert "action 'Test' in stage 'Test' produces it" in message


def test_an_input_from_the_same_run_order_is_refused() -> None:
    declared = minimal()
    declared["stages"][1]["actions"].append(
        codebuild("Package", inputs=("BuildOutput",), outputs=("Package",))
    )
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "'Package' in stage 'Build' takes input artifact 'BuildOutput'" in message


def test_an_input_from_a_lower_run_order_in_the_same_stage_passes() -> None:
    declared = minimal()
    declared["stages"][1]["actions"].append(
        codebuild("Package", inputs=("BuildOutput",), outputs=("Package",), runOrder=2)
    )
    validate(declared)


def test_namespaces_are_unique_in_the_pipeline() -> None:
    declared = minimal()
    declared["stages"][0]["actions"][0]["namespace"] = "Vars"
    declared["stages"][1]["actions"][0]["namespace"] = "Vars"
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "'Build' in stage 'Build' uses namespace 'Vars'" in message
    assert "action 'Source' in stage 'Source' already uses" in message


# -- Regions --------------------------------------------------------------------------------
def cross_region(**stores: str) -> dict[str, Any]:
    declared = minimal()
    del declared["artifactStore"]
    declared["artifactStores"] = {
        region: {"type": "S3", "location": bucket} for region, bucket in stores.items()
    }
    return declared


def test_a_cross_region_action_with_a_store_in_its_region_passes() -> None:
    declared = cross_region(**{"us-east-1": "home", "eu-west-1": "away"})
    declared["stages"][1]["actions"][0]["region"] = "eu-west-1"
    validate(declared, region="us-east-1")


def test_a_cross_region_action_needs_artifact_stores() -> None:
    declared = minimal()
    declared["stages"][1]["actions"][0]["region"] = "eu-west-1"
    message = rejected(declared, errors.InvalidActionDeclarationException, region="us-east-1")
    assert "runs in Region eu-west-1" in message and "not a single artifactStore" in message
    declared["stages"][1]["actions"][0]["region"] = "us-east-1"
    validate(declared, region="us-east-1")


def test_an_action_region_needs_an_artifact_stores_entry() -> None:
    declared = cross_region(**{"us-east-1": "home"})
    declared["stages"][1]["actions"][0]["region"] = "ap-south-1"
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "ap-south-1, which has no entry in artifactStores (it has us-east-1)" in message


def test_a_source_action_cannot_be_cross_region() -> None:
    declared = cross_region(**{"us-east-1": "home", "eu-west-1": "away"})
    declared["stages"][0]["actions"][0]["region"] = "eu-west-1"
    message = rejected(declared, errors.InvalidActionDeclarationException, region="us-east-1")
    assert "'Source' in stage 'Source' runs in Region eu-west-1" in message
    assert "cannot be cross-region" in message


# -- custom action types --------------------------------------------------------------------
JENKINS = CustomActionTypeInfo(
    input_artifacts=(0, 5),
    output_artifacts=(0, 5),
    property_names=("ProjectName", "Token"),
    required_property_names=frozenset({"ProjectName"}),
)


def jenkins_lookup(type_id: shapes.ActionTypeId) -> CustomActionTypeInfo | None:
    return JENKINS if type_id["provider"] == "Jenkins" else None


def jenkins(**configuration: str) -> dict[str, Any]:
    return action(
        "Jenkins",
        "Build",
        "Jenkins",
        owner="Custom",
        inputs=("SourceOutput",),
        configuration=configuration,
    )


def test_a_custom_action_type_is_checked_like_a_builtin() -> None:
    declared = pipeline(stage("Source", codecommit()), stage("Build", jenkins(ProjectName="p")))
    validate(declared, custom_action_types=jenkins_lookup)
    declared = pipeline(stage("Source", codecommit()), stage("Build", jenkins()))
    message = rejected(
        declared, errors.InvalidActionDeclarationException, custom_action_types=jenkins_lookup
    )
    assert "missing required configuration ProjectName for Build/Jenkins" in message


def test_an_unknown_custom_action_type_is_named() -> None:
    declared = pipeline(stage("Source", codecommit()), stage("Build", jenkins(ProjectName="p")))
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "Provider: 'Jenkins', Owner: 'Custom'" in message


def test_custom_action_type_info_reads_a_created_action_type() -> None:
    created: shapes.ActionType = {
        "id": {"category": "Build", "owner": "Custom", "provider": "Jenkins", "version": "1"},
        "inputArtifactDetails": {"minimumCount": 1, "maximumCount": 2},
        "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
        "actionConfigurationProperties": [
            {"name": "ProjectName", "required": True, "key": True, "secret": False},
            {"name": "Token", "required": False, "key": False, "secret": True},
        ],
    }
    assert CustomActionTypeInfo.from_action_type(created) == CustomActionTypeInfo(
        (1, 2), (0, 1), ("ProjectName", "Token"), frozenset({"ProjectName"})
    )


def test_validation_does_not_change_the_declaration() -> None:
    declared = minimal_v2(variables=[{"name": "Env"}])
    before = copy.deepcopy(declared)
    validate(declared)
    assert declared == before


def test_batch_builds_are_refused_not_ignored() -> None:
    declared = minimal()
    declared["stages"][1]["actions"][0]["configuration"]["BatchEnabled"] = "true"
    message = rejected(declared, errors.InvalidActionDeclarationException)
    assert "BatchEnabled" in message
