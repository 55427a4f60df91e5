"""UPLOAD_ARTIFACTS: pick the files a buildspec names and store them where S3 would.

Selection follows the buildspec reference: `files` and `exclude-paths` are globs relative
to `base-directory` (itself relative to CODEBUILD_SRC_DIR); `**` spans any number of
directories, `*` and `?` stay within one name and match dotfiles; a pattern naming a
directory takes every file below it. `discard-paths` keeps only base names. A symlink is
followed when it stays inside the source directory (or kept as a link in a ZIP with
`enable-symlinks`); one leading outside stops the upload with an error instead.

Storage follows ProjectArtifacts: `<location bucket>/<path>/[<build uuid>/]<name>`, one zip
object for packaging ZIP, or a folder of objects for NONE; a name of "/" means no name
segment. Objects live in the blob store under `s3locations.blob_key`.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from forgeline.codebuild import s3locations
from forgeline.codebuild.buildspec import Artifacts
from forgeline.codebuild.safepaths import UnsafePathError, WorkspaceError, clean_relative, is_inside
from forgeline.core.blobstore import BlobStore, validate_key

NO_MATCHING_PATHS = "no matching artifact paths found"
HASH_CHUNK = 1024 * 1024
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class ArtifactError(WorkspaceError):
    """UPLOAD_ARTIFACTS failed; the code is CLIENT_ERROR unless said otherwise."""

    def __init__(self, message: str, code: str = "CLIENT_ERROR") -> None:
        super().__init__(code, message)


# ---------------------------------------------------------------- glob matching


def _segments(pattern: str, what: str) -> tuple[str, ...]:
    text = pattern.strip()
    if text.startswith("/"):
        raise ArtifactError(f"{what} {pattern!r} must be relative to the source directory")
    while text.startswith("./"):
        text = text[2:]
    try:
        cleaned = clean_relative(text, what)
    except UnsafePathError as exc:
        raise ArtifactError(str(exc)) from exc
    if not cleaned:
        return ("**",)
    parts = tuple(cleaned.split("/"))
    # A trailing "**" matches everything below, exactly like "**/*".
    return (*parts[:-1], "**", "*") if parts[-1] == "**" else parts


@functools.lru_cache(maxsize=4096)
def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pattern:
        return not path
    head = pattern[0]
    if head == "**":
        return _matches(pattern[1:], path) or (bool(path) and _matches(pattern, path[1:]))
    if not path:
        return False
    return fnmatch.fnmatchcase(path[0], head) and _matches(pattern[1:], path[1:])


@functools.lru_cache(maxsize=4096)
def _may_contain(pattern: tuple[str, ...], directory: tuple[str, ...]) -> bool:
    """Whether something below `directory` could match `pattern`."""
    if not directory:
        return bool(pattern)
    if not pattern:
        return False
    head = pattern[0]
    if head == "**":
        return True
    return fnmatch.fnmatchcase(directory[0], head) and _may_contain(pattern[1:], directory[1:])


def glob_match(pattern: str, path: str) -> bool:
    """AWS-style glob test of a relative path (for tests and reports)."""
    return _matches(_segments(pattern, "pattern"), tuple(path.split("/")))


# ---------------------------------------------------------------- selection


@dataclass(frozen=True)
class _Entry:
    relative: tuple[str, ...]
    path: Path
    is_link: bool
    escapes: bool = False


def _walk(
    root: Path,
    src_dir: Path,
    relative: tuple[str, ...],
    seen: frozenset[str],
    enter: Callable[[tuple[str, ...]], bool],
    keep_links: bool,
) -> Iterator[_Entry]:
    """Every file under root (depth first, by name), entering directories `enter` allows.

    Symlinks staying inside `src_dir` are followed, or yielded as themselves when
    `keep_links`; one leading outside is yielded (marked `escapes`), never entered.
    """
    directory = root.joinpath(*relative)
    try:
        children = sorted(os.scandir(directory), key=lambda item: item.name)
    except OSError:
        return
    for child in children:
        child_relative = (*relative, child.name)
        path = Path(child.path)
        is_link = child.is_symlink()
        if is_link and not is_inside(src_dir, path):
            yield _Entry(child_relative, path, True, escapes=True)
        elif is_link and keep_links:
            yield _Entry(child_relative, path, True)
        elif child.is_dir(follow_symlinks=True):
            real = os.path.realpath(path)
            if real not in seen and enter(child_relative):  # `seen` stops symlink loops
                yield from _walk(root, src_dir, child_relative, seen | {real}, enter, keep_links)
        elif child.is_file(follow_symlinks=True):
            yield _Entry(child_relative, path, is_link)


def _is_literal(pattern: tuple[str, ...]) -> bool:
    return not any(ch in segment for segment in pattern for ch in "*?[")


def select_files(
    src_dir: Path, artifacts_spec: Artifacts, *, enable_symlinks: bool | None = None
) -> list[tuple[str, Path]]:
    """(name in the artifact, file on the host) for every file the spec selects, sorted.

    With symlinks kept (`enable-symlinks: yes`), a symlink is returned as its own path;
    otherwise as the real file it leads to. Raises ArtifactError (CLIENT_ERROR).
    """
    keep_links = artifacts_spec.enable_symlinks if enable_symlinks is None else enable_symlinks
    root = src_dir
    if artifacts_spec.base_directory:
        base = artifacts_spec.base_directory
        try:
            relative_base = clean_relative(base.strip().removeprefix("./"), "base-directory")
        except UnsafePathError as exc:
            raise ArtifactError(str(exc)) from exc
        root = src_dir / relative_base
        if not root.is_dir() or not is_inside(src_dir, root):
            raise ArtifactError(f"no matching base directory path found for {base}")
    patterns = [_segments(p, "artifact path") for p in artifacts_spec.files]
    excludes = [_segments(p, "exclude path") for p in artifacts_spec.exclude_paths]
    # A pattern without wildcards that names a directory takes everything below it.
    directories = [p for p in patterns if _is_literal(p)]
    if not patterns:
        raise ArtifactError(NO_MATCHING_PATHS)

    def under_named_directory(relative: tuple[str, ...]) -> bool:
        return any(relative[: len(d)] == d for d in directories if len(relative) > len(d))

    def selected(relative: tuple[str, ...]) -> bool:
        return any(_matches(p, relative) for p in patterns) or under_named_directory(relative)

    def excluded(relative: tuple[str, ...]) -> bool:
        # An excluded directory excludes what is inside it.
        return any(
            _matches(p, relative[:index]) for p in excludes for index in range(1, len(relative) + 1)
        )

    def enter(relative: tuple[str, ...]) -> bool:
        reachable = under_named_directory((*relative, "")) or any(
            _may_contain(p, relative) for p in patterns
        )
        return reachable and not excluded(relative)

    chosen: dict[str, Path] = {}
    origins: dict[str, str] = {}
    walk = _walk(root, src_dir, (), frozenset({os.path.realpath(root)}), enter, keep_links)
    for entry in walk:
        if excluded(entry.relative):
            continue
        if entry.escapes:
            if selected(entry.relative) or enter(entry.relative):
                raise ArtifactError(
                    f"artifact path {'/'.join(entry.relative)} is a symlink to "
                    f"{os.readlink(entry.path)}, outside the source directory"
                )
            continue
        if not selected(entry.relative):
            continue
        name = "/".join(entry.relative)
        archive_name = entry.relative[-1] if artifacts_spec.discard_paths else name
        if archive_name in chosen:
            raise ArtifactError(
                f"discard-paths: {origins[archive_name]} and {name} would both be stored as "
                f"{archive_name}"
            )
        host = entry.path if entry.is_link and keep_links else Path(os.path.realpath(entry.path))
        chosen[archive_name] = host
        origins[archive_name] = name
    if not chosen:
        raise ArtifactError(NO_MATCHING_PATHS)
    return sorted(chosen.items())


# ---------------------------------------------------------------- storage


@dataclass(frozen=True)
class StoredArtifact:
    location: str
    sha256sum: str | None = None
    md5sum: str | None = None
    size: int = 0
    keys: tuple[str, ...] = ()
    override_artifact_name: bool | None = None
    encryption_disabled: bool | None = None
    artifact_identifier: str | None = None
    bucket_owner_access: str | None = None

    def as_build_artifacts(self) -> dict[str, Any]:
        """The botocore BuildArtifacts shape."""
        output: dict[str, Any] = {"location": self.location}
        optional = {
            "sha256sum": self.sha256sum,
            "md5sum": self.md5sum,
            "overrideArtifactName": self.override_artifact_name,
            "encryptionDisabled": self.encryption_disabled,
            "artifactIdentifier": self.artifact_identifier,
            "bucketOwnerAccess": self.bucket_owner_access,
        }
        output.update({key: value for key, value in optional.items() if value is not None})
        return output


def expand_variables(text: str, env: Mapping[str, str]) -> str:
    """`$VAR` and `${VAR}` from `env`; unknown variables expand to "" as in a shell."""
    return _VARIABLE.sub(lambda match: env.get(match.group(1) or match.group(2), ""), text)


def _key_segments(text: str | None, what: str) -> list[str]:
    if not text or text == "/":
        return []
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if ".." in parts or any("\x00" in part or "\\" in part for part in parts):
        raise ArtifactError(f"invalid artifact {what} {text!r}")
    return parts


def artifact_object_key(
    project_artifacts: Mapping[str, Any],
    build_id: str,
    name: str | None,
    s3_prefix: str | None = None,
) -> tuple[str, str]:
    """(bucket, key) of the artifact: s3-prefix / path / [build uuid] / name."""
    bucket = (project_artifacts.get("location") or "").strip("/")
    if not bucket or "/" in bucket:
        raise ArtifactError(f"invalid artifact location {project_artifacts.get('location')!r}")
    parts = _key_segments(s3_prefix, "s3-prefix") + _key_segments(
        project_artifacts.get("path"), "path"
    )
    if project_artifacts.get("namespaceType") == "BUILD_ID":
        parts.append(build_id.rsplit(":", 1)[-1])
    parts += _key_segments(name, "name")
    return bucket, "/".join(parts)


def store_artifacts(
    blobstore: BlobStore,
    files: Sequence[tuple[str, Path]],
    project_artifacts: Mapping[str, Any],
    build_id: str,
    build_number: int | None,
    artifact_name: str | None = None,
    packaging: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    s3_prefix: str | None = None,
) -> StoredArtifact:
    """Upload `files` (from select_files) as the project's artifact; describe the result.

    `artifact_name` is the buildspec's name, used when the project sets
    overrideArtifactName; `$VAR` in names and prefixes expand from `env`.
    """
    variables = dict(env or {})
    if build_number is not None:
        variables.setdefault("CODEBUILD_BUILD_NUMBER", str(build_number))
    variables.setdefault("CODEBUILD_BUILD_ID", build_id)
    artifact_type = project_artifacts.get("type", "NO_ARTIFACTS")
    common: dict[str, Any] = {
        "override_artifact_name": project_artifacts.get("overrideArtifactName"),
        "encryption_disabled": project_artifacts.get("encryptionDisabled"),
        "artifact_identifier": project_artifacts.get("artifactIdentifier"),
        "bucket_owner_access": project_artifacts.get("bucketOwnerAccess"),
    }
    if artifact_type == "NO_ARTIFACTS":
        return StoredArtifact(location="", **common)
    name = project_artifacts.get("name")
    if project_artifacts.get("overrideArtifactName") and artifact_name:
        name = artifact_name
    if artifact_type == "CODEPIPELINE":
        packaging = "ZIP"  # CodePipeline always hands artifacts on as zip files
    packaging = packaging or project_artifacts.get("packaging") or "NONE"
    expanded_name = expand_variables(name, variables) if name else None
    prefix = expand_variables(s3_prefix, variables) if s3_prefix else None
    bucket, key = artifact_object_key(project_artifacts, build_id, expanded_name, prefix)
    if packaging == "ZIP":
        if not key:
            raise ArtifactError("a ZIP artifact needs a name or path")
        return _store_zip(blobstore, files, bucket, key, common)
    return _store_folder(blobstore, files, bucket, key, common)


def _blob_key(bucket: str, key: str) -> str:
    blob = s3locations.blob_key(bucket, key)
    try:
        return validate_key(blob)
    except ValueError as exc:
        raise ArtifactError(f"invalid artifact object name {bucket}/{key}: {exc}") from exc


def _store_zip(
    blobstore: BlobStore,
    files: Sequence[tuple[str, Path]],
    bucket: str,
    key: str,
    common: dict[str, Any],
) -> StoredArtifact:
    blob = _blob_key(bucket, key)
    with tempfile.TemporaryFile() as spool:
        write_zip(spool, files)
        spool.seek(0)
        sha256, md5, size = _digests(spool)
        spool.seek(0)
        blobstore.put(blob, spool)
    return StoredArtifact(
        location=f"arn:aws:s3:::{bucket}/{key}",
        sha256sum=sha256,
        md5sum=md5,
        size=size,
        keys=(blob,),
        **common,
    )


def write_zip(target: BinaryIO, files: Sequence[tuple[str, Path]]) -> None:
    """Stream `files` into a zip; symlinks among them are stored as links."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as bundle:
        for archive_name, host_path in files:
            if host_path.is_symlink():
                info = zipfile.ZipInfo(archive_name)
                info.create_system = 3  # unix, so the mode bits below are honoured
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                bundle.writestr(info, os.readlink(host_path))
            else:
                bundle.write(host_path, archive_name)


