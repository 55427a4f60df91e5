"""Requests generated from the four models, sent as raw signed JSON to a real server.

Whatever the body, the answer is a success or a well-formed AWS error: JSON with a
`__type` and a `message`, a 4xx code the operation declares (or the service's generic
validation error, or SerializationException), or a 501 for an operation Forgeline does not
implement. Never any other 5xx, never a hang.

The run is reproducible (derandomized); raise FORGELINE_FUZZ_EXAMPLES to search longer.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeline.core.protocol.catalog import APIS
from forgeline.core.providers import load_providers
from tests.support.modelgen import (
    OperationCase,
    minimal_request,
    operation_cases,
    request_strategy,
)
from tests.support.signing import signed_headers

FUZZ_EXAMPLES = int(os.environ.get("FORGELINE_FUZZ_EXAMPLES", "300"))
RAW_EXAMPLES = max(FUZZ_EXAMPLES // 5, 40)
# A request the server has not answered by then counts as a hang.
REQUEST_TIMEOUT = 20.0

CASES = operation_cases()
PROVIDERS = load_providers(sorted({spec.app for spec in APIS}))
FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)


@dataclasses.dataclass
class Wire:
    """Signs and sends raw bodies through one client (making a client costs ~0.1 s)."""

    url: str
    credentials: tuple[str, str]
    http: httpx.Client

    def post(self, case: OperationCase, body: bytes) -> httpx.Response:
        headers = signed_headers(
            self.url,
            body,
            target=case.target,
            signing_name=case.signing_name,
            credentials=self.credentials,
        )
        return self.http.post(self.url + "/", content=body, headers=headers)


@pytest.fixture(scope="module")
def wire(forgeline: Any) -> Iterator[Wire]:
    # No keep-alive: after a crash the server drops the connection it answered on, and a
    # reused one would fail the next, innocent request.
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(timeout=REQUEST_TIMEOUT, limits=limits) as http:
        yield Wire(forgeline.url, forgeline.admin_credentials(), http)
    # Valid requests among the random ones create resources: leave none behind.
    forgeline.reset()


def implemented(case: OperationCase) -> bool:
    return PROVIDERS[case.service].is_implemented(case.operation)


IMPLEMENTED = [case for case in CASES if implemented(case)]
# Half the examples go to implemented operations, where handlers and the database run;
# the rest spread over every operation (the parser and validator run for all of them).
OPERATIONS = st.sampled_from(CASES) | (
    st.sampled_from(IMPLEMENTED) if IMPLEMENTED else st.nothing()
)


def error_body(response: httpx.Response, detail: str) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        pytest.fail(f"error body is not JSON\n{detail}")
    assert isinstance(payload, dict), detail
    assert isinstance(payload.get("__type"), str) and payload["__type"], detail
    assert isinstance(payload.get("message"), str), detail
    return payload


def check_answer(case: OperationCase, body: bytes, response: httpx.Response) -> None:
    status = response.status_code
    detail = (
        f"{case.id} answered {status}: {response.text[:600]}\n"
        f"request ({len(body)} bytes): {body[:600]!r}"
    )
    assert status < 500 or status == 501, detail
    if status == 200:
        assert implemented(case), f"a success from an operation not implemented\n{detail}"
        assert isinstance(response.json(), dict), detail
        return
    assert 400 <= status < 600, detail
    payload = error_body(response, detail)
    code = payload["__type"]
    if status == 501:
        assert not implemented(case), f"501 from an implemented operation\n{detail}"
        assert code == "NotImplementedException", detail
        assert case.operation in payload["message"], detail
        return
    allowed = case.declared_errors() | {case.validation_error(), "SerializationException"}
    assert code in allowed, f"{code} is neither declared by {case.id} nor generic\n{detail}"


def encode(document: Any) -> bytes:
    # json.dumps writes NaN/Infinity literals and \ud800 escapes as they are: wanted here.
    return json.dumps(document).encode()


@settings(FUZZ_SETTINGS, max_examples=FUZZ_EXAMPLES)
@given(data=st.data())
def test_generated_requests_get_well_formed_answers(wire: Wire, data: st.DataObject) -> None:
    case = data.draw(OPERATIONS, label="operation")
    body = encode(data.draw(request_strategy(case.model), label="request"))
    check_answer(case, body, wire.post(case, body))


# -- raw bodies ------------------------------------------------------------------------

# Operations with a required member, so no malformed body is accidentally a valid request.
RAW_CASES = [
    OperationCase("codecommit", "CreateRepository"),
    OperationCase("codebuild", "StartBuild"),
]


def required_member(case: OperationCase) -> str:
    return case.model.input_shape.required_members[0]


def junk_json() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-(2**70), 2**70)
        | st.floats()
        | st.text(max_size=30)
    )
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=20)


def raw_bodies(case: OperationCase) -> st.SearchStrategy[bytes]:
    members = set(case.model.input_shape.members)
    valid = encode(minimal_request(case.model, wire=True))
    objects_without_required = st.dictionaries(
        st.text(max_size=12).filter(lambda key: key not in members), junk_json(), max_size=4
    )
    return st.one_of(
        st.binary(max_size=300),
        junk_json().map(encode),
        objects_without_required.map(encode),
        st.integers(1, len(valid) - 1).map(lambda cut: valid[:cut]),
        st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"null", b"[]"]),
    )


@settings(FUZZ_SETTINGS, max_examples=RAW_EXAMPLES)
@given(data=st.data())
def test_malformed_bodies_get_client_errors(wire: Wire, data: st.DataObject) -> None:
    case = data.draw(st.sampled_from(RAW_CASES), label="operation")
    body = data.draw(raw_bodies(case), label="body")
    response = wire.post(case, body)
    detail = (
        f"{case.id} answered {response.status_code}: {response.text[:600]}\nbody: {body[:300]!r}"
    )
    assert 400 <= response.status_code < 500, detail
    error_body(response, detail)


DEPTH = 10_000
# Bodies that have broken JSON parsers; MEMBER stands for the operation's required member.
PATHOLOGICAL = {
    "deep-lists": b"[" * DEPTH + b"]" * DEPTH,
    "deep-objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "deep-lists-in-member": b'{"MEMBER": ' + b"[" * DEPTH + b"]" * DEPTH + b"}",
    "integer-of-5000-digits": b'{"MEMBER": ' + b"9" * 5000 + b"}",
    "top-level-integer-of-5000-digits": b"9" * 5000,
    "float-overflow": b'{"MEMBER": 1e999}',
    "nan-literal": b'{"MEMBER": NaN}',
    "infinity-literal": b'{"MEMBER": -Infinity}',
    "lone-surrogate-key": b'{"\\ud800": "x"}',
    "invalid-utf8": b'{"MEMBER": "\xff\xfe"}',
    "nul-bytes": b"\x00" * 64,
    "truncated": b'{"MEMBER": "abc',
    "empty": b"",
    "json-null": b"null",
    "json-string": b'"MEMBER"',
}


@pytest.mark.parametrize("case", RAW_CASES, ids=lambda case: case.id)
@pytest.mark.parametrize("body", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_pathological_bodies_get_client_errors(
    wire: Wire, case: OperationCase, body: bytes
) -> None:
    body = body.replace(b"MEMBER", required_member(case).encode())
    response = wire.post(case, body)
    detail = (
        f"{case.id} answered {response.status_code}: {response.text[:600]}\nbody: {body[:120]!r}…"
    )
    assert 400 <= response.status_code < 500, detail
    error_body(response, detail)


# -- text a database or a UTF-8 encoder cannot take --------------------------------------

# Valid JSON escapes that Postgres text cannot hold (NUL) or UTF-8 cannot encode (a lone
# surrogate): the server stores them faithfully or refuses them, it never crashes.
ODD_TEXT = {"nul": "a\x00b", "lone-surrogate": "a\ud800b"}
CREATE_REPOSITORY = OperationCase("codecommit", "CreateRepository")


def call(wire: Wire, operation: str, document: dict[str, Any]) -> httpx.Response:
    case = OperationCase("codecommit", operation)
    body = encode(document)
    response = wire.post(case, body)
    check_answer(case, body, response)
    return response


@pytest.mark.parametrize("text", list(ODD_TEXT.values()), ids=list(ODD_TEXT))
def test_odd_text_in_a_description_is_kept_or_refused(wire: Wire, text: str) -> None:
    name = f"odd-description-{len(text)}-{ord(text[1])}"
    created = call(
        wire, "CreateRepository", {"repositoryName": name, "repositoryDescription": text}
    )
    if created.status_code == 200:
        got = call(wire, "GetRepository", {"repositoryName": name})
        assert got.status_code == 200, got.text
        assert got.json()["repositoryMetadata"]["repositoryDescription"] == text


@pytest.mark.parametrize("text", list(ODD_TEXT.values()), ids=list(ODD_TEXT))
def test_odd_text_in_a_tag_key_is_kept_or_refused(wire: Wire, text: str) -> None:
    name = f"odd-tag-{ord(text[1])}"
    created = call(wire, "CreateRepository", {"repositoryName": name, "tags": {text: "v"}})
    if created.status_code == 200:
        arn = created.json()["repositoryMetadata"]["Arn"]
        listed = call(wire, "ListTagsForResource", {"resourceArn": arn})
        assert listed.status_code == 200, listed.text
        assert listed.json()["tags"] == {text: "v"}


@pytest.mark.parametrize("case", RAW_CASES, ids=lambda case: case.id)
def test_odd_text_echoed_in_a_validation_error_is_answered(wire: Wire, case: OperationCase) -> None:
    # Too short for CodeBuild's project name, not a repository name: the error quotes it.
    body = encode({required_member(case): "\ud800"})
    response = wire.post(case, body)
    check_answer(case, body, response)
    assert 400 <= response.status_code < 500, response.text
