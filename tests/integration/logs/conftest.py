"""Fixtures for the CloudWatch Logs tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def logs(forgeline: Any) -> Any:
    """A Logs client of the suite's server."""
    return forgeline.client("logs")
