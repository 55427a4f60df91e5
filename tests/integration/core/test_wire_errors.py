"""Every error path of the wire layer, over HTTP, with the exact `__type` AWS gives.

Each bad request must also leave no trace: the repository count is checked after.
"""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest

from tests.support.signing import signed_headers, signed_post

CC = "CodeCommit_20150413"


def _post(server, operation, body, *, prefix=CC, signing_name="codecommit", **kwargs):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return signed_post(
        server.url,
        payload,
        target=f"{prefix}.{operation}" if operation else None,
        signing_name=signing_name,
        credentials=server.admin_credentials(),
        **kwargs,
    )


def _error(response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["__type"], body.get("message", "")


@pytest.fixture
def repo_count(forgeline):
    def count() -> int:
        return len(forgeline.client("codecommit").list_repositories()["repositories"])

    before = count()
    yield
    assert count() == before, "a rejected request changed state"


# --- identity -------------------------------------------------------------------------


def test_missing_authentication(forgeline, repo_count):
    response = httpx.post(
        forgeline.url + "/",
        content=b"{}",
        headers={
            "X-Amz-Target": f"{CC}.ListRepositories",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    status, code, message = _error(response)
    assert (status, code) == (403, "MissingAuthenticationTokenException")
    assert message == "Missing Authentication Token"


def test_unknown_access_key(forgeline, repo_count):
    response = signed_post(
        forgeline.url,
        b"{}",
        target=f"{CC}.ListRepositories",
        signing_name="codecommit",
        credentials=("AKIAUNKNOWNUNKNOWN00", "x" * 40),
    )
    assert _error(response)[:2] == (403, "UnrecognizedClientException")


def test_wrong_secret(forgeline, repo_count):
    key, _ = forgeline.admin_credentials()
    response = signed_post(
        forgeline.url,
        json.dumps({"repositoryName": "never"}).encode(),
        target=f"{CC}.CreateRepository",
        signing_name="codecommit",
        credentials=(key, "y" * 40),
    )
    assert _error(response)[:2] == (403, "InvalidSignatureException")


def test_tampered_body_is_refused(forgeline, repo_count):
    headers = signed_headers(
        forgeline.url,
        b'{"repositoryName": "signed"}',
        target=f"{CC}.CreateRepository",
        signing_name="codecommit",
        credentials=forgeline.admin_credentials(),
    )
    response = httpx.post(
        forgeline.url + "/", content=b'{"repositoryName": "evil"}', headers=headers
    )
    assert _error(response)[:2] == (403, "InvalidSignatureException")


def test_signature_scoped_to_another_service(forgeline, repo_count):
    response = _post(forgeline, "ListRepositories", {}, signing_name="codebuild")
    status, code, message = _error(response)
    assert (status, code) == (403, "InvalidSignatureException")
    assert "codecommit" in message


@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew_over_15_minutes(forgeline, repo_count, minutes):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    response = _post(forgeline, "ListRepositories", {}, when=when)
    status, code, message = _error(response)
    assert (status, code) == (403, "InvalidSignatureException")
    assert message.startswith("Signature expired" if minutes < 0 else "Signature not yet current")


def test_clock_skew_within_15_minutes_is_fine(forgeline):
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    assert _post(forgeline, "ListRepositories", {}, when=when).status_code == 200


def test_malformed_authorization_header(forgeline, repo_count):
    response = httpx.post(
        forgeline.url + "/",
        content=b"{}",
        headers={
            "X-Amz-Target": f"{CC}.ListRepositories",
            "Authorization": "AWS4-HMAC-SHA256 garbage",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    assert _error(response)[:2] == (403, "IncompleteSignatureException")


# --- routing and framing --------------------------------------------------------------


def test_unknown_operation(forgeline, repo_count):
    assert _error(_post(forgeline, "StealEverything", {}))[:2] == (400, "UnknownOperationException")


def test_unknown_target_prefix(forgeline, repo_count):
    response = _post(forgeline, "ListQueues", {}, prefix="AmazonSQS")
    assert _error(response)[:2] == (400, "UnknownOperationException")


def test_missing_target(forgeline, repo_count):
    assert _error(_post(forgeline, None, {}))[:2] == (400, "UnknownOperationException")


def test_bad_json(forgeline, repo_count):
    response = _post(forgeline, "CreateRepository", b'{"repositoryName": ')
    assert _error(response)[:2] == (400, "SerializationException")


def test_body_not_an_object(forgeline, repo_count):
    assert _error(_post(forgeline, "CreateRepository", b"[1, 2]"))[:2] == (
        400,
        "SerializationException",
    )


def test_wrong_content_type(forgeline, repo_count):
    response = _post(
        forgeline, "CreateRepository", {"repositoryName": "typed"}, content_type="text/plain"
    )
    assert _error(response)[:2] == (415, "UnsupportedMediaTypeException")


def test_huge_body(forgeline, repo_count):
    body = json.dumps(
        {"repositoryName": "big", "repositoryDescription": "x" * (13 * 1024 * 1024)}
    ).encode()
    response = _post(forgeline, "CreateRepository", body)
    assert _error(response)[:2] == (413, "RequestEntityTooLargeException")


# --- members --------------------------------------------------------------------------


def test_missing_required_member_gets_the_members_error(forgeline, repo_count):
    status, code, message = _error(_post(forgeline, "CreateRepository", {}))
    assert (status, code) == (400, "RepositoryNameRequiredException")
    assert "'repositoryName' failed to satisfy constraint: Member must not be null" in message


def test_wrong_type(forgeline, repo_count):
    response = _post(forgeline, "CreateRepository", {"repositoryName": 42})
    assert _error(response)[:2] == (400, "SerializationException")


def test_too_long(forgeline, repo_count):
    status, code, message = _error(
        _post(forgeline, "CreateRepository", {"repositoryName": "a" * 101})
    )
    assert (status, code) == (400, "InvalidRepositoryNameException")
    # AWS answers this error with its own fixed text, not the generic validation message.
    assert message.startswith("The repository name is not valid.")


def test_pattern_violation(forgeline, repo_count):
    status, code, _ = _error(_post(forgeline, "CreateRepository", {"repositoryName": "no spaces!"}))
    assert (status, code) == (400, "InvalidRepositoryNameException")


def test_bad_enum(forgeline, repo_count):
    status, code, message = _error(_post(forgeline, "ListRepositories", {"sortBy": "size"}))
    assert (status, code) == (400, "InvalidSortByException")
    assert "Member must satisfy enum value set: [repositoryName, lastModifiedDate]" in message


def test_list_too_long(forgeline, repo_count):
    names = [f"r{i}" for i in range(26)]
    status, code, _ = _error(_post(forgeline, "BatchGetRepositories", {"repositoryNames": names}))
    assert (status, code) == (400, "MaximumRepositoryNamesExceededException")


def test_codebuild_generic_validation_error(forgeline):
    response = _post(
        forgeline,
        "BatchGetProjects",
        {"names": []},
        prefix="CodeBuild_20161006",
        signing_name="codebuild",
    )
    status, code, message = _error(response)
    assert (status, code) == (400, "InvalidInputException")
    assert "Member must have length greater than or equal to 1" in message


def test_codepipeline_generic_validation_error(forgeline):
    response = _post(
        forgeline,
        "GetPipeline",
        {"name": "x" * 101},
        prefix="CodePipeline_20150709",
        signing_name="codepipeline",
    )
    status, code, _ = _error(response)
    assert (status, code) == (400, "ValidationException")


def test_several_violations_are_reported_together(forgeline):
    response = _post(
        forgeline,
        "GetPipeline",
        {"name": "bad name!" * 20, "version": 0},
        prefix="CodePipeline_20150709",
        signing_name="codepipeline",
    )
    _, code, message = _error(response)
    assert code == "ValidationException"
    assert message.startswith("3 validation errors detected:")


def test_not_implemented_names_the_operation(forgeline):
    response = _post(
        forgeline,
        "ListFleets",
        {},
        prefix="CodeBuild_20161006",
        signing_name="codebuild",
    )
    status, code, message = _error(response)
    assert (status, code) == (501, "NotImplementedException")
    assert "ListFleets" in message
    assert response.headers["x-amzn-RequestId"]


def test_success_carries_a_request_id(forgeline):
    response = _post(forgeline, "ListRepositories", {})
    assert response.status_code == 200
    assert len(response.headers["x-amzn-RequestId"]) == 36
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
