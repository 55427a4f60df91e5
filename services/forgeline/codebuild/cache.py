"""Build caches: buildspec `cache.paths` kept between builds of a project.

The build environment may be a container in which absolute paths (`/root/.m2`) exist only
inside, so saving and restoring run *inside* it as generated POSIX shell scripts (busybox
compatible: find, tar, mkdir, mv, rm). The engine mounts a host directory at a path P in
the build and runs `cache_restore_script(paths, P)` before INSTALL and
`cache_save_script(paths, P)` after the build. Layout under P:

    data/manifest   the cache paths that matched when the cache was saved, one per line
    data/src.*      tar archives of files under CODEBUILD_SRC_DIR, relative to it
    data/abs.*      tar archives of files named by absolute paths, relative to /

Relative paths are stored relative to the source directory, so a cache restores into the
next build's source directory wherever it is. `**` spans directories; inside the build
`*` is find's `-path` wildcard, which may also span directories, so a cache can hold a
little more than the globs name (never less). Empty directories are not cached.

On the host: LOCAL caches (mode LOCAL_CUSTOM_CACHE) are a per-project directory under the
data dir; S3 caches are one tar.gz object, `<bucket>/<prefix>/<project key>.tgz`, that the
engine downloads into a per-build directory before the build and uploads after it.
LOCAL_SOURCE_CACHE and LOCAL_DOCKER_LAYER_CACHE are accepted and have no effect: every
build fetches its source afresh and images are local to the Docker engine anyway.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeline.codebuild import s3locations
from forgeline.codebuild.plan import shell_quote
from forgeline.codebuild.safepaths import UnsafePathError, WorkspaceError, clean_relative
from forgeline.core.blobstore import BlobInfo, BlobNotFound, BlobStore
from forgeline.core.settings import Settings

RESTORED_MARKER = "Cache restored:"
MISS_MARKER = "Cache miss:"
SAVED_MARKER = "Cache saved:"
DATA_DIR = "data"
MANIFEST = "manifest"
# Each "**" doubles the find expressions; beyond this many a single "*" stands in.
MAX_DOUBLE_STARS = 4
_GLOB_CHARS = re.compile(r"[*?\[]")


class CacheError(WorkspaceError):
    """Cache settings or paths the build cannot use."""

    def __init__(self, message: str, code: str = "CLIENT_ERROR") -> None:
        super().__init__(code, message)


# ---------------------------------------------------------------- cache paths


@dataclass(frozen=True)
class CachePath:
    """One `cache.paths` entry, ready for find: where to start and what to match."""

    pattern: str
    absolute: bool  # anchored at / rather than at CODEBUILD_SRC_DIR
    base: str  # the leading segments without wildcards; find starts there
    find_paths: tuple[str, ...]  # -path expressions, each starting with "./"


def parse_cache_path(pattern: str) -> CachePath:
    text = pattern.strip()
    absolute = text.startswith("/")
    body = text.lstrip("/") if absolute else text
    while body.startswith("./"):
        body = body[2:]
    try:
        cleaned = clean_relative(body, "cache path")
    except UnsafePathError as exc:
        raise CacheError(str(exc)) from exc
    segments = cleaned.split("/") if cleaned else []
    if not segments or (absolute and _GLOB_CHARS.search(segments[0])):
        raise CacheError(f"cache path {pattern!r} would cache a whole file system root")
    base_segments = list(itertools.takewhile(lambda s: not _GLOB_CHARS.search(s), segments))
    literal = len(base_segments) == len(segments)
    if literal:
        find_paths: tuple[str, ...] = (f"./{cleaned}", f"./{cleaned}/*")
    else:
        find_paths = _expand_double_stars(segments)
    return CachePath(
        pattern=pattern,
        absolute=absolute,
        base="/".join(base_segments),
        find_paths=find_paths,
    )


def _expand_double_stars(segments: list[str]) -> tuple[str, ...]:
    """find -path expressions covering a glob in which `**` means zero or more directories."""
    if segments[-1] == "**":
        segments = [*segments[:-1], "*"]
    stars = [index for index, segment in enumerate(segments) if segment == "**"]
    if len(stars) > MAX_DOUBLE_STARS:
        # find's * spans "/", so one "*" per "**" is a superset of what they match.
        return ("./" + "/".join("*" if s == "**" else s for s in segments),)
    expressions: list[str] = []
    for choice in itertools.product((False, True), repeat=len(stars)):
        # Each "**" is either dropped (zero directories) or one "*" (one or more).
        as_star = dict(zip(stars, choice, strict=True))
        parts = [
            "*" if as_star.get(index) else segment
            for index, segment in enumerate(segments)
            if segment != "**" or as_star[index]
        ]
        text = "./" + "/".join(parts)
        if text not in expressions:
            expressions.append(text)
    return tuple(expressions)


def parse_cache_paths(paths: Iterable[str]) -> list[CachePath]:
    return [parse_cache_path(path) for path in paths]


# ---------------------------------------------------------------- scripts


_VARIABLE_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def _preamble(cache_mount: str) -> list[str]:
    """`cache_mount` is a path, or a `$VARIABLE` the script reads when it runs."""
    reference = _VARIABLE_REFERENCE.fullmatch(cache_mount)
    if reference:
        name = reference.group(1) or reference.group(2)
        mount = f'"${{{name}:?the cache directory variable {name} is not set}}"'
    else:
        mount = shell_quote(cache_mount)
    return [f"cache_mount={mount}", 'src_dir="${CODEBUILD_SRC_DIR:-$(pwd)}"']


def cache_restore_script(paths: Iterable[str], cache_mount: str) -> str:
    """POSIX sh that puts the cached files back; prints RESTORED_MARKER or MISS_MARKER.

    Run it as its own `sh` process (it ends with `exit`), from the source directory or
    with CODEBUILD_SRC_DIR set. `cache_mount` is the cache directory as the build sees it:
    a path, or a `$VARIABLE` naming one.

    `paths` only gate the restore (no paths, nothing to do): the cache is restored whole,
    as saved by the previous build.
    """
    if not list(paths):
        return 'echo "Cache miss: no paths specified to be cached"\n'
    lines = [
        *_preamble(cache_mount),
        'data="$cache_mount/data"',
        'if [ ! -f "$data/manifest" ]; then',
        f'  echo "{MISS_MARKER} nothing cached yet"',
        "  exit 0",
        "fi",
        "status=0",
        'mkdir -p "$src_dir"',
        'for part in "$data"/src.*; do',
        '  if [ -f "$part" ]; then tar -xf "$part" -C "$src_dir" || status=1; fi',
        "done",
        'for part in "$data"/abs.*; do',
        '  if [ -f "$part" ]; then tar -xf "$part" -C / || status=1; fi',
        "done",
        'count=$(grep -c . "$data/manifest")',
        'if [ "$status" -ne 0 ]; then',
        '  echo "Warning: some cached files could not be restored"',
        "fi",
        f'echo "{RESTORED_MARKER} $count paths"',
        "exit 0",
    ]
    return "\n".join(lines) + "\n"


def cache_save_script(paths: Iterable[str], cache_mount: str) -> str:
    """POSIX sh that replaces the cache with the files `paths` match now.

    A save that matches nothing keeps the previous cache. Failures print a warning and
    exit 0: as on AWS, a cache that cannot be saved does not fail the build.
    """
    parsed = parse_cache_paths(paths)
    if not parsed:
        return 'echo "Cache not saved: no paths specified to be cached"\n'
    lines = [
        *_preamble(cache_mount),
        'stage="$cache_mount/.next.$$"',
        'rm -rf "$stage" && mkdir -p "$stage" || { echo "Warning: cannot write the cache"; exit 0; }',
        ': > "$stage/manifest"; : > "$stage/src.list"; : > "$stage/abs.list"',
    ]
    for entry in parsed:
        anchor, listing = ("/", "abs.list") if entry.absolute else ('"$src_dir"', "src.list")
        start = f"./{entry.base}" if entry.base else "."
        match = " -o ".join(f"-path {shell_quote(expression)}" for expression in entry.find_paths)
        lines += [
            f"# {entry.pattern}",
            f"(cd {anchor} && find {shell_quote(start)} \\( -type f -o -type l \\) \\( {match} \\)"
            ' -print0) > "$stage/one" 2>/dev/null',
            'if [ -s "$stage/one" ]; then',
            f'  cat "$stage/one" >> "$stage/{listing}"',
            f"  printf '%s\\n' {shell_quote(entry.pattern.strip())} >> \"$stage/manifest\"",
            "fi",
        ]

    # NUL-separated lists through xargs into tar: busybox tar has no -T, and xargs may
    # split a long list, so each part is its own archive.
    def pack(kind: str) -> str:
        return shell_quote(f'tar -cf "$(mktemp "$0/{kind}.XXXXXX")" "$@"')

    lines += [
        'rm -f "$stage/one"',
        'if [ ! -s "$stage/manifest" ]; then',
        '  rm -rf "$stage"',
        '  echo "Cache not saved: no matching cache paths found"',
        "  exit 0",
        "fi",
        "status=0",
        'if [ -s "$stage/src.list" ]; then',
        f'  (cd "$src_dir" && xargs -0 sh -c {pack("src")} "$stage" < "$stage/src.list")'
        " || status=1",
        "fi",
        'if [ -s "$stage/abs.list" ]; then',
        f'  (cd / && xargs -0 sh -c {pack("abs")} "$stage" < "$stage/abs.list") || status=1',
        "fi",
        'rm -f "$stage/src.list" "$stage/abs.list"',
        'if [ "$status" -ne 0 ]; then',
        '  rm -rf "$stage"',
        '  echo "Warning: the cache could not be saved"',
        "  exit 0",
        "fi",
        # Swap in the new cache whole, so a reader never sees half of one.
        'old="$cache_mount/.old.$$"',
        'rm -rf "$old"',
        'if [ -d "$cache_mount/data" ]; then mv "$cache_mount/data" "$old"; fi',
        'mv "$stage" "$cache_mount/data"',
        'rm -rf "$old"',
        'count=$(grep -c . "$cache_mount/data/manifest")',
        f'echo "{SAVED_MARKER} $count paths"',
        "exit 0",
    ]
    return "\n".join(lines) + "\n"


def cache_hit(output: str) -> bool:
    """Whether a restore script's output says it found a cache."""
    return RESTORED_MARKER in output


