"""The request generator against the models and the server's own validator (no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.validate import ParamValidator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeline.core.protocol.catalog import APIS, api_spec, service_model
from forgeline.core.protocol.errors import AwsError
from forgeline.core.protocol.validate import RequestValidator
from tests.support.modelgen import (
    OperationCase,
    minimal_request,
    operation_cases,
    pattern_example,
    portable_pattern,
    request_strategy,
    satisfies_pattern,
    string_example,
    valid_request_strategy,
)

CASES = operation_cases()
SERVICES = [spec.model_name for spec in APIS]
GENERATION = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def server_verdict(case: OperationCase, document: Any) -> str:
    """What Forgeline's validator says of a wire request: "ok" or the error code."""
    try:
        RequestValidator(api_spec(case.service), case.model).parse(json.loads(json.dumps(document)))
    except AwsError as error:
        return error.code
    return "ok"


def string_shapes(service: str) -> list[Any]:
    model = service_model(service)
    shapes = (model.shape_for(name) for name in model.shape_names)
    return [shape for shape in shapes if shape.type_name == "string"]


@pytest.mark.parametrize("service", SERVICES)
def test_minimal_requests_pass_the_server_validator(service: str) -> None:
    rejected = {
        case.id: verdict
        for case in CASES
        if case.service == service
        and (verdict := server_verdict(case, minimal_request(case.model, wire=True))) != "ok"
    }
    assert rejected == {}


@pytest.mark.parametrize("service", SERVICES)
def test_minimal_requests_pass_botocore_validation(service: str) -> None:
    validator = ParamValidator()
    reports = {
        case.id: report.generate_report()
        for case in CASES
        if case.service == service
        and (
            report := validator.validate(minimal_request(case.model), case.model.input_shape)
        ).has_errors()
    }
    assert reports == {}


def test_minimal_request_holds_required_members_only() -> None:
    case = OperationCase("codecommit", "CreateRepository")
    assert minimal_request(case.model) == {"repositoryName": "a"}
    pipeline = minimal_request(OperationCase("codepipeline", "CreatePipeline").model)
    assert set(pipeline["pipeline"]) == {"name", "roleArn", "stages"}
    assert satisfies_pattern(
        "arn:aws(-[\\w]+)*:iam::[0-9]{12}:role/.*", pipeline["pipeline"]["roleArn"]
    )


@pytest.mark.parametrize("service", SERVICES)
def test_string_examples_meet_every_constraint(service: str) -> None:
    for shape in string_shapes(service):
        value = string_example(shape)
        low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
        assert low <= len(value) <= (high if high is not None else len(value)), shape.name
        if shape.enum:
            assert value in shape.enum
        elif pattern := shape.metadata.get("pattern"):
            assert satisfies_pattern(pattern, value), (shape.name, pattern, value)


def test_pattern_examples_fit_the_length_asked_for() -> None:
    assert pattern_example("[0-9]{12}") == "000000000000"
    assert pattern_example("[A-Za-z0-9][A-Za-z0-9\\-_]{1,127}", 5, 10) == "aaaaa"
    assert pattern_example("AWS|ThirdParty") == "AWS"
    assert pattern_example("[0-9]{12}", 0, 5) is None


def test_unicode_property_classes_become_portable_subsets() -> None:
    pattern = "^([\\p{L}\\p{Z}\\p{N}_.:/=@+\\-]*)$"
    assert portable_pattern(pattern) == "^([a-zA-Z 0-9_.:/=@+\\-]*)$"
    assert portable_pattern("\\p{N}+") == "[0-9]+"
    example = pattern_example(pattern, 3, 8)
    assert example is not None and satisfies_pattern(pattern, example)


@GENERATION
@given(data=st.data())
def test_valid_strategy_draws_requests_the_server_accepts(data: st.DataObject) -> None:
    case = data.draw(st.sampled_from(CASES), label="operation")
    request = data.draw(valid_request_strategy(case.model), label="request")
    assert server_verdict(case, request) == "ok"


def test_fuzz_strategy_mixes_accepted_and_rejected_small_requests() -> None:
    verdicts: list[str] = []
    sizes: list[int] = []

    @GENERATION
    @given(data=st.data())
    def sample(data: st.DataObject) -> None:
        case = data.draw(st.sampled_from(CASES))
        request = data.draw(request_strategy(case.model))
        assert isinstance(request, dict)
        sizes.append(len(json.dumps(request)))
        verdicts.append(server_verdict(case, request))

    sample()
    assert "ok" in verdicts
    assert "SerializationException" in verdicts  # wrong JSON types
    assert {"ValidationException", "InvalidInputException"} & set(verdicts)  # constraints
    assert max(sizes) < 64 * 1024
