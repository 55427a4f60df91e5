"""db.on_commit / db.on_rollback: the one rule for work that must wait for the outermost
commit (doorbells, event notices, deferred stops) or undo itself on rollback (moved refs),
on this run's backend."""

from __future__ import annotations

import pytest

from forgeline.core import db


def test_runs_after_the_outermost_commit_only(database_url):
    ran: list[str] = []
    with db.session_scope(database_url) as session:
        with session.begin_nested():
            db.on_commit(session, lambda: ran.append("outer"))
        assert ran == [], "a released savepoint is not a commit"
    assert ran == ["outer"]


def test_dropped_when_the_outermost_transaction_rolls_back(database_url):
    ran: list[str] = []
    undone: list[str] = []
    with pytest.raises(RuntimeError):
        with db.session_scope(database_url) as session:
            db.on_commit(session, lambda: ran.append("commit"))
            db.on_rollback(session, lambda: undone.append("first"))
            db.on_rollback(session, lambda: undone.append("second"))
            raise RuntimeError("recording failed")
    assert ran == []
    assert undone == ["second", "first"], "undone in reverse order"


def test_a_rolled_back_savepoint_keeps_what_it_registered(database_url):
    ran: list[str] = []
    with db.session_scope(database_url) as session:
        savepoint = session.begin_nested()
        db.on_commit(session, lambda: ran.append("kept"))
        savepoint.rollback()
    assert ran == ["kept"]


def test_keyed_registration_keeps_the_latest_and_rollbacks_do_not_run_on_commit(database_url):
    ran: list[str] = []
    undone: list[str] = []
    with db.session_scope(database_url) as session:
        db.on_commit(session, lambda: ran.append("first"), key="notice")
        db.on_commit(session, lambda: ran.append("latest"), key="notice")
        assert db.pending_on_commit(session, "notice") is not None
        db.on_rollback(session, lambda: undone.append("undo"))
    assert ran == ["latest"]
    assert undone == []


def test_a_failing_callback_does_not_fail_the_commit_or_the_others(database_url):
    ran: list[str] = []

    def broken() -> None:
        raise OSError("broker down")

    with db.session_scope(database_url) as session:
        db.on_commit(session, broken)
        db.on_commit(session, lambda: ran.append("next"))
    assert ran == ["next"]
