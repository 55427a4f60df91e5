"""Unpacking a revision's bundle into a deployment's archive directory, safely.

A bundle holds only regular files and directories with relative paths that stay inside
it: an absolute path, a `..` that climbs out, a symbolic or hard link, a device or a pipe
is refused with an error naming the member, before anything is written. The checks
(`checked_tar_members`, `checked_zip_members`) work on an open archive and touch no disk.

Then, as AWS's agent does, an archive whose root has no appspec but whose one top-level
directory has it is taken from that directory (`hoist_nested_root`).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

BUNDLE_TYPES = ("tar", "tgz", "zip")
APPSPEC_NAMES = ("appspec.yml", "appspec.yaml")
_COPY_CHUNK = 1024 * 1024


class BundleError(ValueError):
    """The bundle cannot be used: unreadable, of the wrong type, or without an appspec."""


class UnsafeBundleError(BundleError):
    """The bundle holds something that could write outside its directory."""


# --- checks (no disk) ----------------------------------------------------------------------


def member_path(name: str) -> str:
    """A member's path relative to the bundle's root, or UnsafeBundleError."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeBundleError(f"bundle member {name!r} has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeBundleError(f"bundle member {name!r} climbs out of the bundle with '..'")
    return "/".join(parts)


def checked_tar_members(archive: tarfile.TarFile) -> list[tuple[str, tarfile.TarInfo]]:
    """Every member with its safe relative path; refuses links, devices and pipes."""
    members = []
    for info in archive.getmembers():
        path = member_path(info.name)
        if info.issym():
            raise UnsafeBundleError(
                f"bundle member {info.name!r} is a symbolic link (to {info.linkname!r}); "
                "bundles may hold only files and directories"
            )
        if info.islnk():
            raise UnsafeBundleError(
                f"bundle member {info.name!r} is a hard link (to {info.linkname!r}); "
                "bundles may hold only files and directories"
            )
        if not (info.isreg() or info.isdir()):
            raise UnsafeBundleError(
                f"bundle member {info.name!r} is a device or pipe; "
                "bundles may hold only files and directories"
            )
        if path:
            members.append((path, info))
    return members


def zip_member_mode(info: zipfile.ZipInfo) -> int:
    """The Unix mode a zip member carries (0 when the zip was not made on Unix)."""
    return (info.external_attr >> 16) if info.create_system == 3 else 0


def checked_zip_members(archive: zipfile.ZipFile) -> list[tuple[str, zipfile.ZipInfo]]:
    """Every member with its safe relative path; refuses links, devices and pipes."""
    members = []
    for info in archive.infolist():
        path = member_path(info.filename)
        mode = zip_member_mode(info)
        if stat.S_ISLNK(mode):
            raise UnsafeBundleError(
                f"bundle member {info.filename!r} is a symbolic link; "
                "bundles may hold only files and directories"
            )
        kind = stat.S_IFMT(mode)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeBundleError(
                f"bundle member {info.filename!r} is a device or pipe; "
                "bundles may hold only files and directories"
            )
        if path:
            members.append((path, info))
    return members


# --- extraction ----------------------------------------------------------------------------


def extract_bundle(bundle_file: Path, bundle_type: str, destination: Path) -> None:
    """Unpack `bundle_file` into `destination` (replaced if it exists)."""
    if bundle_type not in BUNDLE_TYPES:
        raise BundleError(
            f"bundle type must be one of {', '.join(BUNDLE_TYPES)}, not {bundle_type!r}"
        )
    if destination.exists():
        shutil.rmtree(destination)
    destination.mkdir(parents=True)
    if bundle_type == "zip":
        _extract_zip(bundle_file, destination)
    else:
        _extract_tar(bundle_file, destination, bundle_type)


