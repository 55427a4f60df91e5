"""DOWNLOAD_SOURCE: fill a build's source directory and find its buildspec.

Supported source types:

- CODECOMMIT: the repository is looked up by the name at the end of its clone URL
  (`.../v1/repos/<name>`) in the build's account and region, and the wanted commit is
  fetched with git from the bare repository on disk into a fresh repository in the
  source directory (`.git` kept, as AWS does, with `origin` naming the clone URL).
  Versions: branch, `refs/heads/<b>`, tag, `refs/tags/<t>`, full or short commit id,
  `<ref>^{<commit id>}`, or none for the default branch.
- S3 and CODEPIPELINE: the object `bucket/key` (or S3 ARN) from the blob store; a zip is
  unpacked, any other object is copied as a single file, and a location ending in `/` is
  a folder whose objects are all copied. Forgeline keeps one version of each object, so
  an S3 source version is accepted and not used.
- NO_SOURCE: nothing to fetch; the buildspec must be inline (or an S3 ARN).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeline.codebuild import s3locations
from forgeline.codebuild.safepaths import (
    UnsafePathError,
    WorkspaceError,
    clean_relative,
    is_inside,
    join_inside,
    symlink_target_inside,
)
from forgeline.codecommit import interface as codecommit
from forgeline.core.blobstore import BlobNotFound, BlobStore, get_blob_store
from forgeline.core.db import session_scope
from forgeline.core.settings import Settings
from forgeline.s3 import buckets
from forgeline.s3.errors import S3Error

DEFAULT_BUILDSPEC = "buildspec.yml"
GIT_TIMEOUT_SECONDS = 900
COPY_CHUNK = 1024 * 1024
# Generous for a YAML file, small enough that a mistaken multi-GB object cannot hurt.
MAX_BUILDSPEC_BYTES = 4 * 1024 * 1024

_REPO_IN_URL = re.compile(r"/v1/repos/([^/?#]+)/?$")
_HEX = re.compile(r"[0-9a-fA-F]{4,40}")
_REF_WITH_COMMIT = re.compile(r"(refs/[^\s^]+)\^\{([0-9a-fA-F]{4,40})\}")
NO_SUCH_KEY = "NoSuchKey: The specified key does not exist."


class SourceError(WorkspaceError):
    """DOWNLOAD_SOURCE failed; `code` (e.g. CLIENT_ERROR) and `message` go to the phase."""


@dataclass(frozen=True)
class FetchedSource:
    resolved_version: str | None
    buildspec_text: str | None
    # Where the buildspec was looked for, relative to the source directory (None when it
    # was inline or in S3): the engine's "stat <path>: no such file" message names it.
    buildspec_path: str | None = None


def fetch_source(
    settings: Settings,
    account_id: str,
    region: str,
    source: dict[str, Any],
    version: str | None,
    dest: Path,
    *,
    want_buildspec: bool = True,
) -> FetchedSource:
    """Fill the empty directory `dest` from `source` (a botocore ProjectSource dict).

    `want_buildspec=False` (secondary sources) skips looking for a buildspec.
    """
    source_type = source.get("type", "NO_SOURCE")
    label = _source_label(source)
    dest.mkdir(parents=True, exist_ok=True)
    resolved: str | None = None
    if source_type == "CODECOMMIT":
        resolved = _fetch_codecommit(settings, account_id, region, source, version, dest, label)
    elif source_type in ("S3", "CODEPIPELINE"):
        _fetch_s3(get_blob_store(settings), account_id, source.get("location") or "", dest)
    elif source_type != "NO_SOURCE":
        raise SourceError(
            "CLIENT_ERROR", f"source type {source_type} is not supported by this server"
        )
    if not want_buildspec:
        return FetchedSource(resolved_version=resolved, buildspec_text=None)
    text, path = read_buildspec(
        settings, account_id, source, dest, has_files=source_type != "NO_SOURCE"
    )
    return FetchedSource(resolved_version=resolved, buildspec_text=text, buildspec_path=path)


def missing_buildspec_message(build_src_dir: str, fetched: FetchedSource) -> str:
    """AWS's YAML_FILE_ERROR message for a buildspec file that is not in the source."""
    name = fetched.buildspec_path or DEFAULT_BUILDSPEC
    return f"stat {build_src_dir.rstrip('/')}/{name}: no such file or directory"


