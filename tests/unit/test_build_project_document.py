"""The project document rules without a server: defaults, update merging, identifiers."""

from __future__ import annotations

from typing import Any

import pytest

from forgeline.codebuild.generated import errors
from forgeline.codebuild.project_document import normalize_project
from forgeline.codebuild.projects import name_from_identifier

BASE: dict[str, Any] = {
    "name": "demo",
    "source": {"type": "S3", "location": "bucket/src.zip"},
    "artifacts": {"type": "NO_ARTIFACTS"},
    "environment": {
        "type": "LINUX_CONTAINER",
        "image": "img",
        "computeType": "BUILD_GENERAL1_SMALL",
    },
    "serviceRole": "codebuild-role",
}


def test_defaults_are_stable_under_a_second_save() -> None:
    once = normalize_project(BASE)
    assert normalize_project({"name": "demo"}, once) == once
    assert once["timeoutInMinutes"] == 60 and once["cache"] == {"type": "NO_CACHE"}


def test_update_leaves_the_existing_document_untouched() -> None:
    existing = normalize_project({**BASE, "description": "before"})
    snapshot = repr(existing)
    updated = normalize_project({"name": "demo", "description": "after"}, existing)
    assert updated["description"] == "after"
    assert repr(existing) == snapshot


def test_minus_one_removes_the_limit_only_on_update() -> None:
    limited = normalize_project({**BASE, "concurrentBuildLimit": 4})
    assert "concurrentBuildLimit" not in normalize_project(
        {"name": "demo", "concurrentBuildLimit": -1}, limited
    )
    with pytest.raises(errors.InvalidInputException):
        normalize_project({**BASE, "concurrentBuildLimit": -1})


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("demo", "demo"),
        ("arn:aws:codebuild:us-east-1:123456789012:project/demo", "demo"),
        ("arn:aws:codebuild:us-west-2:123456789012:project/demo", None),
        ("arn:aws:codebuild:us-east-1:999999999999:project/demo", None),
        ("arn:aws:codebuild:us-east-1:123456789012:report-group/demo", None),
        ("arn:aws:codebuild:us-east-1:123456789012:project/", None),
        ("arn:aws:s3:::bucket", None),
    ],
)
def test_name_from_identifier(identifier: str, expected: str | None) -> None:
    assert name_from_identifier("123456789012", "us-east-1", identifier) == expected