def _digests(stream: BinaryIO) -> tuple[str, str, int]:
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    for chunk in iter(lambda: stream.read(HASH_CHUNK), b""):
        sha256.update(chunk)
        md5.update(chunk)
        size += len(chunk)
    return sha256.hexdigest(), md5.hexdigest(), size


def _regular_files(files: Sequence[tuple[str, Path]]) -> Iterator[tuple[str, Path]]:
    """S3 objects cannot be links: a kept link stores what it leads to, file or folder."""
    for archive_name, host_path in files:
        real = Path(os.path.realpath(host_path))
        if not real.is_dir():
            yield archive_name, real
            continue
        for directory, _, names in os.walk(real):
            for name in sorted(names):
                path = Path(directory) / name
                if path.is_file() and not path.is_symlink():
                    yield f"{archive_name}/{path.relative_to(real).as_posix()}", path


def _store_folder(
    blobstore: BlobStore,
    files: Sequence[tuple[str, Path]],
    bucket: str,
    key: str,
    common: dict[str, Any],
) -> StoredArtifact:
    keys = []
    size = 0
    for archive_name, host_path in _regular_files(files):
        object_key = f"{key}/{archive_name}" if key else archive_name
        blob = _blob_key(bucket, object_key)
        with host_path.open("rb") as data:
            info = blobstore.put(blob, data)
        keys.append(blob)
        size += info.size
    location = f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"
    return StoredArtifact(location=location, size=size, keys=tuple(keys), **common)
