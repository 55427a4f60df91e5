"""DOWNLOAD_SOURCE against real state: CodeCommit repositories as the repo service keeps
them (a row in the database, a bare repository on disk, history pushed with git) and S3
sources in a real blob store."""

from __future__ import annotations

import io
import os
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from forgeline.codebuild import s3locations
from forgeline.codebuild.sources import SourceError, fetch_source, missing_buildspec_message
from forgeline.codecommit import storage
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.blobstore import get_blob_store
from forgeline.core.db import dispose_engines, session_scope, utcnow
from forgeline.core.settings import Settings
from forgeline.s3 import buckets
from tests.support import databases

ACCOUNT = "000000000000"  # the account of the server's bootstrap credentials
REGION = "us-east-1"
BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n"


def git(*args: str, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="T",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="T",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Iterator[Settings]:
    """Forgeline state as CodeCommit keeps it: a repositories table and bare repositories."""
    data_dir = tmp_path_factory.mktemp("state")
    url = databases.create_database(data_dir)
    engine = sa.create_engine(url)
    Repository.__table__.create(engine)
    engine.dispose()
    yield Settings(data_dir=data_dir, database_url=url)
    dispose_engines()
    databases.drop_database(url)


def add_repository(settings: Settings, name: str, account: str = ACCOUNT) -> Path:
    repository = Repository(
        id=str(uuid.uuid4()), account_id=account, region=REGION, name=name, default_branch="main"
    )
    with session_scope(settings.resolved_database_url) as session:
        session.add(repository)
    return storage.create_bare(settings, repository.id)


@pytest.fixture(scope="module")
def repo(settings, tmp_path_factory):
    """A repository with history on main, a feature branch and two tags, pushed with git."""
    name = f"src-{uuid.uuid4().hex[:10]}"
    bare = add_repository(settings, name)
    work = tmp_path_factory.mktemp("work")
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    commits = []
    for number in range(3):
        if number == 0:
            (work / "buildspec.yml").write_text(BUILDSPEC)
        else:
            (work / f"file{number}.txt").write_text(f"v{number}\n")
        git("add", "-A", cwd=work)
        git("commit", "--quiet", "-m", f"commit {number}", cwd=work)
        commits.append(git("rev-parse", "HEAD", cwd=work))
    git("branch", "feature", commits[0], cwd=work)
    git("tag", "-a", "v1.0", "-m", "release", commits[1], cwd=work)
    git("tag", "light", commits[0], cwd=work)
    git("push", "--quiet", str(bare), "main", "feature", "v1.0", "light", cwd=work)
    return {
        "name": name,
        "commits": commits,
        "url": f"http://127.0.0.1:4750/v1/repos/{name}",
    }


def fetch(settings: Settings, dest: Path, location: str, version: str | None, **extra):
    source = {"type": "CODECOMMIT", "location": location, **extra}
    return fetch_source(settings, ACCOUNT, REGION, source, version, dest)


AWS_URL = "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/{}"


def test_default_branch_full_clone(settings, repo, tmp_path):
    dest = tmp_path / "src"
    fetched = fetch(settings, dest, AWS_URL.format(repo["name"]), None)
    assert fetched.resolved_version == repo["commits"][-1]
    assert fetched.buildspec_text == BUILDSPEC
    assert fetched.buildspec_path == "buildspec.yml"
    assert (dest / "file2.txt").read_text() == "v2\n"
    assert git("branch", "--show-current", cwd=dest) == "main"
    assert git("rev-parse", "HEAD", cwd=dest) == repo["commits"][-1]
    assert len(git("log", "--format=%H", cwd=dest).splitlines()) == 3
    assert git("remote", "get-url", "origin", cwd=dest) == AWS_URL.format(repo["name"])
    assert git("status", "--porcelain", cwd=dest) == ""


def test_forgeline_clone_url_and_branch_versions(settings, repo, tmp_path):
    for index, version in enumerate(["feature", "refs/heads/feature"]):
        dest = tmp_path / f"src{index}"
        fetched = fetch(settings, dest, repo["url"], version)
        assert fetched.resolved_version == repo["commits"][0]
        assert git("branch", "--show-current", cwd=dest) == "feature"
        assert not (dest / "file1.txt").exists()


def test_clone_depth_is_honoured(settings, repo, tmp_path):
    dest = tmp_path / "src"
    fetched = fetch(settings, dest, repo["url"], "main", gitCloneDepth=1)
    assert fetched.resolved_version == repo["commits"][-1]
    assert git("rev-list", "--count", "HEAD", cwd=dest) == "1"
    assert (dest / ".git" / "shallow").exists()


@pytest.mark.parametrize("version", ["v1.0", "refs/tags/v1.0"])
def test_annotated_tag(settings, repo, tmp_path, version):
    dest = tmp_path / "src"
    fetched = fetch(settings, dest, repo["url"], version)
    assert fetched.resolved_version == repo["commits"][1]
    assert git("rev-parse", "HEAD", cwd=dest) == repo["commits"][1]
    assert git("describe", "--tags", cwd=dest) == "v1.0"


def test_lightweight_tag(settings, repo, tmp_path):
    fetched = fetch(settings, tmp_path / "src", repo["url"], "light")
    assert fetched.resolved_version == repo["commits"][0]


def test_full_short_and_pinned_commit_ids(settings, repo, tmp_path):
    target = repo["commits"][1]
    for index, version in enumerate(
        [target, target[:8], target.upper(), f"refs/heads/main^{{{target}}}"]
    ):
        dest = tmp_path / f"src{index}"
        fetched = fetch(settings, dest, repo["url"], version)
        assert fetched.resolved_version == target
        assert git("rev-parse", "HEAD", cwd=dest) == target
        assert (dest / "file1.txt").exists() and not (dest / "file2.txt").exists()


@pytest.mark.parametrize(
    "version",
    ["nope", "refs/heads/nope", "deadbeef" * 5, "main~1", "main^", "--upload-pack=x", "a b"],
)
def test_missing_reference(settings, repo, tmp_path, version):
    with pytest.raises(SourceError) as caught:
        fetch(settings, tmp_path / "src", repo["url"], version)
    assert caught.value.code == "CLIENT_ERROR"
    assert caught.value.message == (
        f"reference not found for primary source and source version {version}"
    )
    assert not list((tmp_path / "src").iterdir())


def test_missing_repository_and_other_accounts(settings, repo, tmp_path):
    for account, name in [(ACCOUNT, "no-such-repo"), ("111111111111", repo["name"])]:
        with pytest.raises(SourceError) as caught:
            fetch_source(
                settings,
                account,
                REGION,
                {"type": "CODECOMMIT", "location": AWS_URL.format(name)},
                "main",
                tmp_path / f"src-{account}",
            )
        assert caught.value.message == (
            "repository not found for primary source and source version main"
        )
    with pytest.raises(SourceError, match="secondary source extra and source version HEAD"):
        fetch(
            settings, tmp_path / "x", "https://example.com/nothing", None, sourceIdentifier="extra"
        )


def test_buildspec_override_and_escape(settings, repo, tmp_path):
    fetched = fetch(settings, tmp_path / "a", repo["url"], None, buildspec="file1.txt")
    assert (fetched.buildspec_text, fetched.buildspec_path) == ("v1\n", "file1.txt")
    missing = fetch(settings, tmp_path / "b", repo["url"], None, buildspec="ci/build.yml")
    assert (missing.buildspec_text, missing.buildspec_path) == (None, "ci/build.yml")
    assert missing_buildspec_message("/codebuild/output/src1/src", missing) == (
        "stat /codebuild/output/src1/src/ci/build.yml: no such file or directory"
    )
    # A secondary source's buildspec setting is not looked at.
    secondary = fetch_source(
        settings,
        ACCOUNT,
        REGION,
        {"type": "CODECOMMIT", "location": repo["url"], "buildspec": "../x"},
        None,
        tmp_path / "s",
        want_buildspec=False,
    )
    assert secondary.buildspec_text is None
    assert secondary.resolved_version == repo["commits"][-1]
    for bad in ["../../etc/passwd", "/etc/passwd"]:
        with pytest.raises(SourceError) as caught:
            fetch(settings, tmp_path / f"c{len(bad)}", repo["url"], None, buildspec=bad)
        assert caught.value.code == "YAML_FILE_ERROR"


# ---------------------------------------------------------------- S3, CODEPIPELINE, NO_SOURCE


@pytest.fixture
def s3_settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "state", blob_store="local")


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def put_object(settings: Settings, location: str, data: bytes) -> None:
    """Store an object in a bucket of ACCOUNT (sources are read from the build's own
    account's buckets only)."""
    store = get_blob_store(settings)
    bucket, key = s3locations.split_location(location)
    if buckets.get_bucket(store, bucket) is None:
        buckets.save_bucket(store, buckets.Bucket(bucket, ACCOUNT, REGION, utcnow()))
    store.put(s3locations.blob_key(bucket, key), data)


