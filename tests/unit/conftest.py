"""The unit suite runs on nothing but Python: no database, no scratch disk, no processes.

A unit test that asks for a fixture of those (a temporary directory, a database, a server,
a build image) or carries a `docker` or `db` marker fails before it runs, and one that
starts a process fails when it tries. Such a test belongs under tests/integration.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

FORBIDDEN_FIXTURES = frozenset(
    {
        "tmp_path",
        "tmp_path_factory",
        "tmpdir",
        "tmpdir_factory",
        "database_url",
        "forgeline",
        "server_settings",
        "tiny_image",
    }
)
FORBIDDEN_MARKERS = ("docker", "db")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    asked = sorted(FORBIDDEN_FIXTURES.intersection(getattr(item, "fixturenames", ())))
    marked = [name for name in FORBIDDEN_MARKERS if item.get_closest_marker(name)]
    if asked or marked:
        pytest.fail(
            f"a unit test may not use {', '.join(asked + marked)}: move it to tests/integration",
            pytrace=False,
        )


class _NoProcesses:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("a unit test may not start a process: move it to tests/integration")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    real = subprocess.Popen
    subprocess.Popen = _NoProcesses  # type: ignore[misc, assignment]
    try:
        return (yield)
    finally:
        subprocess.Popen = real  # type: ignore[misc]
