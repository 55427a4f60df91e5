"""Fixtures every test may use: a fresh database on the run's backend and the suite's one
real server. The markers (docker, db, no_db) are registered in pyproject.toml."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import databases

# The markers' behaviour (docker, db): see tests/support/markers.py.
pytest_plugins = ["tests.support.markers"]


@pytest.fixture
def database_url(tmp_path) -> Iterator[str]:
    """A fresh empty database on this run's backend (no tables: migrate or create_all)."""
    url = databases.create_database(tmp_path)
    try:
        yield url
    finally:
        from forgeline.core.db import dispose_engines

        dispose_engines()
        databases.drop_database(url)


@pytest.fixture(scope="session")
def forgeline(tmp_path_factory):
    """One real Forgeline server for the session (enforced SigV4 auth)."""
    from tests.support.server import running_server

    with running_server(tmp_path_factory.mktemp("forgeline")) as server:
        yield server
