"""Fixtures shared by the integration tests of several services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def tiny_image() -> str:
    """The busybox build image, built once if this machine lacks it.

    Tests that use it are marked `docker` (tests/support/markers.py) and so are skipped,
    before this runs, when no Docker engine answers."""
    from forgeline.codebuild import images

    return images.ensure_image("tiny")


@pytest.fixture
def server_settings(forgeline, monkeypatch) -> Iterator[None]:
    """This process reads the server's database with the server's key."""
    from forgeline.core.settings import reset_settings_cache

    monkeypatch.setenv("FORGELINE_DATA_DIR", str(forgeline.data_dir))
    monkeypatch.setenv("FORGELINE_DATABASE_URL", forgeline.database_url)
    reset_settings_cache()
    yield
    monkeypatch.undo()
    reset_settings_cache()
