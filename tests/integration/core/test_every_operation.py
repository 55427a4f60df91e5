"""Every operation of every model Forgeline serves, called through boto3 over HTTP with its
minimal valid request: a real answer or a declared 4xx if Forgeline implements it, a 501
naming it if not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError

from forgeline.core.protocol.catalog import APIS, service_model
from forgeline.core.providers import load_providers
from tests.support.modelgen import OperationCase, minimal_request, operation_cases

CASES = operation_cases()
PROVIDERS = load_providers(sorted({spec.app for spec in APIS}))


def implemented(case: OperationCase) -> bool:
    return PROVIDERS[case.service].is_implemented(case.operation)


@pytest.fixture(scope="module")
def clients(forgeline: Any) -> Iterator[Callable[[str], Any]]:
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            # No host prefixes: boto3 would send some logs operations to "stream-<host>".
            made[service] = forgeline.client(
                service, parameter_validation=True, inject_host_prefix=False
            )
        return made[service]

    yield client
    # Minimal requests create resources (a repository named "a", …): leave none behind.
    forgeline.reset()


def test_cases_cover_every_operation_of_every_model() -> None:
    expected = sum(len(service_model(spec.model_name).operation_names) for spec in APIS)
    assert len(CASES) == expected
    assert len({case.id for case in CASES}) == expected
    assert {case.service for case in CASES} == {spec.model_name for spec in APIS}
    assert {"codecommit", "codebuild", "codedeploy", "codepipeline"} <= {
        case.service for case in CASES
    }


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_operation_answers_per_model(clients: Callable[[str], Any], case: OperationCase) -> None:
    client = clients(case.service)
    params = minimal_request(case.model)
    method = getattr(client, xform_name(case.operation))
    try:
        response = method(**params)
    except ClientError as error:
        status = error.response["ResponseMetadata"]["HTTPStatusCode"]
        code = error.response["Error"]["Code"]
        message = error.response["Error"].get("Message", "")
        if not implemented(case):
            assert (status, code) == (501, "NotImplementedException"), message
            assert case.operation in message
            return
        assert 400 <= status < 500, f"{status} {code}: {message}"
        allowed = case.client_codes()
        assert code in allowed, f"{code} is not declared by {case.id}: {message}"
        return
    assert implemented(case), f"{case.id} is not implemented yet answered {response}"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ResponseMetadata"].get("RequestId")
