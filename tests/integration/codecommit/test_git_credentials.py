"""HTTPS git credentials and Basic-auth parsing, on this run's database backend."""

from __future__ import annotations

import base64

import pytest

from forgeline.codecommit import git_auth
from forgeline.codecommit.tables.git_credentials import GitCredential
from forgeline.core.auth import keys
from forgeline.core.db import Base, get_engine, session_scope
from forgeline.core.schema import load_metadata
from forgeline.core.settings import Settings


@pytest.fixture
def db(database_url):
    load_metadata()
    Base.metadata.create_all(get_engine(database_url))
    with session_scope(database_url) as session:
        keys.create_account(session, "team", account_id="123456789012")
    return database_url


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_parse_basic():
    assert git_auth.parse_basic(_basic("AKID%TOKEN", "pa:ss")) == ("AKID%TOKEN", "pa:ss")
    assert git_auth.parse_basic(None) is None
    assert git_auth.parse_basic("Bearer abc") is None
    assert git_auth.parse_basic("Basic !!!not-base64") is None
    assert git_auth.parse_basic(_basic("", "x")) is None


def test_password_hashes_are_salted_and_verifiable():
    first, second = git_auth.hash_password("s3cret"), git_auth.hash_password("s3cret")
    assert first != second and "s3cret" not in first
    assert git_auth.check_password("s3cret", first)
    assert not git_auth.check_password("s3cret!", first)
    assert not git_auth.check_password("s3cret", "md5$whatever")
    assert not git_auth.check_password("s3cret", "garbage")


def test_create_authenticate_and_delete(db):
    settings = Settings(default_region="us-east-1")
    with session_scope(db) as session:
        credential, password = git_auth.create_credential(session, "123456789012", "jane")
        name = credential.service_user_name
    assert name == "jane-at-123456789012"

    with session_scope(db) as session:
        identity = git_auth.authenticate(
            session,
            settings,
            _basic(name, password),
            repo_path="/v1/repos/r",
            host="git-codecommit.eu-west-1.amazonaws.com",
            repository_name="r",
        )
        assert identity.account_id == "123456789012"
        assert identity.principal_arn == "arn:aws:iam::123456789012:user/jane"
        assert identity.region == "eu-west-1"  # the region an AWS-style host names
        with pytest.raises(git_auth.GitAuthError):
            git_auth.authenticate(
                session,
                settings,
                _basic(name, password + "x"),
                repo_path="/v1/repos/r",
                host="127.0.0.1",
                repository_name="r",
            )

    with session_scope(db) as session:
        assert git_auth.delete_credentials(session, "123456789012", "jane") == [credential.id]
    with session_scope(db) as session, pytest.raises(git_auth.GitAuthError):
        # Even right after a successful check, a deleted credential is refused.
        git_auth.authenticate(
            session,
            settings,
            _basic(name, password),
            repo_path="/v1/repos/r",
            host="127.0.0.1",
            repository_name="r",
        )


def test_two_credentials_per_user_and_input_checks(db):
    with session_scope(db) as session:
        first, _ = git_auth.create_credential(session, "123456789012", "ops")
        second, _ = git_auth.create_credential(session, "123456789012", "ops")
        assert {first.service_user_name, second.service_user_name} == {
            "ops-at-123456789012",
            "ops+1-at-123456789012",
        }
        with pytest.raises(ValueError, match="already has 2"):
            git_auth.create_credential(session, "123456789012", "ops")
        with pytest.raises(ValueError, match="not a valid user name"):
            git_auth.create_credential(session, "123456789012", "bad name/")
        with pytest.raises(keys.AccountNotFound):
            git_auth.create_credential(session, "999999999999", "ops")
    with session_scope(db) as session:
        listed = git_auth.list_credentials(session, "123456789012", "ops")
        assert {c.id for c in listed} == {first.id, second.id}
        assert session.query(GitCredential).count() == 2
        # Deleting one by id leaves the other.
        assert git_auth.delete_credentials(session, "123456789012", "ops", first.id) == [first.id]
        assert [c.id for c in git_auth.list_credentials(session, "123456789012")] == [second.id]
