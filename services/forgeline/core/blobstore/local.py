"""Blobs as files under a root directory.

Layout: the blob for key "a/b" is the file <root>/a/b; its digest record is the small
JSON file <root>/.blobstore-meta/a/b. Keys may not use the reserved segment prefix, so
neither the digest tree nor in-flight temp files can collide with a blob or show up in
a listing.

A put writes a temp file next to its target, fsyncs it and renames it into place, so a
reader sees the old blob or the new one, never a mix. The digest record names the inode,
size and mtime of the file it describes; stat() trusts it only while they still match
and re-hashes otherwise, so a record that lags behind a rename is never believed.

Unlike S3, a filesystem cannot hold both "a" and "a/b": such a put fails with OSError.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat as stat_module
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from forgeline.core.blobstore.base import (
    CHUNK_SIZE,
    RESERVED_PREFIX,
    BlobInfo,
    BlobNotFound,
    BlobSource,
    BlobStore,
    iter_source,
    validate_key,
    validate_prefix,
)

META_DIR = RESERVED_PREFIX + "meta"
TEMP_PREFIX = RESERVED_PREFIX + "tmp-"

# A concurrent delete may prune a directory between our mkdir and our create.
_CREATE_ATTEMPTS = 5


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._meta_root = self.root / META_DIR

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    # -- writing ---------------------------------------------------------------------

    def put(self, key: str, data: BlobSource) -> BlobInfo:
        target = self._blob_path(key)
        digest = hashlib.sha256()
        size = 0
        temp = self._create_temp(target.parent)
        try:
            with open(temp, "wb") as out:
                for chunk in iter_source(data):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
                written = os.fstat(out.fileno())
            os.replace(temp, target)
            _fsync_dir(target.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        info = BlobInfo(key=key, size=size, sha256=digest.hexdigest())
        self._write_meta(key, info, written)
        return info

    def delete(self, key: str) -> None:
        target = self._blob_path(key)
        for path in (target, self._meta_path(key)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                os.unlink(path)
        self._prune_empty_dirs(target.parent, self.root)
        self._prune_empty_dirs(self._meta_path(key).parent, self._meta_root)

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        # The walk lists each directory before descending, so deleting as we go is safe.
        for key in self._iter_keys(prefix):
            self.delete(key)
            count += 1
        return count

    # -- reading ---------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        path = self._blob_path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(key) from None

    def stat(self, key: str) -> BlobInfo | None:
        path = self._blob_path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not _is_regular(st):
            return None
        recorded = self._read_meta(key)
        if recorded is not None and recorded.get("stamp") == _stamp(st):
            return BlobInfo(key=key, size=st.st_size, sha256=recorded["sha256"])
        return self._hash_file(key, path)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        for key in self._iter_keys(prefix):
            info = self.stat(key)
            if info is not None:  # deleted while we were listing
                yield info

    # -- paths -----------------------------------------------------------------------

    def _blob_path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _meta_path(self, key: str) -> Path:
        return self._meta_root.joinpath(*validate_key(key).split("/"))

    def _create_temp(self, directory: Path) -> Path:
        for _ in range(_CREATE_ATTEMPTS):
            directory.mkdir(parents=True, exist_ok=True)
            temp = directory / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
            try:
                os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileNotFoundError:
                continue
            return temp
        raise OSError(f"could not create a temp file in {directory}")

    def _prune_empty_dirs(self, directory: Path, stop: Path) -> None:
        while directory != stop and directory.is_relative_to(stop):
            try:
                directory.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                return
            directory = directory.parent

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        """Keys starting with `prefix`, in lexicographic order, read from the directory tree."""
        validate_prefix(prefix)
        base_dir, _, _ = prefix.rpartition("/")
        start = self.root.joinpath(*base_dir.split("/")) if base_dir else self.root
        key_base = f"{base_dir}/" if base_dir else ""
        for key in _walk_sorted(start, key_base, prefix):
            if key.startswith(prefix):
                yield key

    # -- digest records --------------------------------------------------------------

    def _write_meta(self, key: str, info: BlobInfo, st: os.stat_result) -> None:
        path = self._meta_path(key)
        record = json.dumps({"sha256": info.sha256, "size": info.size, "stamp": _stamp(st)})
        temp = self._create_temp(path.parent)
        try:
            temp.write_text(record, encoding="utf-8")
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def _read_meta(self, key: str) -> dict | None:
        try:
            return json.loads(self._meta_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _hash_file(self, key: str, path: Path) -> BlobInfo | None:
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "rb") as stream:
                for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
                    digest.update(chunk)
                    size += len(chunk)
        except (FileNotFoundError, IsADirectoryError):
            return None
        return BlobInfo(key=key, size=size, sha256=digest.hexdigest())


def _stamp(st: os.stat_result) -> list[int]:
    """What identifies one version of a file: a rename in or any rewrite changes it."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` survive a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_regular(st: os.stat_result) -> bool:
    return stat_module.S_ISREG(st.st_mode)


def _walk_sorted(directory: Path, key_base: str, prefix: str) -> Iterator[str]:
    """Yield the keys of the files below `directory` in lexicographic key order.

    Sorting a directory's entries by name, with '/' appended to subdirectories, orders
    them exactly as their full keys sort. Entries that cannot lead to a key starting with
    `prefix` are skipped without being read.
    """
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    named = []
    for entry in entries:
        if entry.name.startswith(RESERVED_PREFIX):
            continue
        is_dir = entry.is_dir(follow_symlinks=False)
        if not is_dir and not entry.is_file(follow_symlinks=False):
            continue
        sort_name = entry.name + "/" if is_dir else entry.name
        candidate = key_base + sort_name
        if candidate.startswith(prefix) or prefix.startswith(candidate):
            named.append((sort_name, entry, is_dir))
    named.sort(key=lambda item: item[0])
    for sort_name, entry, is_dir in named:
        if is_dir:
            yield from _walk_sorted(Path(entry.path), key_base + sort_name, prefix)
        else:
            yield key_base + entry.name