def has_cached_content(cache_dir: Path) -> bool:
    """Whether a cache directory (the mount's host side) holds a saved cache."""
    return (cache_dir / DATA_DIR / MANIFEST).is_file()


# ---------------------------------------------------------------- project settings


def cache_type(project_cache: Mapping[str, Any] | None) -> str:
    return (project_cache or {}).get("type") or "NO_CACHE"


def uses_path_cache(project_cache: Mapping[str, Any] | None) -> bool:
    """Whether the buildspec's cache paths are saved and restored for this project."""
    kind = cache_type(project_cache)
    if kind == "S3":
        return True
    modes = (project_cache or {}).get("modes") or []
    return kind == "LOCAL" and "LOCAL_CUSTOM_CACHE" in modes


def local_cache_dir(settings: Settings, account_id: str, region: str, project_name: str) -> Path:
    """The host directory of a project's LOCAL cache (created on first use)."""
    path = settings.data_dir / "build-cache" / account_id / region / _safe_name(project_name)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe_name(name: str) -> str:
    # Project names are [A-Za-z0-9][A-Za-z0-9_-]*; anything else still maps to one segment.
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    return cleaned or "_"


def project_cache_key(account_id: str, region: str, project_name: str) -> str:
    """A key unique to the project (account and region included), readable by name."""
    digest = hashlib.sha256(f"{account_id}/{region}/{project_name}".encode()).hexdigest()
    return f"{_safe_name(project_name)}-{digest[:12]}"


