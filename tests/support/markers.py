"""The suite's markers at work: `docker` tests are skipped when no Docker engine answers,
and `db(backend)` tests run only on the pass for that database backend. (`no_db` needs no
hook: scripts/test deselects it from its second backend pass.)

A test that uses a build image fixture (tiny_image, standard_image) needs Docker whether
or not it says so, so it is marked `docker` here too.
"""

from __future__ import annotations

import pytest

from tests.support import databases
from tests.support.docker_engine import engine_answers

# Fixtures that cannot work without a Docker engine.
DOCKER_FIXTURES = frozenset({"tiny_image", "standard_image"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = databases.backend()
    for item in items:
        if DOCKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)
        for marker in item.iter_markers("db"):
            wanted = marker.args[0]
            if wanted != backend:
                reason = f"runs on the {wanted} pass only (FORGELINE_TEST_BACKEND={backend})"
                item.add_marker(pytest.mark.skip(reason=reason))
    needs_docker = [item for item in items if item.get_closest_marker("docker")]
    if needs_docker and not engine_answers():
        skip = pytest.mark.skip(reason="no Docker engine answers on this machine")
        for item in needs_docker:
            item.add_marker(skip)