def _source_label(source: dict[str, Any]) -> str:
    identifier = source.get("sourceIdentifier")
    return f"secondary source {identifier}" if identifier else "primary source"


# ---------------------------------------------------------------- buildspec


def is_inline_buildspec(value: str) -> bool:
    """An inline buildspec is YAML text; a file name has no newline and no `version:` key."""
    text = value.strip()
    return "\n" in text or text.startswith(("version:", "{"))


def read_buildspec(
    settings: Settings,
    account_id: str,
    source: dict[str, Any],
    src_dir: Path,
    *,
    has_files: bool = True,
) -> tuple[str | None, str | None]:
    """(buildspec text or None, relative path looked at or None)."""
    raw = source.get("buildspec") or ""
    value = raw.strip()
    if value and is_inline_buildspec(value):
        return raw, None
    if value.startswith(("arn:aws:s3:::", "s3://")):
        return _read_s3_buildspec(get_blob_store(settings), account_id, value), None
    name = value or DEFAULT_BUILDSPEC
    if not has_files:
        return None, name
    try:
        path = join_inside(src_dir, name, "buildspec")
    except UnsafePathError as exc:
        raise SourceError(
            "YAML_FILE_ERROR", f"{exc}: the buildspec must be inside the source directory"
        ) from exc
    if not path.is_file():
        return None, clean_relative(name)
    if path.stat().st_size > MAX_BUILDSPEC_BYTES:
        raise SourceError("YAML_FILE_ERROR", f"buildspec {name} is larger than 4 MiB")
    return path.read_text(encoding="utf-8", errors="replace"), clean_relative(name)


def _read_s3_buildspec(blobstore: BlobStore, account_id: str, location: str) -> str:
    bucket, key = s3locations.split_location(location)
    _require_own_bucket(blobstore, account_id, bucket, "YAML_FILE_ERROR")
    try:
        info = blobstore.stat(s3locations.blob_key(bucket, key))
        if info is None:
            raise BlobNotFound(key)
        if info.size > MAX_BUILDSPEC_BYTES:
            raise SourceError("YAML_FILE_ERROR", f"buildspec {location} is larger than 4 MiB")
        data = blobstore.read_bytes(s3locations.blob_key(bucket, key))
    except (BlobNotFound, ValueError) as exc:
        raise SourceError("YAML_FILE_ERROR", f"{NO_SUCH_KEY} ({location})") from exc
    return data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------- CodeCommit


@dataclass(frozen=True)
class _Target:
    """What to fetch: the commit, and the ref to recreate locally (branch or tag)."""

    commit: str
    branch: str | None = None
    tag: str | None = None
    tag_object: str | None = None


def repository_name_from_url(location: str) -> str | None:
    match = _REPO_IN_URL.search(location.strip())
    return match.group(1) if match else None


def _fetch_codecommit(
    settings: Settings,
    account_id: str,
    region: str,
    source: dict[str, Any],
    version: str | None,
    dest: Path,
    label: str,
) -> str:
    location = source.get("location") or ""
    shown_version = version or "HEAD"
    name = repository_name_from_url(location)
    repository = None
    if name is not None:
        with session_scope(settings.resolved_database_url, readonly=True) as session:
            repository = codecommit.find_repository(session, account_id, region, name)
    bare = codecommit.bare_path(settings, repository) if repository is not None else None
    if repository is None or bare is None or not bare.is_dir():
        # A row without its directory is as good as missing to a build.
        raise SourceError(
            "CLIENT_ERROR",
            f"repository not found for {label} and source version {shown_version}",
        )
    target = _resolve_version(bare, version, repository.default_branch)
    if target is None:
        raise SourceError(
            "CLIENT_ERROR",
            f"reference not found for {label} and source version {shown_version}",
        )
    depth = int(source.get("gitCloneDepth") or 0)
    _checkout(bare, location, target, depth, dest)
    return target.commit


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GIT_", "XDG_"))}
    # The server's own git configuration must not leak into builds (hooks, rewrites).
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0")
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_SECONDS,
        check=False,
    )


def _rev(bare: Path, expression: str) -> str | None:
    result = _git("--git-dir", str(bare), "rev-parse", "--verify", "--quiet", expression)
    return result.stdout.strip() if result.returncode == 0 else None


def _safe_ref_text(text: str) -> bool:
    """No option-like, whitespace or revision-syntax text reaches git's command line."""
    return (
        bool(text)
        and not text.startswith("-")
        and not any(ch.isspace() or ch in "~^:?*[\\" or ord(ch) < 32 for ch in text)
        and "@{" not in text
        and ".." not in text
    )