def s3_cache_location(
    project_cache: Mapping[str, Any],
    account_id: str,
    region: str,
    project_name: str,
    cache_key: str | None = None,
) -> str:
    """ "bucket/prefix/<project key>[.<buildspec cache key>].tgz" for an S3 cache."""
    location = (project_cache.get("location") or "").strip("/")
    bucket, prefix = s3locations.split_location(location)
    if not bucket:
        raise CacheError(f"invalid S3 cache location {project_cache.get('location')!r}")
    name = project_cache_key(account_id, region, project_name)
    if cache_key:
        name += "." + re.sub(r"[^A-Za-z0-9._-]", "_", cache_key)
    prefix = prefix.strip("/")
    return f"{bucket}/{prefix}/{name}.tgz" if prefix else f"{bucket}/{name}.tgz"


def _blob_key(location: str) -> str:
    bucket, key = s3locations.split_location(location)
    return s3locations.blob_key(bucket, key)


def download(blobstore: BlobStore, location: str, into_dir: Path) -> bool:
    """Unpack the S3 cache object at `location` into `into_dir`; False when there is none.

    The archive came from a build, so it is untrusted: tarfile's "data" filter refuses
    absolute names, `..`, links leading out and device files.
    """
    into_dir.mkdir(parents=True, exist_ok=True)
    try:
        stream = blobstore.open(_blob_key(location))
    except BlobNotFound:
        return False
    try:
        with stream, tarfile.open(fileobj=stream, mode="r|gz") as archive:
            archive.extractall(into_dir, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CacheError(f"the cache at {location} is unreadable: {exc}", "CACHE_ERROR") from exc
    return True


def upload(blobstore: BlobStore, location: str, from_dir: Path) -> BlobInfo | None:
    """Store `from_dir` as one tar.gz object at `location`; None when it holds no cache."""
    if not has_cached_content(from_dir):
        return None
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w:gz") as archive:
            # Only the saved cache, not a half-written stage a failed save left behind.
            archive.add(from_dir / DATA_DIR, arcname=DATA_DIR)
        spool.seek(0)
        return blobstore.put(_blob_key(location), spool)


def invalidate_project_cache(
    settings: Settings,
    blobstore: BlobStore,
    account_id: str,
    region: str,
    project_name: str,
    project_cache: Mapping[str, Any] | None,
) -> None:
    """Forget a project's cache, local and S3 (InvalidateProjectCache)."""
    local = settings.data_dir / "build-cache" / account_id / region / _safe_name(project_name)
    if local.exists():
        # Rename first: the cache is gone at once even if removing files takes a while
        # (or some, written by a build as another user, cannot be removed).
        doomed = local.with_name(f".invalidated-{local.name}-{uuid.uuid4().hex}")
        local.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    if cache_type(project_cache) == "S3" and project_cache is not None:
        try:
            location = s3_cache_location(project_cache, account_id, region, project_name)
        except CacheError:
            return
        key = _blob_key(location)
        blobstore.delete(key)
        # Caches saved under a buildspec cache key share the project key and a dot.
        blobstore.delete_prefix(key[: -len(".tgz")] + ".")
