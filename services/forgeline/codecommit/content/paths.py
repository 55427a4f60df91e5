"""Paths inside a repository as CodeCommit's content API takes and returns them.

Requests name files like `/docs/readme.md` or `docs/readme.md`; git stores names as
bytes. A request path must be valid UTF-8 (a JSON string holding a lone surrogate is
not), must stay inside the repository and must not touch `.git`: anything else is
InvalidPathException before any object is read. Names git holds that are not UTF-8
(pushed by a git client) are shown with U+FFFD, since a JSON answer cannot carry them.
"""

from __future__ import annotations

from forgeline.codecommit.generated import errors

# Components git refuses to check out. Like git on Windows and macOS, names that a file
# system would read as `.git` (any case, trailing dots or spaces, the 8.3 alias) count too.
_FORBIDDEN_COMPONENTS = {".", ".."}
_GIT_DIR_ALIASES = {".git", "git~1"}


def _is_forbidden(part: str) -> bool:
    return part in _FORBIDDEN_COMPONENTS or part.lower().rstrip(". ") in _GIT_DIR_ALIASES


def _invalid(path: str, why: str) -> errors.InvalidPathException:
    shown = path.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    return errors.InvalidPathException(f"The path {shown!r} is not valid: {why}.")


def _components(path: str, *, allow_trailing_slash: bool) -> list[str]:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(path, "it is not valid UTF-8") from None
    if "\0" in path:
        raise _invalid(path, "it contains a NUL character")
    body = path[1:] if path.startswith("/") else path
    if allow_trailing_slash and body.endswith("/"):
        body = body[:-1]
    if body == "":
        return []
    parts = body.split("/")
    for part in parts:
        if part == "":
            raise _invalid(path, "it has an empty component")
        if _is_forbidden(part):
            raise _invalid(path, f"the component {part!r} is not allowed")
    return parts


def file_path(path: str | None) -> str:
    """A request's file path, normalized (no leading slash); never the root."""
    if path is None or path == "":
        raise errors.PathRequiredException("A file path is required.")
    parts = _components(path, allow_trailing_slash=False)
    if not parts:
        raise _invalid(path, "it names the root folder, not a file")
    return "/".join(parts)


def folder_path(path: str | None) -> str:
    """A request's folder path, normalized; "" is the root ("/" and "" both name it)."""
    if path is None:
        raise errors.PathRequiredException("A folder path is required.")
    return "/".join(_components(path, allow_trailing_slash=True))


def optional_filter_path(path: str | None) -> str | None:
    """A path filter that may be absent (GetDifferences' beforePath/afterPath)."""
    if path is None:
        return None
    return "/".join(_components(path, allow_trailing_slash=True))


def encode(path: str) -> bytes:
    return path.encode("utf-8")


def display(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]
