"""Tree entries as a merge compares them, and the three-way rule for one of their parts.

An entry is an object id and a git file mode; a path settles to an entry, to new content,
or to nothing. Directories compare equal whatever they hold: what changed inside one is
the business of the paths beneath it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

FILE_MODES = {"NORMAL": 0o100644, "EXECUTABLE": 0o100755, "SYMLINK": 0o120000}
MODE_NAMES = {mode: name for name, mode in FILE_MODES.items()}
TREE_MODE = 0o040000
GITLINK_MODE = 0o160000


@dataclasses.dataclass(frozen=True)
class Entry:
    """One tree entry: a file, symbolic link, submodule commit or directory."""

    oid: str
    mode: int

    @property
    def object_type(self) -> str:
        if self.mode == TREE_MODE:
            return "DIRECTORY"
        if self.mode == GITLINK_MODE:
            return "GIT_LINK"
        if self.mode == FILE_MODES["SYMLINK"]:
            return "SYMBOLIC_LINK"
        return "FILE"

    @property
    def is_directory(self) -> bool:
        return self.mode == TREE_MODE


@dataclasses.dataclass(frozen=True)
class Settled:
    """What a path becomes: no file (mode None), or content (an object or new bytes)."""

    mode: int | None = None
    oid: str | None = None
    data: bytes | None = None

    @property
    def deleted(self) -> bool:
        return self.mode is None

    @staticmethod
    def of(entry: Entry | None) -> Settled:
        if entry is None or entry.is_directory:
            return DELETED
        return Settled(mode=entry.mode, oid=entry.oid)


DELETED = Settled()


def comparable(entry: Entry | None) -> tuple[Any, ...] | None:
    """What counts as a change of a path: directories compare equal whatever they hold."""
    if entry is None:
        return None
    if entry.is_directory:
        return ("DIRECTORY",)
    return (entry.oid, entry.mode)


def file_only(entry: Entry | None) -> Entry | None:
    return None if entry is None or entry.is_directory else entry


def operation(base: Entry | None, side: Entry | None) -> str | None:
    """The change a side made to a path: A(dded), D(eleted), M(odified) or none."""
    if base is None:
        return "A" if side is not None else None
    if side is None:
        return "D"
    return "M"


def three_way(base: Any, source: Any, destination: Any) -> tuple[bool, Any]:
    """(settled, value) of one component merged three ways."""
    if source == destination:
        return True, source
    if source == base:
        return True, destination
    if destination == base:
        return True, source
    return False, None