@pytest.mark.parametrize("source_type", ["S3", "CODEPIPELINE"])
@pytest.mark.parametrize(
    "location", ["in-bucket/app/src.zip", "arn:aws:s3:::in-bucket/app/src.zip"]
)
def test_s3_zip_source(s3_settings, tmp_path, source_type, location):
    put_object(
        s3_settings,
        "in-bucket/app/src.zip",
        zip_bytes({"buildspec.yml": BUILDSPEC.encode(), "pkg/main.py": b"print(1)\n"}),
    )
    dest = tmp_path / "src"
    fetched = fetch_source(
        s3_settings, ACCOUNT, REGION, {"type": source_type, "location": location}, "v-ignored", dest
    )
    assert fetched.resolved_version is None
    assert fetched.buildspec_text == BUILDSPEC
    assert (dest / "pkg" / "main.py").read_bytes() == b"print(1)\n"


def test_s3_single_file_and_folder_sources(s3_settings, tmp_path):
    put_object(s3_settings, "src-bucket/tools/run.sh", b"#!/bin/sh\n")
    put_object(s3_settings, "src-bucket/tree/buildspec.yml", BUILDSPEC.encode())
    put_object(s3_settings, "src-bucket/tree/lib/x.txt", b"x")
    single = tmp_path / "single"
    fetch_source(
        s3_settings,
        ACCOUNT,
        REGION,
        {"type": "S3", "location": "src-bucket/tools/run.sh"},
        None,
        single,
    )
    assert [p.name for p in single.iterdir()] == ["run.sh"]
    folder = tmp_path / "folder"
    fetched = fetch_source(
        s3_settings, ACCOUNT, REGION, {"type": "S3", "location": "src-bucket/tree/"}, None, folder
    )
    assert fetched.buildspec_text == BUILDSPEC
    assert (folder / "lib" / "x.txt").read_bytes() == b"x"


