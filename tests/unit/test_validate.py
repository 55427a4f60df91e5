"""The model-driven validator, without a server."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from forgeline.core.protocol.catalog import api_spec, service_model
from forgeline.core.protocol.errors import AwsError
from forgeline.core.protocol.validate import RequestValidator


def parse(model: str, operation: str, body):
    return RequestValidator(api_spec(model), service_model(model).operation_model(operation)).parse(
        body
    )


def error_of(model: str, operation: str, body) -> AwsError:
    with pytest.raises(AwsError) as caught:
        parse(model, operation, body)
    return caught.value


def test_valid_request_passes_through():
    assert parse("codecommit", "CreateRepository", {"repositoryName": "ok.name-1_x"}) == {
        "repositoryName": "ok.name-1_x"
    }


def test_unknown_members_are_ignored():
    assert parse("codecommit", "GetRepository", {"repositoryName": "r", "extra": 1}) == {
        "repositoryName": "r"
    }


def test_timestamps_become_aware_datetimes():
    parsed = parse("codecommit", "DescribePullRequestEvents", {"pullRequestId": "1"})
    assert parsed == {"pullRequestId": "1"}
    body = {"filter": {"lastModifiedDate": 1700000000}}  # not a real member: ignored
    assert parse("codebuild", "ListProjects", body) == {}
    parsed = parse("codedeploy", "ListDeployments", {"createTimeRange": {"start": 1700000000.5}})
    assert parsed["createTimeRange"]["start"] == dt.datetime.fromtimestamp(1700000000.5, tz=dt.UTC)


def test_blobs_are_decoded():
    content = base64.b64encode(b"\x00\x01binary").decode()
    parsed = parse(
        "codecommit",
        "PutFile",
        {
            "repositoryName": "r",
            "branchName": "main",
            "fileContent": content,
            "filePath": "a.bin",
        },
    )
    assert parsed["fileContent"] == b"\x00\x01binary"


def test_bad_base64_is_a_serialization_error():
    error = error_of(
        "codecommit",
        "PutFile",
        {
            "repositoryName": "r",
            "branchName": "main",
            "fileContent": "***",
            "filePath": "a",
        },
    )
    assert error.code == "SerializationException"


def test_required_member_error_is_the_models_specific_one():
    assert error_of("codecommit", "GetRepository", {}).code == "RepositoryNameRequiredException"
    assert error_of("codedeploy", "GetApplication", {}).code == "ApplicationNameRequiredException"
    assert error_of("codebuild", "StartBuild", {}).code == "InvalidInputException"
    assert error_of("codepipeline", "GetPipeline", {}).code == "ValidationException"


def test_messages_follow_aws_style():
    error = error_of("codebuild", "BatchGetProjects", {"names": []})
    assert error.message == (
        "1 validation error detected: Value [list of 0] at 'names' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1"
    )


def test_nested_paths_are_named():
    pipeline = {
        "name": "p",
        "roleArn": "arn:aws:iam::123456789012:role/x",
        "stages": [{"name": "bad name!", "actions": []}],
    }
    error = error_of("codepipeline", "CreatePipeline", {"pipeline": pipeline})
    assert error.code == "ValidationException"
    assert "Value 'bad name!' at 'pipeline.stages.1.member.name'" in error.message
    del pipeline["stages"][0]["name"]
    error = error_of("codepipeline", "CreatePipeline", {"pipeline": pipeline})
    assert "Value null at 'pipeline.stages.1.member.name'" in error.message


def test_integer_range_and_type():
    assert (
        error_of(
            "codebuild", "StartBuild", {"projectName": "p", "timeoutInMinutesOverride": 0}
        ).code
        == "InvalidInputException"
    )
    assert (
        error_of(
            "codebuild", "StartBuild", {"projectName": "p", "timeoutInMinutesOverride": "5"}
        ).code
        == "SerializationException"
    )
    assert (
        error_of(
            "codebuild", "StartBuild", {"projectName": "p", "timeoutInMinutesOverride": True}
        ).code
        == "SerializationException"
    )


def test_enum_violation():
    error = error_of("codecommit", "ListRepositories", {"order": "sideways"})
    assert error.code == "InvalidOrderException"
    assert "Member must satisfy enum value set: [ascending, descending]" in error.message


def test_pattern_must_match_whole_value():
    assert (
        error_of("codecommit", "GetRepository", {"repositoryName": "a b"}).code
        == "InvalidRepositoryNameException"
    )


def test_list_over_maximum():
    error = error_of("codebuild", "BatchGetBuilds", {"ids": [f"p:{i}" for i in range(101)]})
    assert error.code == "InvalidInputException"
    assert "Member must have length less than or equal to 100" in error.message


def test_map_size_and_nested_values():
    tags = {f"k{i}": "v" for i in range(51)}
    error = error_of(
        "codebuild",
        "CreateReportGroup",
        {
            "name": "g",
            "type": "TEST",
            "exportConfig": {"exportConfigType": "NO_EXPORT"},
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        },
    )
    assert error.code == "InvalidInputException"
    assert "length less than or equal to 50" in error.message


def test_body_must_be_an_object():
    assert error_of("codecommit", "ListRepositories", [1]).code == "SerializationException"


def test_nan_and_infinity_are_rejected():
    error = error_of("codedeploy", "ListDeployments", {"createTimeRange": {"start": float("inf")}})
    assert error.code == "SerializationException"
