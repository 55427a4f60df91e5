"""CodePipeline's built-in action types: the catalog (what Forgeline runs, what it only
lists), lookups, and every type's ListActionTypes and GetActionType forms checked against
botocore's model of those outputs."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape

from forgeline.codepipeline import action_types
from forgeline.codepipeline.action_types import BUILTIN_ACTION_TYPES, BuiltinActionType

MODEL = botocore.session.get_session().get_service_model("codepipeline")

RUNNABLE = {
    ("Source", "AWS", "CodeCommit"),
    ("Source", "AWS", "S3"),
    ("Build", "AWS", "CodeBuild"),
    ("Test", "AWS", "CodeBuild"),
    ("Deploy", "AWS", "CodeDeploy"),
    ("Deploy", "AWS", "S3"),
    ("Approval", "AWS", "Manual"),
    ("Invoke", "AWS", "Lambda"),
}
REFUSED = {
    ("Compute", "AWS", "Commands"),  # not run yet
    ("Source", "AWS", "CodeStarSourceConnection"),
    ("Source", "AWS", "ECR"),
    ("Source", "ThirdParty", "GitHub"),
    ("Build", "AWS", "ECRBuildAndPublish"),
    ("Test", "AWS", "DeviceFarm"),
    ("Deploy", "AWS", "CloudFormation"),
    ("Deploy", "AWS", "CloudFormationStackSet"),
    ("Deploy", "AWS", "CloudFormationStackInstances"),
    ("Deploy", "AWS", "ECS"),
    ("Deploy", "AWS", "CodeDeployToECS"),
    ("Deploy", "AWS", "ElasticBeanstalk"),
    ("Deploy", "AWS", "AppConfig"),
    ("Deploy", "AWS", "OpsWorks"),
    ("Deploy", "AWS", "ServiceCatalog"),
    ("Deploy", "ThirdParty", "AlexaSkillsKit"),
    ("Deploy", "AWS", "EKS"),
    ("Invoke", "AWS", "StepFunctions"),
    ("Invoke", "AWS", "InspectorScan"),
}


def builtin(category: str, provider: str, owner: str = "AWS") -> BuiltinActionType:
    found = action_types.find_builtin(category, owner, provider, "1")
    assert found is not None, (category, owner, provider)
    return found


def ids(kinds: list[BuiltinActionType]) -> set[tuple[str, str, str]]:
    return {(kind.category, kind.owner, kind.provider) for kind in kinds}


# -- a walk over botocore's output shapes ---------------------------------------------------
def model_problems(shape: Shape, value: Any, path: str) -> list[str]:
    """Everything in `value` that botocore's model of `shape` does not allow."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object"]
        problems = [f"{path}.{name}: not a member" for name in value if name not in shape.members]
        problems += [
            f"{path}.{name}: required, missing"
            for name in shape.required_members
            if name not in value
        ]
        for name, item in value.items():
            if name in shape.members:
                problems += model_problems(shape.members[name], item, f"{path}.{name}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        problems = _range_problems(shape, len(value), f"{path} (length)")
        for index, item in enumerate(value):
            problems += model_problems(shape.member, item, f"{path}[{index}]")
        return problems
    if kind == "map":
        problems = []
        for key, item in value.items():
            problems += model_problems(shape.key, key, f"{path} key")
            problems += model_problems(shape.value, item, f"{path}.{key}")
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string"]
        problems = _range_problems(shape, len(value), f"{path} (length)")
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        pattern = shape.metadata.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            problems.append(f"{path}: {value!r} does not match {pattern}")
        return problems
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected an integer"]
        return _range_problems(shape, value, path)
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    return [f"{path}: unexpected shape type {kind}"]


def _range_problems(shape: Shape, number: int, path: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and number < low:
        return [f"{path}: {number} is below {low}"]
    if high is not None and number > high:
        return [f"{path}: {number} is above {high}"]
    return []


def test_the_model_walk_reports_unknown_missing_and_out_of_range_members() -> None:
    shape = MODEL.shape_for("ArtifactDetails")
    assert model_problems(shape, {"minimumCount": 0, "maximumCount": 1}, "x") == []
    assert model_problems(shape, {"minimumCount": 0, "maximumCount": 6, "extra": 1}, "x") == [
        "x.extra: not a member",
        "x.maximumCount: 6 is above 5",
    ]
    assert model_problems(shape, {"minimumCount": 0}, "x") == ["x.maximumCount: required, missing"]


# -- the catalog ----------------------------------------------------------------------------
def test_the_types_forgeline_runs_are_supported() -> None:
    assert ids(action_types.supported_action_types()) == RUNNABLE


def test_known_types_forgeline_does_not_run_are_listed_but_unsupported() -> None:
    assert ids([kind for kind in BUILTIN_ACTION_TYPES if not kind.supported]) == REFUSED


def test_every_builtin_type_is_version_1_and_listed_once() -> None:
    keys = [(k.category, k.owner, k.provider, k.version) for k in BUILTIN_ACTION_TYPES]
    assert len(keys) == len(set(keys))
    assert {kind.version for kind in BUILTIN_ACTION_TYPES} == {"1"}


def test_artifact_bounds_follow_aws() -> None:
    expected = {
        ("Source", "CodeCommit"): ((0, 0), (1, 1)),
        ("Source", "S3"): ((0, 0), (1, 1)),
        ("Build", "CodeBuild"): ((1, 5), (0, 5)),
        ("Test", "CodeBuild"): ((1, 5), (0, 5)),
        ("Compute", "Commands"): ((1, 10), (0, 1)),
        ("Deploy", "CodeDeploy"): ((1, 1), (0, 0)),
        ("Deploy", "S3"): ((1, 1), (0, 0)),
        ("Approval", "Manual"): ((0, 0), (0, 0)),
        ("Invoke", "Lambda"): ((0, 5), (0, 5)),
        ("Deploy", "CloudFormation"): ((0, 10), (0, 1)),
        ("Deploy", "CloudFormationStackSet"): ((1, 3), (0, 0)),
        ("Invoke", "StepFunctions"): ((0, 1), (0, 1)),
    }
    for (category, provider), (inputs, outputs) in expected.items():
        kind = builtin(category, provider)
        assert (kind.input_artifacts, kind.output_artifacts) == (inputs, outputs), provider


def test_configuration_keys_and_which_are_required() -> None:
    codecommit = builtin("Source", "CodeCommit")
    assert codecommit.property_names == (
        "RepositoryName",
        "BranchName",
        "PollForSourceChanges",
        "OutputArtifactFormat",
    )
    assert codecommit.required_property_names == ("RepositoryName", "BranchName")
    assert builtin("Build", "CodeBuild").property_names == (
        "ProjectName",
        "PrimarySource",
        "EnvironmentVariables",
        "BatchEnabled",
        "CombineArtifacts",
    )
    assert builtin("Deploy", "S3").required_property_names == ("BucketName", "Extract")
    assert builtin("Approval", "Manual").required_property_names == ()
    assert builtin("Invoke", "Lambda").required_property_names == ("FunctionName",)
    assert builtin("Compute", "Commands").properties == ()


def test_commands_and_the_managed_compute_types_are_v2_only() -> None:
    v2_only = {kind.provider for kind in BUILTIN_ACTION_TYPES if kind.pipeline_types == {"V2"}}
    assert v2_only == {"Commands", "ECRBuildAndPublish", "EKS"}
    assert builtin("Source", "CodeCommit").pipeline_types == {"V1", "V2"}


def test_secret_keys_are_marked_secret() -> None:
    github = builtin("Source", "GitHub", owner="ThirdParty")
    secret = [prop.name for prop in github.properties if prop.secret]
    assert secret == ["OAuthToken"]


def test_find_builtin_needs_the_exact_id() -> None:
    assert action_types.find_builtin("Build", "AWS", "CodeBuild", "1") is not None
    assert action_types.find_builtin("Build", "AWS", "codebuild", "1") is None
    assert action_types.find_builtin("Build", "AWS", "CodeBuild", "2") is None
    assert action_types.find_builtin("Build", "Custom", "CodeBuild", "1") is None
    assert action_types.find_builtin("Source", "ThirdParty", "GitHub", "1") is not None


def test_builtin_action_types_filters_by_owner() -> None:
    assert len(action_types.builtin_action_types()) == len(BUILTIN_ACTION_TYPES)
    assert ids(action_types.builtin_action_types("ThirdParty")) == {
        ("Source", "ThirdParty", "GitHub"),
        ("Deploy", "ThirdParty", "AlexaSkillsKit"),
    }
    assert {k.owner for k in action_types.builtin_action_types("AWS")} == {"AWS"}
    assert action_types.builtin_action_types("Custom") == []


# -- ListActionTypes and GetActionType forms ------------------------------------------------
@pytest.mark.parametrize("kind", BUILTIN_ACTION_TYPES, ids=lambda kind: kind.label)
def test_list_action_types_form_fits_the_model(kind: BuiltinActionType) -> None:
    output = {"actionTypes": [kind.to_action_type()]}
    assert model_problems(MODEL.shape_for("ListActionTypesOutput"), output, "output") == []


@pytest.mark.parametrize("kind", BUILTIN_ACTION_TYPES, ids=lambda kind: kind.label)
def test_get_action_type_form_fits_the_model(kind: BuiltinActionType) -> None:
    output = {"actionType": kind.to_action_type_declaration()}
    assert model_problems(MODEL.shape_for("GetActionTypeOutput"), output, "output") == []


def test_list_form_reports_id_keys_and_counts() -> None:
    listed = builtin("Source", "CodeCommit").to_action_type()
    assert listed["id"] == {
        "category": "Source",
        "owner": "AWS",
        "provider": "CodeCommit",
        "version": "1",
    }
    assert listed["inputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 0}
    assert listed["outputArtifactDetails"] == {"minimumCount": 1, "maximumCount": 1}
    repository = listed["actionConfigurationProperties"][0]
    assert repository["name"] == "RepositoryName"
    assert (repository["required"], repository["key"], repository["secret"]) == (True, True, False)
    poll = next(
        p for p in listed["actionConfigurationProperties"] if p["name"] == "PollForSourceChanges"
    )
    assert (poll["required"], poll["type"]) == (False, "Boolean")


def test_get_form_reports_optional_and_no_echo() -> None:
    declared = builtin("Source", "GitHub", owner="ThirdParty").to_action_type_declaration()
    token = next(p for p in declared["properties"] if p["name"] == "OAuthToken")
    assert (token["optional"], token["noEcho"]) == (False, True)
    poll = next(p for p in declared["properties"] if p["name"] == "PollForSourceChanges")
    assert (poll["optional"], poll["noEcho"]) == (True, False)
    assert declared["executor"]["type"] == "JobWorker"
    assert declared["permissions"] == {"allowedAccounts": ["*"]}


def test_counts_above_the_list_models_cap_are_capped_there_only() -> None:
    cloudformation = builtin("Deploy", "CloudFormation")
    assert cloudformation.to_action_type()["inputArtifactDetails"]["maximumCount"] == 5
    declared = cloudformation.to_action_type_declaration()
    assert declared["inputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 10}


def test_more_than_ten_keys_are_reported_required_first() -> None:
    stack_set = builtin("Deploy", "CloudFormationStackSet")
    assert len(stack_set.properties) > 10
    listed = [p["name"] for p in stack_set.to_action_type()["actionConfigurationProperties"]]
    assert len(listed) == 10
    assert listed[:2] == ["StackSetName", "TemplatePath"]