def test_s3_missing_object_and_hostile_zip(s3_settings, tmp_path):
    put_object(s3_settings, "src-bucket/other.txt", b"")  # the bucket exists; the object does not
    with pytest.raises(SourceError) as caught:
        fetch_source(
            s3_settings,
            ACCOUNT,
            REGION,
            {"type": "S3", "location": "src-bucket/none.zip"},
            None,
            tmp_path / "a",
        )
    assert (caught.value.code, caught.value.message) == (
        "CLIENT_ERROR",
        "NoSuchKey: The specified key does not exist.",
    )
    put_object(s3_settings, "src-bucket/evil.zip", zip_bytes({"../../escaped.txt": b"x"}))
    with pytest.raises(SourceError, match="refusing to extract"):
        fetch_source(
            s3_settings,
            ACCOUNT,
            REGION,
            {"type": "S3", "location": "src-bucket/evil.zip"},
            None,
            tmp_path / "b",
        )
    assert not list(tmp_path.rglob("escaped.txt"))


def test_no_source_inline_and_s3_buildspecs(s3_settings, tmp_path):
    inline = fetch_source(
        s3_settings,
        ACCOUNT,
        REGION,
        {"type": "NO_SOURCE", "buildspec": BUILDSPEC},
        None,
        tmp_path / "a",
    )
    assert inline.buildspec_text == BUILDSPEC and inline.buildspec_path is None
    put_object(s3_settings, "specs/build.yml", BUILDSPEC.encode())
    from_s3 = fetch_source(
        s3_settings,
        ACCOUNT,
        REGION,
        {"type": "NO_SOURCE", "buildspec": "arn:aws:s3:::specs/build.yml"},
        None,
        tmp_path / "b",
    )
    assert from_s3.buildspec_text == BUILDSPEC
    missing = fetch_source(
        s3_settings, ACCOUNT, REGION, {"type": "NO_SOURCE"}, None, tmp_path / "c"
    )
    assert missing.buildspec_text is None
    with pytest.raises(SourceError) as caught:
        fetch_source(
            s3_settings,
            ACCOUNT,
            REGION,
            {"type": "NO_SOURCE", "buildspec": "arn:aws:s3:::specs/none.yml"},
            None,
            tmp_path / "d",
        )
    assert caught.value.code == "YAML_FILE_ERROR"


def test_another_accounts_bucket_is_never_read(s3_settings, tmp_path):
    """The object is there, but the bucket is another account's: neither a source nor a
    buildspec is read from it."""
    put_object(s3_settings, "theirs/app.zip", zip_bytes({"buildspec.yml": BUILDSPEC.encode()}))
    put_object(s3_settings, "theirs/build.yml", BUILDSPEC.encode())
    other_account = "222222222222"
    for source, code in (
        ({"type": "S3", "location": "theirs/app.zip"}, "CLIENT_ERROR"),
        ({"type": "NO_SOURCE", "buildspec": "arn:aws:s3:::theirs/build.yml"}, "YAML_FILE_ERROR"),
    ):
        with pytest.raises(SourceError) as caught:
            fetch_source(s3_settings, other_account, REGION, source, None, tmp_path / code)
        assert caught.value.code == code
        assert caught.value.message.startswith("AccessDenied")
        assert not any((tmp_path / code).iterdir())


def test_unsupported_source_type(s3_settings, tmp_path):
    with pytest.raises(SourceError, match="GITHUB is not supported"):
        fetch_source(
            s3_settings,
            ACCOUNT,
            REGION,
            {"type": "GITHUB", "location": "https://github.com/a/b"},
            None,
            tmp_path / "a",
        )
