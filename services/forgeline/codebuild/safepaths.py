"""Path safety for the build workspace: names from users never reach outside a root.

Sources (zip entries, buildspec paths), artifact globs and cache paths all come from the
user. Every helper here either returns a path proven to stay under its root, or raises
`UnsafePathError`; callers turn that into the build phase's error.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path


class WorkspaceError(Exception):
    """A build workspace step failed; `code` is the phase context status code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class UnsafePathError(ValueError):
    """A user-supplied path would leave the directory it must stay in."""


def clean_relative(name: str, what: str = "path") -> str:
    """`name` as a normalised relative POSIX path ("" for the root itself).

    Absolute paths, `..` segments, backslashes and NUL are refused rather than repaired:
    a zip or buildspec that uses them is either broken or hostile.
    """
    if "\x00" in name:
        raise UnsafePathError(f"{what} {name!r} contains a NUL character")
    if "\\" in name:
        raise UnsafePathError(f"{what} {name!r} contains a backslash")
    if name.startswith("/"):
        raise UnsafePathError(f"{what} {name!r} is absolute")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafePathError(f"{what} {name!r} goes outside its directory ('..')")
    return "/".join(parts)


def is_inside(root: Path, path: Path | str) -> bool:
    """True when `path`, with every symlink resolved, is `root` or lies under it."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip("/") + "/")


def join_inside(root: Path, relative: str, what: str = "path") -> Path:
    """root/relative, refused if the name or any symlink on the way leads outside root."""
    cleaned = clean_relative(relative, what)
    target = root / cleaned if cleaned else root
    if not is_inside(root, target):
        raise UnsafePathError(f"{what} {relative!r} leads outside its directory through a symlink")
    return target


def symlink_target_inside(root: Path, link: Path, target: str) -> bool:
    """Whether a symlink at `link` with `target` would point inside `root`.

    Judged from the link's real parent directory, so links already on disk count.
    """
    if target.startswith("/"):
        return False
    parent = os.path.realpath(link.parent)
    return is_inside(root, posixpath.join(parent, target))
