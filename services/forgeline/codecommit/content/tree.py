"""Editing a git tree in memory: put, delete and re-mode files, then write only what changed.

Folders are opened lazily from the base tree, and only folders on a changed path are
rewritten, so a commit touching one file in a large repository writes a handful of
tree objects. Conflicts between a new path and what is already there are reported with
CodeCommit's errors as the edit is made, before anything is written.
"""

from __future__ import annotations

from typing import NamedTuple

import pygit2

from forgeline.codecommit.content.objects import BLOB_MODES, MODE_NORMAL, MODE_SUBMODULE, MODE_TREE
from forgeline.codecommit.generated import errors

KEEP_FILE = ".gitkeep"


class Entry(NamedTuple):
    oid: str
    mode: int


class _Folder:
    def __init__(self, base: pygit2.Tree | None) -> None:
        self.base = base
        self.files: dict[str, Entry | None] = {}  # None: removed
        self.folders: dict[str, _Folder] = {}
        self.dirty = False

    def _base_entry(self, name: str) -> pygit2.Object | None:
        if self.base is None:
            return None
        try:
            return self.base[name]
        except KeyError:
            return None

    def kind(self, name: str) -> str | None:
        """'folder', 'file', 'submodule' or None for what the name holds now."""
        if name in self.folders:
            return "folder"
        if name in self.files:
            entry = self.files[name]
            return None if entry is None else ("file" if entry.mode in BLOB_MODES else "other")
        obj = self._base_entry(name)
        if obj is None:
            return None
        if obj.filemode == MODE_TREE:
            return "folder"
        if obj.filemode == MODE_SUBMODULE:
            return "submodule"
        return "file" if obj.filemode in BLOB_MODES else "other"

    def file(self, name: str) -> Entry | None:
        if name in self.files:
            return self.files[name]
        if name in self.folders:
            return None
        obj = self._base_entry(name)
        if obj is None or obj.filemode in (MODE_TREE, MODE_SUBMODULE):
            return None
        return Entry(str(obj.id), int(obj.filemode))

    def folder(self, name: str, *, create: bool) -> _Folder | None:
        existing = self.folders.get(name)
        if existing is not None:
            return existing
        obj = self._base_entry(name)
        if obj is not None and obj.filemode == MODE_TREE and name not in self.files:
            assert isinstance(obj, pygit2.Tree)
            opened = _Folder(obj)
        elif create:
            opened = _Folder(None)
        else:
            return None
        self.folders[name] = opened
        return opened


class TreeEditor:
    """Applies file changes to a base tree (None: an empty repository)."""

    def __init__(self, git: pygit2.Repository, base: pygit2.Tree | None) -> None:
        self.git = git
        self.root = _Folder(base)
        self.root.dirty = True

    # -- reading the edited state ------------------------------------------------------
    def _parent(self, path: str, *, create: bool) -> tuple[_Folder | None, str]:
        *folders, name = path.split("/")
        current: _Folder | None = self.root
        walked: list[str] = []
        for part in folders:
            assert current is not None
            walked.append(part)
            kind = current.kind(part)
            if kind in ("file", "other"):
                if not create:
                    return None, name
                raise errors.DirectoryNameConflictsWithFileNameException(
                    f"{'/'.join(walked)} is a file, so {path} cannot be created under it."
                )
            if kind == "submodule":
                if not create:
                    return None, name
                raise errors.FilePathConflictsWithSubmodulePathException(
                    f"{'/'.join(walked)} is a submodule, so {path} cannot be created under it."
                )
            current = current.folder(part, create=create)
            if current is None:
                return None, name
            if create:
                current.dirty = True
        return current, name

    def file(self, path: str) -> Entry | None:
        """The file (blob or symlink) at `path` now, or None."""
        folder, name = self._parent(path, create=False)
        return folder.file(name) if folder is not None else None

    # -- edits ---------------------------------------------------------------------------
    def put(self, path: str, oid: str, mode: int) -> Entry | None:
        """Place a blob at `path`, creating folders; returns what it replaced."""
        folder, name = self._parent(path, create=True)
        assert folder is not None
        kind = folder.kind(name)
        if kind == "folder":
            raise errors.FileNameConflictsWithDirectoryNameException(
                f"{path} is a folder; a file cannot have the same name."
            )
        if kind == "submodule":
            raise errors.FilePathConflictsWithSubmodulePathException(
                f"{path} is a submodule; a file cannot replace it."
            )
        previous = folder.file(name)
        self.root.dirty = True
        folder.files[name] = Entry(oid, mode)
        return previous

    def delete(self, path: str) -> Entry:
        folder, name = self._parent(path, create=False)
        previous = folder.file(name) if folder is not None else None
        if folder is None or previous is None or folder.kind(name) != "file":
            raise errors.FileDoesNotExistException(f"The file {path} does not exist.")
        self._mark_dirty(path)
        folder.files[name] = None
        return previous

    def set_mode(self, path: str, mode: int) -> Entry:
        folder, name = self._parent(path, create=False)
        previous = folder.file(name) if folder is not None else None
        if folder is None or previous is None or folder.kind(name) != "file":
            raise errors.FileDoesNotExistException(f"The file {path} does not exist.")
        self._mark_dirty(path)
        folder.files[name] = Entry(previous.oid, mode)
        return previous

    def _mark_dirty(self, path: str) -> None:
        current = self.root
        current.dirty = True
        for part in path.split("/")[:-1]:
            nxt = current.folder(part, create=False)
            assert nxt is not None
            nxt.dirty = True
            current = nxt

    # -- writing -------------------------------------------------------------------------
    def write(self, *, keep_empty_folders: bool = False) -> str:
        """Write the changed trees; folders emptied by the edit vanish or keep a .gitkeep."""
        oid = self._write(self.root, keep_empty_folders, is_root=True)
        assert oid is not None
        return oid

    def _write(self, folder: _Folder, keep_empty: bool, *, is_root: bool = False) -> str | None:
        if not folder.dirty:
            return str(folder.base.id) if folder.base is not None else None
        builder = (
            self.git.TreeBuilder(folder.base) if folder.base is not None else self.git.TreeBuilder()
        )
        for name, entry in folder.files.items():
            if name in folder.folders:
                continue
            if entry is None:
                if builder.get(name) is not None:
                    builder.remove(name)
            else:
                try:
                    builder.insert(name, pygit2.Oid(hex=entry.oid), entry.mode)
                except pygit2.GitError:
                    # libgit2 has the last word on names a checkout could misread.
                    raise errors.InvalidPathException(
                        f"{name!r} is not a valid file name."
                    ) from None
        for name, child in folder.folders.items():
            if not child.dirty:
                continue
            child_oid = self._write(child, keep_empty)
            if child_oid is None:
                if builder.get(name) is not None:
                    builder.remove(name)
            else:
                builder.insert(name, pygit2.Oid(hex=child_oid), MODE_TREE)
        if len(builder) == 0 and not is_root:
            # Only a folder that had content can have been emptied by this edit.
            if not keep_empty or folder.base is None:
                return None
            builder.insert(KEEP_FILE, self.git.create_blob(b""), MODE_NORMAL)
        return str(builder.write())
