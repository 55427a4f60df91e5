"""Fixtures for the CloudWatch alarm tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def cloudwatch(forgeline: Any) -> Any:
    """A CloudWatch client of the suite's server."""
    return forgeline.client("cloudwatch")


@pytest.fixture(scope="session")
def raw_cloudwatch(forgeline: Any) -> Any:
    """One that sends what botocore would refuse to, so the server's own checks answer."""
    return forgeline.client("cloudwatch", parameter_validation=False)
