"""Fixtures for the CodeCommit tests: a client of the suite's server and repositories that
are deleted when the test ends."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def cc(forgeline: Any) -> Any:
    return forgeline.client("codecommit")


@pytest.fixture
def make_repo(cc: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., dict[str, Any]]]:
    """Creates repositories named `<prefix>-<random>` (the prefix defaults to the test
    module's subject) and returns their metadata; deletes them after the test."""
    default_prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    created: list[str] = []

    def make(prefix: str = default_prefix) -> dict[str, Any]:
        name = f"{prefix.replace('_', '-')}-{uuid.uuid4().hex[:10]}"
        metadata = cc.create_repository(repositoryName=name)["repositoryMetadata"]
        created.append(name)
        return metadata

    yield make
    for name in created:
        cc.delete_repository(repositoryName=name)


@pytest.fixture
def repo(make_repo: Callable[..., dict[str, Any]]) -> str:
    """The name of a new empty repository."""
    return str(make_repo()["repositoryName"])
