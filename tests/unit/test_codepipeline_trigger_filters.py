"""V2 trigger filters: branches, tags and file paths with includes and excludes, and pull
request events."""

from __future__ import annotations

from forgeline.codepipeline.trigger_filters import BRANCH, TAG, pull_request_matches, push_matches


def paths(*names: str):  # type: ignore[no-untyped-def]
    return lambda: list(names)


def test_branch_includes_and_excludes() -> None:
    git = {
        "push": [{"branches": {"includes": ["main", "release/*"], "excludes": ["release/old*"]}}]
    }
    assert push_matches(git, BRANCH, "main", paths())
    assert push_matches(git, BRANCH, "release/2.0", paths())
    assert not push_matches(git, BRANCH, "release/old-1", paths())
    assert not push_matches(git, BRANCH, "feature/x", paths())


def test_file_paths_narrow_a_branch_push() -> None:
    git = {"push": [{"branches": {"includes": ["main"]}, "filePaths": {"includes": ["src/*"]}}]}
    assert push_matches(git, BRANCH, "main", paths("README.md", "src/app.py"))
    assert not push_matches(git, BRANCH, "main", paths("README.md"))


def test_tags_match_tag_pushes_only() -> None:
    git = {"push": [{"tags": {"includes": ["v*"]}}]}
    assert push_matches(git, TAG, "v1.2", paths())
    assert not push_matches(git, TAG, "nightly", paths())
    assert not push_matches(git, BRANCH, "main", paths())


def test_pull_request_events_and_destination() -> None:
    git = {"pullRequest": [{"events": ["OPEN", "UPDATED"], "branches": {"includes": ["main"]}}]}
    assert pull_request_matches(git, "OPEN", "main", paths())
    assert not pull_request_matches(git, "CLOSED", "main", paths())
    assert not pull_request_matches(git, "OPEN", "dev", paths())
    assert not pull_request_matches({}, "OPEN", "main", paths())
