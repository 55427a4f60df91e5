"""Bundle safety on archives built in memory: only files and directories with relative
paths that stay inside the bundle get through."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile

import pytest

from forgeline.codedeploy.agent.bundle import (
    UnsafeBundleError,
    checked_tar_members,
    checked_zip_members,
    member_path,
)


def tar_of(*members: tuple[str, bytes, str]) -> tarfile.TarFile:
    """members: (name, type, link target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, kind, link in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            data = b"content" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data else None)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer, mode="r")


def zip_of(*members: tuple[str, int]) -> zipfile.ZipFile:
    """members: (name, unix mode with file type)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, mode in members:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            archive.writestr(info, b"target" if stat.S_ISLNK(mode) else b"content")
    buffer.seek(0)
    return zipfile.ZipFile(buffer)


@pytest.mark.parametrize(
    ("name", "path"),
    [("a.txt", "a.txt"), ("./dir/b", "dir/b"), ("dir/", "dir"), ("a//b", "a/b"), (".", "")],
)
def test_member_paths(name, path):
    assert member_path(name) == path


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "a/..", "C:/x"])
def test_member_paths_that_leave_the_bundle(name):
    with pytest.raises(UnsafeBundleError):
        member_path(name)


def test_a_plain_tar_passes():
    archive = tar_of(
        ("./", tarfile.DIRTYPE, ""),
        ("appspec.yml", tarfile.REGTYPE, ""),
        ("scripts", tarfile.DIRTYPE, ""),
        ("scripts/start.sh", tarfile.REGTYPE, ""),
    )
    assert [path for path, _ in checked_tar_members(archive)] == [
        "appspec.yml",
        "scripts",
        "scripts/start.sh",
    ]


@pytest.mark.parametrize(
    ("member", "words"),
    [
        (("app/link", tarfile.SYMTYPE, "../../etc/passwd"), "symbolic link"),
        (("app/link", tarfile.SYMTYPE, "inside.txt"), "symbolic link"),
        (("app/hard", tarfile.LNKTYPE, "appspec.yml"), "hard link"),
        (("app/tty", tarfile.CHRTYPE, ""), "device or pipe"),
        (("app/disk", tarfile.BLKTYPE, ""), "device or pipe"),
        (("app/pipe", tarfile.FIFOTYPE, ""), "device or pipe"),
        (("../escape", tarfile.REGTYPE, ""), "climbs out"),
        (("/abs", tarfile.REGTYPE, ""), "absolute path"),
    ],
)
def test_unsafe_tar_members(member, words):
    archive = tar_of(("appspec.yml", tarfile.REGTYPE, ""), member)
    with pytest.raises(UnsafeBundleError, match=words) as raised:
        checked_tar_members(archive)
    assert repr(member[0]) in str(raised.value)


def test_a_plain_zip_passes_and_one_made_elsewhere_too():
    archive = zip_of(("appspec.yml", stat.S_IFREG | 0o644), ("bin/", stat.S_IFDIR | 0o755))
    assert [path for path, _ in checked_zip_members(archive)] == ["appspec.yml", "bin"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as plain:
        plain.writestr("appspec.yml", "x")  # create_system 0: no Unix mode at all
    assert len(checked_zip_members(zipfile.ZipFile(buffer))) == 1


@pytest.mark.parametrize(
    ("member", "words"),
    [
        (("link", stat.S_IFLNK | 0o777), "symbolic link"),
        (("fifo", stat.S_IFIFO | 0o644), "device or pipe"),
        (("../up.txt", stat.S_IFREG | 0o644), "climbs out"),
        (("/root/.ssh/authorized_keys", stat.S_IFREG | 0o644), "absolute path"),
    ],
)
def test_unsafe_zip_members(member, words):
    with pytest.raises(UnsafeBundleError, match=words):
        checked_zip_members(zip_of(("appspec.yml", stat.S_IFREG | 0o644), member))