def _resolve_version(bare: Path, version: str | None, default_branch: str | None) -> _Target | None:
    if not version:
        branch = default_branch
        if branch is None:
            head = _git("--git-dir", str(bare), "symbolic-ref", "--quiet", "--short", "HEAD")
            branch = head.stdout.strip() if head.returncode == 0 else None
        return _branch_target(bare, branch) if branch else None
    pinned = _REF_WITH_COMMIT.fullmatch(version)
    if pinned:
        ref, commit_text = pinned.groups()
        if not _safe_ref_text(ref):
            return None
        commit = _rev(bare, f"{commit_text}^{{commit}}")
        if commit is None:
            return None
        if ref.startswith("refs/heads/"):
            return _Target(commit=commit, branch=ref[len("refs/heads/") :])
        return _Target(commit=commit)
    if not _safe_ref_text(version):
        return None
    if version.startswith("refs/heads/"):
        return _branch_target(bare, version[len("refs/heads/") :])
    if version.startswith("refs/tags/"):
        return _tag_target(bare, version[len("refs/tags/") :])
    if version.startswith("refs/"):
        commit = _rev(bare, f"{version}^{{commit}}")
        return _Target(commit=commit) if commit else None
    target = _branch_target(bare, version) or _tag_target(bare, version)
    if target is None and _HEX.fullmatch(version):
        commit = _rev(bare, f"{version.lower()}^{{commit}}")
        target = _Target(commit=commit) if commit else None
    return target


def _branch_target(bare: Path, branch: str) -> _Target | None:
    commit = _rev(bare, f"refs/heads/{branch}^{{commit}}")
    return _Target(commit=commit, branch=branch) if commit else None


def _tag_target(bare: Path, tag: str) -> _Target | None:
    commit = _rev(bare, f"refs/tags/{tag}^{{commit}}")
    if commit is None:
        return None
    return _Target(commit=commit, tag=tag, tag_object=_rev(bare, f"refs/tags/{tag}"))


def _checkout(bare: Path, location: str, target: _Target, depth: int, dest: Path) -> None:
    """git init + fetch of exactly the resolved commit, so a concurrent push cannot race."""
    if target.branch:
        refspec = f"+{target.commit}:refs/remotes/origin/{target.branch}"
    elif target.tag and target.tag_object:
        refspec = f"+{target.tag_object}:refs/tags/{target.tag}"
    else:
        refspec = target.commit
    depth_args = [f"--depth={depth}"] if depth > 0 else []
    bare_url = bare.resolve().as_uri()
    # Protocol v2 lets a fetch name any commit id, not only advertised ref tips.
    steps: list[tuple[str, list[str]]] = [
        ("init", ["init", "--quiet", "."]),
        (
            "fetch",
            ["-c", "protocol.version=2", "fetch", "--quiet", "--no-tags", *depth_args]
            + [bare_url, refspec],
        ),
        ("remote", ["remote", "add", "origin", location or bare_url]),
    ]
    if target.branch:
        steps.append(("checkout", ["checkout", "--quiet", "-B", target.branch, target.commit]))
        steps.append(
            ("branch", ["branch", "--quiet", "--set-upstream-to", f"origin/{target.branch}"])
        )
    else:
        steps.append(
            ("checkout", ["-c", "advice.detachedHead=false", "checkout", "--quiet", target.commit])
        )
    for step, args in steps:
        result = _git(*args, cwd=dest)
        if result.returncode != 0:
            lines = result.stderr.strip().splitlines()
            detail = lines[-1] if lines else f"exit status {result.returncode}"
            raise SourceError("CLIENT_ERROR", f"git {step} failed: {detail}")


# ---------------------------------------------------------------- S3


def _require_own_bucket(blobstore: BlobStore, account_id: str, bucket: str, code: str) -> None:
    """Builds read only their own account's buckets: another tenant's objects stay unreadable."""
    try:
        buckets.owned_bucket(blobstore, bucket, account_id)
    except S3Error as exc:
        raise SourceError(code, f"{exc.code}: {exc.message}: {bucket}") from None


