"""Idempotency tokens and tagging, the helpers every service shares, on a real database."""

from __future__ import annotations

import threading

import pytest

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import Base, get_engine, session_scope
from forgeline.core.idempotency import idempotent
from forgeline.core.protocol.errors import AwsError
from forgeline.core.schema import load_metadata

ERRORS = tagging.TagErrors(
    too_many="TooManyTagsException",
    reserved_key="InvalidSystemTagUsageException",
    invalid="InvalidTagsMapException",
)


@pytest.fixture
def db(database_url):
    load_metadata()
    Base.metadata.create_all(get_engine(database_url))
    return database_url


def ctx(account="111111111111", operation="StartThing"):
    return RequestContext(
        account_id=account,
        region="us-east-1",
        principal_arn="arn:aws:iam::1:root",
        access_key_id=None,
        service="codepipeline",
        operation=operation,
    )


def test_same_token_returns_the_same_result_once(db):
    calls = []

    def compute():
        calls.append(1)
        return {"executionId": f"run-{len(calls)}"}

    params = {"name": "p", "clientRequestToken": "tok-1"}
    with session_scope(db) as session:
        first = idempotent(
            session,
            ctx(),
            "tok-1",
            params,
            compute,
            mismatch_error="IdempotentParameterMismatchException",
        )
    with session_scope(db) as session:
        second = idempotent(
            session,
            ctx(),
            "tok-1",
            params,
            compute,
            mismatch_error="IdempotentParameterMismatchException",
        )
    assert first == second == {"executionId": "run-1"}
    assert len(calls) == 1


def test_same_token_other_parameters_is_a_mismatch(db):
    with session_scope(db) as session:
        idempotent(
            session, ctx(), "tok-2", {"name": "a"}, lambda: {"id": 1}, mismatch_error="Mismatch"
        )
    with pytest.raises(AwsError) as caught, session_scope(db) as session:
        idempotent(
            session, ctx(), "tok-2", {"name": "b"}, lambda: {"id": 2}, mismatch_error="Mismatch"
        )
    assert caught.value.code == "Mismatch"


def test_tokens_are_per_account_and_operation(db):
    with session_scope(db) as session:
        a = idempotent(
            session, ctx("111111111111"), "tok-3", {}, lambda: {"id": "a"}, mismatch_error="M"
        )
        b = idempotent(
            session, ctx("222222222222"), "tok-3", {}, lambda: {"id": "b"}, mismatch_error="M"
        )
        c = idempotent(
            session, ctx(operation="Other"), "tok-3", {}, lambda: {"id": "c"}, mismatch_error="M"
        )
    assert (a, b, c) == ({"id": "a"}, {"id": "b"}, {"id": "c"})


def test_concurrent_calls_with_one_token_give_one_result(db):
    results, errors = [], []
    barrier = threading.Barrier(4)

    def call(n):
        try:
            barrier.wait()
            with session_scope(db) as session:
                results.append(
                    idempotent(
                        session,
                        ctx(),
                        "tok-race",
                        {"x": 1},
                        lambda: {"winner": n},
                        mismatch_error="M",
                    )
                )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r["winner"] for r in results}) == 1


def test_tag_limits(db):
    arn = "arn:aws:codecommit:us-east-1:111111111111:r"
    with session_scope(db) as session:
        tagging.put_tags(session, "111111111111", arn, {f"k{i}": "v" for i in range(50)}, ERRORS)
    with pytest.raises(AwsError) as too_many, session_scope(db) as session:
        tagging.put_tags(session, "111111111111", arn, {"one-more": "v"}, ERRORS)
    assert too_many.value.code == "TooManyTagsException"
    with session_scope(db) as session:
        # Overwriting an existing key does not count as a new tag.
        tagging.put_tags(session, "111111111111", arn, {"k0": "new"}, ERRORS)
        assert tagging.get_tags(session, arn)["k0"] == "new"
        assert len(tagging.get_tags(session, arn)) == 50


@pytest.mark.parametrize("key", ["aws:owner", "AWS:Owner"])
def test_aws_prefix_is_reserved(db, key):
    with pytest.raises(AwsError) as caught, session_scope(db) as session:
        tagging.put_tags(session, "1", "arn:x", {key: "v"}, ERRORS)
    assert caught.value.code == "InvalidSystemTagUsageException"
    with pytest.raises(AwsError), session_scope(db) as session:
        tagging.remove_tags(session, "arn:x", [key], ERRORS)


def test_remove_and_delete_all(db):
    with session_scope(db) as session:
        tagging.put_tags(session, "1", "arn:y", {"a": "1", "b": "2", "c": "3"}, ERRORS)
        tagging.remove_tags(session, "arn:y", ["a", "missing"], ERRORS)
        assert tagging.get_tags(session, "arn:y") == {"b": "2", "c": "3"}
        tagging.delete_all_tags(session, "arn:y")
        assert tagging.get_tags(session, "arn:y") == {}
