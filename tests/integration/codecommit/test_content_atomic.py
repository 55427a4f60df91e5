"""A branch moves only together with its record: when recording fails, the ref goes back.

These run the handlers in this process on a real database and real repositories, with
a ref-change listener that fails the way a broken trigger or a lost database would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from forgeline.codecommit import gitstore, repositories
from forgeline.codecommit.content import branches as content_branches
from forgeline.codecommit.content import write as content_write
from forgeline.core.context import RequestContext
from forgeline.core.db import Base, get_engine, session_scope
from forgeline.core.events import Event
from forgeline.core.schema import load_metadata
from forgeline.core.settings import reset_settings_cache

CTX = RequestContext(
    account_id="123456789012",
    region="us-east-1",
    principal_arn="arn:aws:iam::123456789012:user/alice",
    access_key_id=None,
    service="codecommit",
    operation="PutFile",
)


class RecordingFailed(Exception):
    pass


@pytest.fixture
def store(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FORGELINE_DATABASE_URL", database_url)
    monkeypatch.setenv("FORGELINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FORGELINE_BROKER_URL", raising=False)
    monkeypatch.delenv("FORGELINE_EVENTS_FANOUT_URL", raising=False)
    monkeypatch.setattr(gitstore, "REF_CHANGE_LISTENERS", [])
    reset_settings_cache()
    load_metadata()
    Base.metadata.create_all(get_engine(database_url))
    with session_scope() as session:
        repository = repositories.create(session, CTX, {"repositoryName": "atomic"})
        session.expunge(repository)
    try:
        yield repository.id
    finally:
        reset_settings_cache()


def fail_recording(monkeypatch: pytest.MonkeyPatch) -> None:
    def listener(*_args: object) -> None:
        raise RecordingFailed("the transaction recording the change failed")

    monkeypatch.setattr(gitstore, "REF_CHANGE_LISTENERS", [listener])


def heads() -> dict[str, str | None]:
    with session_scope(readonly=True) as session:
        repository = repositories.get(session, CTX, "atomic")
        session.expunge(repository)
    git = gitstore.open_git(repository)
    return {name: gitstore.branch_head(git, name) for name in gitstore.list_branches(git)}


def event_commits() -> list[str]:
    with session_scope(readonly=True) as session:
        return [e.detail.get("commitId") for e in session.scalars(select(Event).order_by(Event.id))]


def put(path: str, parent: str | None = None) -> dict:
    params = {
        "repositoryName": "atomic",
        "branchName": "main",
        "filePath": path,
        "fileContent": b"x",
    }
    if parent:
        params["parentCommitId"] = parent
    return content_write.put_file(CTX, params)


def test_a_failed_record_puts_an_updated_branch_back(store, monkeypatch):
    first = put("a.txt")
    fail_recording(monkeypatch)
    with pytest.raises(RecordingFailed):
        put("b.txt", first["commitId"])
    assert heads() == {"main": first["commitId"]}
    assert event_commits() == [first["commitId"]]


def test_a_failed_record_removes_a_created_branch(store, monkeypatch):
    fail_recording(monkeypatch)
    with pytest.raises(RecordingFailed):
        put("a.txt")
    assert heads() == {}
    with session_scope(readonly=True) as session:
        assert repositories.get(session, CTX, "atomic").default_branch is None
    assert event_commits() == []


def test_a_failed_record_restores_a_deleted_branch(store, monkeypatch):
    first = put("a.txt")
    content_branches.create_branch(
        CTX, {"repositoryName": "atomic", "branchName": "topic", "commitId": first["commitId"]}
    )
    fail_recording(monkeypatch)
    with pytest.raises(RecordingFailed):
        content_branches.delete_branch(CTX, {"repositoryName": "atomic", "branchName": "topic"})
    assert heads() == {"main": first["commitId"], "topic": first["commitId"]}