def _extract_tar(bundle_file: Path, destination: Path, bundle_type: str) -> None:
    try:
        # "r:*" reads plain and compressed tars alike, as `tar -xf` does.
        with tarfile.open(bundle_file, mode="r:*") as archive:
            members = checked_tar_members(archive)
            directories = []
            for path, info in members:
                if info.isdir():
                    directories.append((path, info.mode))
                    (destination / path).mkdir(parents=True, exist_ok=True)
                    continue
                source = archive.extractfile(info)
                assert source is not None  # a regular member always has content
                with source:
                    _write_file(destination, path, source, info.mode & 0o7777)
                os.utime(destination / path, (info.mtime, info.mtime))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"the bundle is not a readable {bundle_type} archive: {exc}") from None
    _set_directory_modes(destination, directories)


def _extract_zip(bundle_file: Path, destination: Path) -> None:
    try:
        with zipfile.ZipFile(bundle_file) as archive:
            members = checked_zip_members(archive)
            directories = []
            for path, info in members:
                mode = zip_member_mode(info) & 0o7777
                if info.is_dir():
                    directories.append((path, mode or 0o755))
                    (destination / path).mkdir(parents=True, exist_ok=True)
                    continue
                with archive.open(info) as source:
                    _write_file(destination, path, source, mode or 0o644)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"the bundle is not a readable zip archive: {exc}") from None
    _set_directory_modes(destination, directories)


def _write_file(root: Path, path: str, source: IO[bytes], mode: int) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL|O_NOFOLLOW: a second member of the same name, or a link, is an error, never a
    # write through something already there.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise UnsafeBundleError(f"bundle member {path!r} appears twice") from None
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, _COPY_CHUNK)
        os.fchmod(out.fileno(), mode)


def _set_directory_modes(root: Path, directories: list[tuple[str, int]]) -> None:
    # Last, deepest first: a directory made read-only earlier would have refused its files.
    for path, mode in sorted(directories, key=lambda item: item[0].count("/"), reverse=True):
        os.chmod(root / path, (mode & 0o7777) | 0o700)


def copy_directory_bundle(source: Path, destination: Path) -> None:
    """A `directory` revision: copied (not linked) so the revision stays as it was."""
    if not source.is_dir():
        raise BundleError(f"{source} is not a directory")
    for path in _walk(source):
        if path.is_symlink():
            raise UnsafeBundleError(
                f"{path} is a symbolic link; bundles may hold only files and directories"
            )
        if not (path.is_file() or path.is_dir()):
            raise UnsafeBundleError(f"{path} is a device or pipe; bundles may hold only files")
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, symlinks=True)


def _walk(root: Path) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(root):
        base = Path(directory)
        for name in subdirectories + files:
            yield base / name


# --- the appspec ---------------------------------------------------------------------------


def hoist_nested_root(archive_dir: Path) -> bool:
    """No appspec at the root but exactly one in a top-level directory: that directory
    becomes the archive (what is beside it is dropped, as AWS's agent does). True if moved."""
    if _appspecs_in(archive_dir):
        return False
    nested = [entry for entry in archive_dir.iterdir() if entry.is_dir() and _appspecs_in(entry)]
    if len(nested) != 1:
        return False
    holding = archive_dir.with_name(archive_dir.name + "-temp")
    if holding.exists():
        shutil.rmtree(holding)
    archive_dir.rename(holding)
    (holding / nested[0].name).rename(archive_dir)
    shutil.rmtree(holding)
    return True


def appspec_file(archive_dir: Path, filename: str | None = None) -> Path:
    """The appspec to use: the deployment's own filename if present, else appspec.yaml,
    else appspec.yml (AWS's order)."""
    candidates = [filename] if filename else []
    candidates += ["appspec.yaml", "appspec.yml"]
    for name in candidates:
        path = archive_dir / name
        if path.is_file():
            return path
    wanted = filename or "appspec.yml"
    raise BundleError(f"the bundle has no {wanted} at its root (nor one directory down)")


def _appspecs_in(directory: Path) -> list[Path]:
    return [entry for entry in directory.glob("appspec.*") if entry.is_file()]
