"""Artifact selection and storage, zip extraction safety and cache path parsing, on real files."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from forgeline.codebuild import s3locations
from forgeline.codebuild.artifacts import (
    NO_MATCHING_PATHS,
    ArtifactError,
    expand_variables,
    glob_match,
    select_files,
    store_artifacts,
)
from forgeline.codebuild.buildspec import Artifacts, parse_buildspec
from forgeline.codebuild.cache import CacheError, parse_cache_path
from forgeline.codebuild.safepaths import UnsafePathError, clean_relative, join_inside
from forgeline.codebuild.sources import SourceError, extract_zip
from forgeline.core.blobstore import LocalBlobStore

# Files and processes, but no database: run once, not on every backend's pass.
pytestmark = pytest.mark.no_db


def make_tree(root: Path, files: list[str]) -> Path:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"content of {name}\n")
    return root


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_tree(
        tmp_path / "src",
        [
            "README.md",
            ".hidden",
            "app.py",
            "lib/util.py",
            "lib/deep/core.py",
            "dist/app.js",
            "dist/app.js.map",
            "dist/assets/logo.svg",
            "dist/assets/nested/a.txt",
            "docs/guide.md",
        ],
    )


def names(selection: list[tuple[str, Path]]) -> list[str]:
    return [name for name, _ in selection]


# ---------------------------------------------------------------- globbing


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**/*", "a", True),
        ("**/*", "a/b/c", True),
        ("*", "a", True),
        ("*", "a/b", False),
        ("*", ".hidden", True),
        ("lib/**/*.py", "lib/util.py", True),
        ("lib/**/*.py", "lib/deep/core.py", True),
        ("lib/**/*.py", "app.py", False),
        ("**/core.py", "lib/deep/core.py", True),
        ("dist/*.js", "dist/app.js", True),
        ("dist/*.js", "dist/app.js.map", False),
        ("dist/**", "dist/assets/logo.svg", True),
        ("./app.py", "app.py", True),
        ("a?c", "abc", True),
        ("[ab]*", "bz", True),
    ],
)
def test_glob_rules(pattern: str, path: str, expected: bool) -> None:
    assert glob_match(pattern, path) is expected


def test_everything_recursively(src: Path) -> None:
    selection = select_files(src, Artifacts(files=("**/*",)))
    assert names(selection) == sorted(
        [
            ".hidden",
            "README.md",
            "app.py",
            "dist/app.js",
            "dist/app.js.map",
            "dist/assets/logo.svg",
            "dist/assets/nested/a.txt",
            "docs/guide.md",
            "lib/deep/core.py",
            "lib/util.py",
        ]
    )
    # Host paths are the real files, whose content matches.
    for name, host in selection:
        assert host.read_text() == f"content of {name}\n"


def test_single_star_is_one_level(src: Path) -> None:
    assert names(select_files(src, Artifacts(files=("*",)))) == [".hidden", "README.md", "app.py"]


def test_a_directory_named_without_wildcards_takes_everything_below(src: Path) -> None:
    assert names(select_files(src, Artifacts(files=("dist/assets",)))) == [
        "dist/assets/logo.svg",
        "dist/assets/nested/a.txt",
    ]


def test_base_directory_makes_names_relative(src: Path) -> None:
    selection = select_files(src, Artifacts(files=("**/*",), base_directory="dist"))
    assert names(selection) == ["app.js", "app.js.map", "assets/logo.svg", "assets/nested/a.txt"]
    assert selection[0][1] == (src / "dist" / "app.js").resolve()


def test_missing_base_directory_is_a_client_error(src: Path) -> None:
    with pytest.raises(ArtifactError) as caught:
        select_files(src, Artifacts(files=("**/*",), base_directory="build"))
    assert caught.value.code == "CLIENT_ERROR"
    assert caught.value.message == "no matching base directory path found for build"


@pytest.mark.parametrize("base", ["../", "/etc", "dist/../.."])
def test_base_directory_outside_the_source_is_refused(src: Path, base: str) -> None:
    with pytest.raises(ArtifactError):
        select_files(src, Artifacts(files=("**/*",), base_directory=base))


def test_exclude_paths_apply_to_files_and_directories(src: Path) -> None:
    spec = Artifacts(
        files=("**/*",), base_directory="dist", exclude_paths=("**/*.map", "assets/nested")
    )
    assert names(select_files(src, spec)) == ["app.js", "assets/logo.svg"]


def test_discard_paths_flattens(src: Path) -> None:
    spec = Artifacts(files=("lib/**/*", "dist/*.js"), discard_paths=True)
    assert names(select_files(src, spec)) == ["app.js", "core.py", "util.py"]


def test_discard_paths_name_clash_is_an_error(src: Path) -> None:
    make_tree(src, ["other/util.py"])
    with pytest.raises(ArtifactError, match="util.py"):
        select_files(src, Artifacts(files=("**/util.py",), discard_paths=True))


def test_nothing_matched_is_the_aws_client_error(src: Path) -> None:
    with pytest.raises(ArtifactError) as caught:
        select_files(src, Artifacts(files=("*.jar", "target/**/*")))
    assert (caught.value.code, caught.value.message) == ("CLIENT_ERROR", NO_MATCHING_PATHS)


@pytest.mark.parametrize("pattern", ["../secret", "/etc/passwd", "lib/../../x"])
def test_patterns_leaving_the_source_are_refused(src: Path, pattern: str) -> None:
    with pytest.raises(ArtifactError):
        select_files(src, Artifacts(files=(pattern,)))


def test_symlink_inside_is_followed_or_kept(src: Path, tmp_path: Path) -> None:
    (src / "latest.py").symlink_to("lib/util.py")
    (src / "libs").symlink_to("lib")
    followed = dict(select_files(src, Artifacts(files=("latest.py", "libs/**/*"))))
    assert followed["latest.py"] == (src / "lib" / "util.py").resolve()
    assert followed["libs/deep/core.py"] == (src / "lib/deep/core.py").resolve()
    kept = dict(select_files(src, Artifacts(files=("latest.py", "libs"), enable_symlinks=True)))
    assert kept["latest.py"] == src / "latest.py"
    assert kept["latest.py"].is_symlink()
    assert kept["libs"].is_symlink()


def test_symlink_loop_terminates(src: Path) -> None:
    (src / "lib" / "loop").symlink_to("..")
    selection = names(select_files(src, Artifacts(files=("lib/**/*.py",))))
    assert "lib/util.py" in selection
    assert len(selection) < 50


@pytest.mark.parametrize("enable_symlinks", [False, True])
def test_symlink_leading_outside_is_refused_never_followed(
    src: Path, tmp_path: Path, enable_symlinks: bool
) -> None:
    secret = make_tree(tmp_path / "outside", ["secret.txt"])
    (src / "dist" / "leak").symlink_to(secret)
    (src / "passwd").symlink_to(secret / "secret.txt")
    spec = Artifacts(files=("dist/**/*",), enable_symlinks=enable_symlinks)
    with pytest.raises(ArtifactError, match="dist/leak is a symlink to .*outside"):
        select_files(src, spec)
    with pytest.raises(ArtifactError, match="outside"):
        select_files(src, Artifacts(files=("passwd",), enable_symlinks=enable_symlinks))
    # Not asked for, or excluded: no harm, no error.
    assert "README.md" in names(select_files(src, Artifacts(files=("*.md",))))
    assert names(select_files(src, Artifacts(files=("dist/**/*",), exclude_paths=("dist/leak",))))


def test_buildspec_artifacts_feed_selection(src: Path) -> None:
    spec = parse_buildspec(
        "version: 0.2\n"
        "artifacts:\n"
        "  files: ['**/*']\n"
        "  base-directory: dist\n"
        "  discard-paths: yes\n"
        "  exclude-paths: ['**/*.map']\n"
        "  secondary-artifacts:\n"
        "    docs:\n"
        "      files: ['docs/*']\n"
    )
    assert spec.artifacts is not None
    assert names(select_files(src, spec.artifacts)) == ["a.txt", "app.js", "logo.svg"]
    assert names(select_files(src, spec.artifacts.secondary_artifacts["docs"])) == ["docs/guide.md"]


# ---------------------------------------------------------------- storage


def test_zip_artifact_with_build_id_namespace(src: Path, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    files = select_files(src, Artifacts(files=("lib/**/*",)))
    stored = store_artifacts(
        store,
        files,
        {
            "type": "S3",
            "location": "out-bucket",
            "path": "builds",
            "namespaceType": "BUILD_ID",
            "name": "app.zip",
            "packaging": "ZIP",
            "artifactIdentifier": "main",
        },
        "proj:1234-abcd",
        7,
    )
    assert stored.location == "arn:aws:s3:::out-bucket/builds/1234-abcd/app.zip"
    blob = s3locations.blob_key("out-bucket", "builds/1234-abcd/app.zip")
    assert stored.keys == (blob,)
    data = store.read_bytes(blob)
    assert stored.sha256sum == hashlib.sha256(data).hexdigest()
    assert stored.md5sum == hashlib.md5(data).hexdigest()
    assert stored.size == len(data)
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        assert sorted(bundle.namelist()) == ["lib/deep/core.py", "lib/util.py"]
        assert bundle.read("lib/util.py") == b"content of lib/util.py\n"
    output = stored.as_build_artifacts()
    assert output["artifactIdentifier"] == "main"
    assert set(output) <= {
        "location",
        "sha256sum",
        "md5sum",
        "overrideArtifactName",
        "encryptionDisabled",
        "artifactIdentifier",
        "bucketOwnerAccess",
    }


def test_folder_artifact_and_override_name_with_variables(src: Path, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    files = select_files(src, Artifacts(files=("dist/*.js", "README.md")))
    stored = store_artifacts(
        store,
        files,
        {"type": "S3", "location": "b", "path": "p", "name": "x", "overrideArtifactName": True},
        "proj:uuid-1",
        12,
        artifact_name="release-$CODEBUILD_BUILD_NUMBER-${STAGE}",
        packaging="NONE",
        env={"STAGE": "beta"},
        s3_prefix="team",
    )
    assert stored.location == "arn:aws:s3:::b/team/p/release-12-beta"
    assert stored.sha256sum is None and stored.md5sum is None
    assert sorted(stored.keys) == [
        "buckets/b/team/p/release-12-beta/README.md",
        "buckets/b/team/p/release-12-beta/dist/app.js",
    ]
    assert store.read_bytes(stored.keys[1]) == b"content of dist/app.js\n"
    assert stored.as_build_artifacts()["overrideArtifactName"] is True


def test_name_slash_stores_at_the_path_root(src: Path, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    stored = store_artifacts(
        store,
        select_files(src, Artifacts(files=("app.py",))),
        {"type": "S3", "location": "b", "namespaceType": "BUILD_ID", "path": "out", "name": "/"},
        "proj:u-1",
        1,
    )
    assert stored.keys == ("buckets/b/out/u-1/app.py",)


def test_zip_keeps_internal_symlinks_when_asked(src: Path, tmp_path: Path) -> None:
    (src / "latest.py").symlink_to("lib/util.py")
    store = LocalBlobStore(tmp_path / "blobs")
    files = select_files(src, Artifacts(files=("latest.py", "lib/util.py"), enable_symlinks=True))
    stored = store_artifacts(
        store, files, {"type": "S3", "location": "b", "name": "a.zip", "packaging": "ZIP"}, "p:1", 1
    )
    with zipfile.ZipFile(io.BytesIO(store.read_bytes(stored.keys[0]))) as bundle:
        info = bundle.getinfo("latest.py")
        assert stat.S_ISLNK(info.external_attr >> 16)
        assert bundle.read(info) == b"lib/util.py"


def test_names_may_not_climb_out_of_the_bucket(src: Path, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    files = select_files(src, Artifacts(files=("app.py",)))
    with pytest.raises(ArtifactError):
        store_artifacts(
            store,
            files,
            {"type": "S3", "location": "b", "name": "x", "overrideArtifactName": True},
            "p:1",
            1,
            artifact_name="../../other/x",
        )
    with pytest.raises(ArtifactError):
        store_artifacts(store, files, {"type": "S3", "location": "", "name": "x"}, "p:1", 1)


def test_no_artifacts_stores_nothing(src: Path, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    stored = store_artifacts(store, [], {"type": "NO_ARTIFACTS"}, "p:1", 1)
    assert stored.location == "" and stored.keys == ()
    assert list(store.list()) == []


def test_expand_variables() -> None:
    assert expand_variables("a-$X-${Y}-$MISSING-$", {"X": "1", "Y": "2"}) == "a-1-2--$"


# ---------------------------------------------------------------- path safety and zip slip


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "a\\b", "a\x00b"])
def test_clean_relative_refuses(name: str) -> None:
    with pytest.raises(UnsafePathError):
        clean_relative(name)


def test_join_inside_refuses_symlinked_escape(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "out").symlink_to(tmp_path)
    assert join_inside(root, "./a//b") == root / "a" / "b"
    with pytest.raises(UnsafePathError):
        join_inside(root, "out/secret")


def zip_with(entries: list[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = mode << 16
            bundle.writestr(info, data)
    return buffer.getvalue()


FILE = stat.S_IFREG | 0o644
LINK = stat.S_IFLNK | 0o777


def test_extract_zip_writes_files_modes_and_inside_links(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    archive = zip_with(
        [
            ("bin/run.sh", b"#!/bin/sh\necho hi\n", stat.S_IFREG | 0o755),
            ("lib/a.txt", b"a", FILE),
            ("current", b"lib", LINK),
        ]
    )
    assert extract_zip(io.BytesIO(archive), dest) == 3
    assert (dest / "bin/run.sh").stat().st_mode & 0o111
    assert (dest / "current").is_symlink()
    assert (dest / "current" / "a.txt").read_bytes() == b"a"


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(
    "entries",
    [
        [("../evil.txt", b"x", FILE)],
        [("/abs/evil.txt", b"x", FILE)],
        [("a/../../evil.txt", b"x", FILE)],
        [("link", b"/etc", LINK)],
        [("link", b"../..", LINK)],
        # Each link looks harmless alone; together the second leads out.
        [("deep/up", b"..", LINK), ("escape", b"deep/up/..", LINK)],
        # Harmless when made; the later link turns the first into an escape.
        [("esc", b"d/..", LINK), ("d", b"sub/..", LINK)],
        [("a", b"x", FILE), ("a", b"b", LINK)],
    ],
)
def test_extract_zip_refuses_escapes(tmp_path: Path, entries: list[tuple[str, bytes, int]]) -> None:
    dest = tmp_path / "deep1" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(SourceError) as caught:
        extract_zip(io.BytesIO(zip_with(entries)), dest)
    assert caught.value.code == "CLIENT_ERROR"
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "deep1" / "evil.txt").exists()
    for path in dest.rglob("*"):
        if path.is_symlink():
            assert os.path.realpath(path).startswith(str(dest.resolve()))


def test_extract_zip_refuses_a_file_written_through_an_archive_link(tmp_path: Path) -> None:
    # Links are made last, so "out/x" is a plain directory entry, never a write through "out".
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SourceError):
        extract_zip(
            io.BytesIO(zip_with([("out", str(tmp_path).encode(), LINK), ("out/x", b"x", FILE)])),
            dest,
        )
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- cache paths


def test_cache_paths_keep_their_anchor() -> None:
    relative = parse_cache_path("node_modules/**/*")
    assert (relative.absolute, relative.base) == (False, "node_modules")
    absolute = parse_cache_path("/root/.m2/**/*")
    assert (absolute.absolute, absolute.base) == (True, "root/.m2")
    anywhere = parse_cache_path("**/target/*.jar")
    assert anywhere.base == ""
    assert set(anywhere.find_paths) == {"./target/*.jar", "./*/target/*.jar"}


@pytest.mark.parametrize("pattern", ["/**/*", "/*", "../x", "/root/../../etc", ""])
def test_cache_paths_refused(pattern: str) -> None:
    with pytest.raises(CacheError):
        parse_cache_path(pattern)


def test_folder_packaging_stores_what_kept_links_lead_to(src: Path, tmp_path: Path) -> None:
    (src / "libs").symlink_to("lib")
    store = LocalBlobStore(tmp_path / "blobs")
    files = select_files(src, Artifacts(files=("libs",), enable_symlinks=True))
    stored = store_artifacts(store, files, {"type": "S3", "location": "b", "name": "n"}, "p:1", 1)
    assert sorted(stored.keys) == ["buckets/b/n/libs/deep/core.py", "buckets/b/n/libs/util.py"]