def _fetch_s3(blobstore: BlobStore, account_id: str, location: str, dest: Path) -> None:
    bucket, key = s3locations.split_location(location)
    if not bucket:
        raise SourceError("CLIENT_ERROR", f"invalid S3 source location {location!r}")
    _require_own_bucket(blobstore, account_id, bucket, "CLIENT_ERROR")
    if key == "" or key.endswith("/"):
        _fetch_s3_folder(blobstore, bucket, key, dest)
        return
    try:
        stream = blobstore.open(s3locations.blob_key(bucket, key))
    except (BlobNotFound, ValueError) as exc:
        raise SourceError("CLIENT_ERROR", NO_SUCH_KEY) from exc
    with tempfile.TemporaryFile(dir=dest.parent) as spool:
        with stream:
            shutil.copyfileobj(stream, spool, COPY_CHUNK)
        spool.seek(0)
        if zipfile.is_zipfile(spool):
            spool.seek(0)
            extract_zip(spool, dest)
        else:
            spool.seek(0)
            name = key.rsplit("/", 1)[-1]
            with (dest / name).open("wb") as out:
                shutil.copyfileobj(spool, out, COPY_CHUNK)


def _fetch_s3_folder(blobstore: BlobStore, bucket: str, prefix: str, dest: Path) -> None:
    base = (
        s3locations.blob_key(bucket, prefix) if prefix else f"{s3locations.BUCKETS_PREFIX}{bucket}/"
    )
    found = False
    for info in blobstore.list(base):
        relative = info.key[len(base) :]
        try:
            target = join_inside(dest, relative, "S3 object")
        except UnsafePathError as exc:
            raise SourceError("CLIENT_ERROR", str(exc)) from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        with blobstore.open(info.key) as stream, target.open("wb") as out:
            shutil.copyfileobj(stream, out, COPY_CHUNK)
        found = True
    if not found:
        raise SourceError("CLIENT_ERROR", NO_SUCH_KEY)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def extract_zip(archive: Any, dest: Path) -> int:
    """Unpack a zip (path or binary file object) into `dest`; return the entries written.

    Regular files and directories come first and symlinks last, so no file is ever
    written through a link from the same archive; every link must point inside `dest`,
    checked again once all exist (a later link can change where an earlier one leads).
    """
    links: list[tuple[Path, str]] = []
    written = 0
    try:
        with zipfile.ZipFile(archive) as bundle:
            for entry in bundle.infolist():
                try:
                    relative = clean_relative(entry.filename, "zip entry")
                except UnsafePathError as exc:
                    raise SourceError("CLIENT_ERROR", f"refusing to extract: {exc}") from exc
                if not relative:
                    continue
                mode = (entry.external_attr >> 16) & 0xFFFF
                target = dest / relative
                if stat.S_ISLNK(mode):
                    links.append((target, bundle.read(entry).decode("utf-8", "replace")))
                    continue
                if not is_inside(dest, _nearest_existing(target.parent)):
                    raise SourceError(
                        "CLIENT_ERROR", f"refusing to extract: zip entry {relative!r} escapes"
                    )
                if entry.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(entry) as data, target.open("wb") as out:
                    shutil.copyfileobj(data, out, COPY_CHUNK)
                permissions = mode & 0o777
                if permissions:
                    target.chmod(permissions | 0o600)
                written += 1
    except zipfile.BadZipFile as exc:
        raise SourceError("CLIENT_ERROR", f"invalid zip archive: {exc}") from exc
    except OSError as exc:
        # e.g. a file and a directory of the same name in one archive.
        raise SourceError("CLIENT_ERROR", f"could not extract the zip archive: {exc}") from exc
    try:
        return written + _make_links(dest, links)
    except OSError as exc:
        raise SourceError("CLIENT_ERROR", f"could not extract the zip archive: {exc}") from exc


def _make_links(dest: Path, links: list[tuple[Path, str]]) -> int:
    for link, link_target in links:
        if link.exists() or link.is_symlink():
            raise SourceError("CLIENT_ERROR", f"refusing to extract: duplicate entry {link.name}")
        if not symlink_target_inside(dest, link, link_target):
            raise _link_escapes(dest, link, link_target)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(link_target)
    for link, link_target in links:
        if not is_inside(dest, link):
            for created, _ in links:
                created.unlink(missing_ok=True)
            raise _link_escapes(dest, link, link_target)
    return len(links)


def _link_escapes(dest: Path, link: Path, target: str) -> SourceError:
    return SourceError(
        "CLIENT_ERROR",
        f"refusing to extract: symlink {link.relative_to(dest)} points outside the source "
        f"directory ({target})",
    )
