"""File paths as the merge operations take them (filePath, conflict resolution entries)."""

from __future__ import annotations

from forgeline.codecommit.generated import errors


def normalize_path(path: str) -> str:
    """A repository-relative file path; PathRequired/InvalidPath errors as CodeCommit does."""
    if path is None or path == "":
        raise errors.PathRequiredException("A file path is required.")
    trimmed = path[1:] if path.startswith("/") else path
    parts = trimmed.split("/")
    if (
        not trimmed
        or "\0" in trimmed
        or any(part in ("", ".", "..") for part in parts)
        or ".git" in parts
    ):
        raise errors.InvalidPathException(f"The path {path!r} is not valid.")
    return trimmed
