"""Local build images: made from a root filesystem and `docker import`ed (no registry needed).

Two recipes:

- ``tiny`` (``forgeline/tiny:latest``): Debian's static BusyBox, its applets, a
  ``codebuild-user`` (uid 1000). Seconds to build; used by tests and for shell-only builds.
- ``standard`` (``forgeline/standard:latest``): a Debian minbase root filesystem made by
  ``debootstrap`` from the host's own suite and mirror, with bash, git, python3, curl, zip,
  unzip and ca-certificates. With ``runtimes`` (``forgeline/standard:runtimes``) Debian's
  language runtimes are installed on top of it: a JDK, Ruby, Go, Node.js and PHP.

Every image is labelled ``org.forgeline.image=<recipe>`` and
``org.forgeline.runtimes=<JSON {runtime: [versions]}>``; the versions are probed inside the
finished image, so the label says what really is there. A buildspec's ``runtime-versions``
are checked against that label (runtime_versions.py), and ListCuratedEnvironmentImages
lists the labelled images (curated_images.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

IMAGE_LABEL = "org.forgeline.image"
RUNTIMES_LABEL = "org.forgeline.runtimes"
DESCRIPTION_LABEL = "org.forgeline.description"

KINDS = ("tiny", "standard")
DEFAULT_TAGS = {"tiny": "forgeline/tiny:latest", "standard": "forgeline/standard:latest"}
RUNTIMES_TAG = "forgeline/standard:runtimes"

IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUILD_USER = "codebuild-user"
BUILD_UID = 1000

STANDARD_PACKAGES = ("bash", "git", "python3", "curl", "zip", "unzip", "ca-certificates")
# Debian's default version of each language, so the suite decides (e.g. openjdk-17 on 12).
RUNTIME_PACKAGES = ("default-jdk-headless", "ruby", "golang-go", "nodejs", "php-cli", "python3")

DESCRIPTIONS = {
    "tiny": "BusyBox shell and utilities (Debian busybox-static)",
    "standard": "Debian minbase with bash, git, python3, curl, zip and unzip",
    "standard-runtimes": "Debian standard image with Debian's Java, Ruby, Go, Node.js, "
    "PHP and Python",
}

# Prints "<runtime> <version>" for each runtime found; runtime names and version forms
# follow CodeBuild's runtime-versions (python 3.11, nodejs 18, java openjdk17, golang 1.19).
_PROBE = r"""
command -v python3 >/dev/null 2>&1 && python3 -c 'import sys; print("python %d.%d" % sys.version_info[:2])'
command -v java >/dev/null 2>&1 && java -version 2>&1 | sed -n '1s/^[^"]*"\([0-9]*\).*/java openjdk\1/p'
command -v node >/dev/null 2>&1 && node -e 'console.log("nodejs " + process.versions.node.split(".")[0])'
command -v ruby >/dev/null 2>&1 && ruby -e 'puts "ruby " + RUBY_VERSION.split(".")[0, 2].join(".")'
command -v go >/dev/null 2>&1 && go version | sed -n 's/.* go\([0-9]*\.[0-9]*\).*/golang \1/p'
command -v php >/dev/null 2>&1 && php -r 'echo "php ", PHP_MAJOR_VERSION, ".", PHP_MINOR_VERSION, "\n";'
true
"""

Progress = Callable[[str], None]


class ImageBuildError(Exception):
    """A recipe could not produce its image; the message says which step failed."""


def _docker() -> Any:
    """One client per process: making one asks the engine for its API version."""
    global _client
    with _client_lock:
        if _client is None:
            import docker

            _client = docker.from_env()
        return _client


_client: Any = None
_client_lock = threading.Lock()


def _docker_errors() -> Any:
    import docker.errors

    return docker.errors


# --- building ----------------------------------------------------------------------------


def build_image(
    kind: str, runtimes: bool = False, tag: str | None = None, progress: Progress = print
) -> str:
    """Build the image of recipe KIND ("tiny" or "standard") and return its reference."""
    if kind not in KINDS:
        raise ImageBuildError(f"unknown image kind {kind!r}; choose one of {', '.join(KINDS)}")
    if runtimes and kind != "standard":
        raise ImageBuildError("--runtimes applies only to the standard image")
    started = time.monotonic()
    with _build_lock():
        if kind == "tiny":
            ref = _build_tiny(tag or DEFAULT_TAGS["tiny"], progress)
        elif runtimes:
            ref = _build_runtimes(tag or RUNTIMES_TAG, progress)
        else:
            ref = _build_standard(tag or DEFAULT_TAGS["standard"], progress)
    progress(f"built {ref} in {time.monotonic() - started:.1f} s")
    return ref


def ensure_image(kind: str, runtimes: bool = False) -> str:
    """The default reference of recipe KIND, building the image first if it is missing."""
    ref = RUNTIMES_TAG if runtimes else DEFAULT_TAGS.get(kind, "")
    if ref and _image_exists(ref):
        return ref
    with _build_lock():
        # Another process may have built it while this one waited for the lock.
        if ref and _image_exists(ref):
            return ref
        return build_image(kind, runtimes=runtimes, progress=lambda _line: None)


def image_present(ref: str) -> bool:
    """Whether REF is a local image; False too when no engine answers."""
    try:
        return _image_exists(ref)
    except Exception:
        return False


def _image_exists(ref: str) -> bool:
    try:
        _docker().images.get(ref)
    except _docker_errors().ImageNotFound:
        return False
    return True


@contextmanager
def _build_lock() -> Iterator[None]:
    """Serializes image builds on this host (test sessions, CLI runs) with a lock file.

    Re-entrant within a thread (build_image takes it while ensure_image may hold it);
    threads of one process queue on a lock of their own before the file lock.
    """
    with _thread_lock:
        if getattr(_held, "depth", 0):
            _held.depth += 1
            try:
                yield
            finally:
                _held.depth -= 1
            return
        path = Path(tempfile.gettempdir()) / "forgeline-images.lock"
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            _held.depth = 1
            try:
                yield
            finally:
                _held.depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)


_thread_lock = threading.RLock()
_held = threading.local()


def _changes(kind: str, runtimes: Mapping[str, Sequence[str]], description: str) -> list[str]:
    # A JSON string is a valid double-quoted Dockerfile word once its quotes are escaped.
    def word(value: str) -> str:
        return json.dumps(value)

    return [
        f"LABEL {IMAGE_LABEL}={word(kind)}",
        f"LABEL {RUNTIMES_LABEL}={word(json.dumps(dict(runtimes), sort_keys=True))}",
        f"LABEL {DESCRIPTION_LABEL}={word(description)}",
        f"ENV PATH={IMAGE_PATH}",
        'CMD ["sh"]',
    ]


def _split_ref(ref: str) -> tuple[str, str]:
    repository, _, tag = ref.rpartition(":")
    if not repository or "/" in tag:
        return ref, "latest"
    return repository, tag


def _import(tar: str | bytes, ref: str, changes: list[str]) -> str:
    """`docker import` a root filesystem tar (a path or the bytes) as REF."""
    repository, tag = _split_ref(ref)
    api = _docker().api
    if isinstance(tar, bytes):
        api.import_image_from_data(tar, repository=repository, tag=tag, changes=changes)
    else:
        api.import_image(src=tar, repository=repository, tag=tag, changes=changes)
    return f"{repository}:{tag}"


def _passwd_files() -> dict[str, str]:
    home = f"/home/{BUILD_USER}"
    return {
        "etc/passwd": f"root:x:0:0:root:/root:/bin/sh\n"
        f"{BUILD_USER}:x:{BUILD_UID}:{BUILD_UID}::{home}:/bin/sh\n",
        "etc/group": f"root:x:0:\n{BUILD_USER}:x:{BUILD_UID}:\n",
    }


# tiny -------------------------------------------------------------------------------------


def _build_tiny(ref: str, progress: Progress) -> str:
    with tempfile.TemporaryDirectory(prefix="forgeline-tiny-") as scratch:
        busybox = _static_busybox(Path(scratch), progress)
        applets = subprocess.run(
            [str(busybox), "--list-full"], capture_output=True, text=True, check=True
        ).stdout.split()
        progress(f"busybox: {busybox} ({len(applets)} applets)")
        tar = _tiny_rootfs_tar(busybox, applets)
    return _import(tar, ref, _changes("tiny", {}, DESCRIPTIONS["tiny"]))


def _static_busybox(scratch: Path, progress: Progress) -> Path:
    """The host's static BusyBox, else one extracted from Debian's busybox-static package."""
    for candidate in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if candidate.is_file() and _is_static_elf(candidate):
            return candidate
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise ImageBuildError(
            "the tiny image needs a static busybox: install busybox-static "
            "(apt-get and dpkg-deb were not found to fetch it)"
        )
    progress("fetching busybox-static with apt-get download")
    fetched = subprocess.run(
        ["apt-get", "download", "busybox-static"], cwd=scratch, capture_output=True, text=True
    )
    debs = sorted(scratch.glob("busybox-static_*.deb"))
    if fetched.returncode != 0 or not debs:
        raise ImageBuildError(
            f"apt-get download busybox-static failed: {fetched.stderr.strip()[-500:]}"
        )
    extracted = scratch / "pkg"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(extracted)], check=True)
    for inside in ("bin/busybox", "usr/bin/busybox"):
        if (extracted / inside).is_file():
            return extracted / inside
    raise ImageBuildError("busybox-static package holds no busybox binary")


def _is_static_elf(path: Path) -> bool:
    """True when PATH is a 64-bit little-endian ELF without a program interpreter."""
    with open(path, "rb") as handle:
        header = handle.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return False
        phoff = struct.unpack_from("<Q", header, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        handle.seek(phoff)
        table = handle.read(phentsize * phnum)
    pt_interp = 3
    return all(
        struct.unpack_from("<I", table, index * phentsize)[0] != pt_interp for index in range(phnum)
    )


def _tiny_rootfs_tar(busybox: Path, applets: Sequence[str]) -> bytes:
    buffer = BytesIO()
    _now = int(time.time())
    with tarfile.open(fileobj=buffer, mode="w") as tar:

        def directory(name: str, mode: int = 0o755, uid: int = 0) -> None:
            info = tarfile.TarInfo(name)
            info.mtime = _now
            info.type = tarfile.DIRTYPE
            info.mode = mode
            info.uid = info.gid = uid
            tar.addfile(info)

        def text(name: str, content: str) -> None:
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.mtime = _now
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, BytesIO(data))

        for name in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "home", "var"):
            directory(name)
        directory("root", 0o700)
        directory("tmp", 0o1777)
        directory("var/tmp", 0o1777)
        directory(f"home/{BUILD_USER}", 0o755, BUILD_UID)
        info = tarfile.TarInfo("bin/busybox")
        info.mtime = _now
        info.size = busybox.stat().st_size
        info.mode = 0o755
        with open(busybox, "rb") as binary:
            tar.addfile(info, binary)
        for applet in applets:
            name = applet.lstrip("/")
            if name == "bin/busybox" or "/" not in name:
                continue
            link = tarfile.TarInfo(name)
            link.mtime = _now
            link.type = tarfile.SYMTYPE
            link.linkname = "/bin/busybox"
            tar.addfile(link)
        for name, content in _passwd_files().items():
            text(name, content)
    return buffer.getvalue()


# standard ---------------------------------------------------------------------------------


def _build_standard(ref: str, progress: Progress) -> str:
    if os.geteuid() != 0:
        raise ImageBuildError("the standard image is made with debootstrap, which needs root")
    debootstrap = _ensure_debootstrap(progress)
    suite = host_suite()
    mirror = host_mirror(suite)
    with tempfile.TemporaryDirectory(prefix="forgeline-standard-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        command = [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(STANDARD_PACKAGES)}",
            suite,
            str(rootfs),
            mirror,
        ]
        progress(f"running {' '.join(command)} (about a minute)")
        _run_streaming(command, progress, "debootstrap")
        _add_build_user(rootfs)
        _trim_rootfs(rootfs)
        tar_path = Path(scratch) / "rootfs.tar"
        progress("packing the root filesystem")
        subprocess.run(
            [
                "tar",
                "-C",
                str(rootfs),
                "--numeric-owner",
                "--exclude=./dev/*",
                "--exclude=./proc/*",
                "--exclude=./sys/*",
                "-cf",
                str(tar_path),
                ".",
            ],
            check=True,
        )
        found = _probe_output(
            subprocess.run(
                ["chroot", str(rootfs), "/bin/sh", "-c", _PROBE],
                capture_output=True,
                env={"PATH": IMAGE_PATH, "HOME": "/root"},
            ).stdout
        )
        progress(f"runtimes found: {json.dumps(found, sort_keys=True)}")
        progress(f"importing as {ref}")
        return _import(str(tar_path), ref, _changes("standard", found, DESCRIPTIONS["standard"]))


_PROBE_MARKER = "=== forgeline runtime probe ==="


def _build_runtimes(ref: str, progress: Progress) -> str:
    base = ensure_image("standard")
    script = (
        "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -q; "
        "apt-get install -y -q --no-install-recommends "
        + " ".join(RUNTIME_PACKAGES)
        + "; apt-get clean; rm -rf /var/lib/apt/lists/*; "
        + f"echo '{_PROBE_MARKER}'; "
        + _PROBE
    )
    progress(f"installing {' '.join(RUNTIME_PACKAGES)} into a container of {base}")
    client = _docker()
    container = client.containers.run(
        base, ["sh", "-c", script], detach=True, network_mode="host", user="0"
    )
    try:
        output = bytearray()
        for chunk in container.logs(stream=True, follow=True):
            output += chunk
            for line in chunk.decode(errors="replace").splitlines():
                progress(line)
        status = container.wait()["StatusCode"]
        if status != 0 or _PROBE_MARKER.encode() not in output:
            raise ImageBuildError(f"installing the runtimes failed (exit status {status})")
        found = _probe_output(bytes(output).rsplit(_PROBE_MARKER.encode(), 1)[1])
        progress(f"runtimes found: {json.dumps(found, sort_keys=True)}")
        repository, tag = _split_ref(ref)
        changes = _changes("standard", found, DESCRIPTIONS["standard-runtimes"])
        container.commit(repository, tag, changes=changes)
    finally:
        container.remove(force=True)
    return f"{repository}:{tag}"


def probe_runtimes(image_ref: str) -> dict[str, list[str]]:
    """The language runtimes really installed in an image, by running a probe in it."""
    return _probe_output(
        _docker().containers.run(
            image_ref, ["sh", "-c", _PROBE], remove=True, network_mode="none", user="0"
        )
    )


def _probe_output(output: bytes) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in output.decode(errors="replace").splitlines():
        name, _, version = line.strip().partition(" ")
        if name and version:
            found.setdefault(name, []).append(version)
    return found


def _ensure_debootstrap(progress: Progress) -> str:
    found = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if found:
        return found
    progress("installing debootstrap with apt-get")
    installed = subprocess.run(
        ["apt-get", "install", "-y", "-q", "debootstrap"],
        capture_output=True,
        text=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if installed.returncode != 0:
        raise ImageBuildError(
            f"apt-get install debootstrap failed: {installed.stderr.strip()[-500:]}"
        )
    return shutil.which("debootstrap") or "/usr/sbin/debootstrap"


def host_suite(os_release: Path = Path("/etc/os-release")) -> str:
    """The host's Debian codename (e.g. "bookworm")."""
    values: dict[str, str] = {}
    if os_release.exists():
        for line in os_release.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
    suite = values.get("VERSION_CODENAME")
    if not suite:
        raise ImageBuildError(f"no VERSION_CODENAME in {os_release}: is this host Debian?")
    return suite


def host_mirror(suite: str, apt_dir: Path = Path("/etc/apt")) -> str:
    """The URI of the host's apt source that serves SUITE (one-line or deb822 format)."""
    files = [apt_dir / "sources.list"]
    sources_d = apt_dir / "sources.list.d"
    if sources_d.is_dir():
        files += sorted(sources_d.glob("*.list")) + sorted(sources_d.glob("*.sources"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        entries = _deb822_entries(text) if path.suffix == ".sources" else _one_line_entries(text)
        for uri, suites in entries:
            if suite in suites:
                return uri
    raise ImageBuildError(f"no apt source for suite {suite!r} in {apt_dir}")


def _one_line_entries(text: str) -> Iterator[tuple[str, list[str]]]:
    for line in text.splitlines():
        # Options in brackets ("[signed-by=...]") are not positional words.
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            yield words[1], [words[2]]


def _deb822_entries(text: str) -> Iterator[tuple[str, list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        uris = fields.get("uris", "").split()
        if uris:
            yield uris[0], fields.get("suites", "").split()


def _add_build_user(rootfs: Path) -> None:
    subprocess.run(
        [
            "chroot",
            str(rootfs),
            "useradd",
            "--create-home",
            "--uid",
            str(BUILD_UID),
            "--shell",
            "/bin/bash",
            BUILD_USER,
        ],
        check=True,
        capture_output=True,
    )


def _trim_rootfs(rootfs: Path) -> None:
    """Drop downloaded packages and index files: they only make the image bigger."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*", "var/log/*.log"):
        for path in rootfs.glob(pattern):
            path.unlink(missing_ok=True)


def _run_streaming(command: Sequence[str], progress: Progress, what: str) -> None:
    tail: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            progress(line.rstrip())
            tail = (tail + [line.rstrip()])[-20:]
    if process.returncode != 0:
        raise ImageBuildError(
            f"{what} failed (exit status {process.returncode}): " + " | ".join(tail[-5:])
        )


# --- reading -----------------------------------------------------------------------------


def image_labels(image_ref: str) -> dict[str, str] | None:
    """An image's labels; None when there is no such image, or no engine to ask."""
    try:
        return dict(_docker().images.get(image_ref).labels or {})
    except _docker_errors().DockerException:
        return None


def image_runtimes(image_ref: str) -> dict[str, list[str]]:
    """The runtimes an image's label declares; {} for an image without the label."""
    labels = image_labels(image_ref) or {}
    return parse_runtimes_label(labels.get(RUNTIMES_LABEL))


def parse_runtimes_label(raw: str | None) -> dict[str, list[str]]:
    """The {runtime: [versions]} of a RUNTIMES_LABEL value; {} for a missing or bad one."""
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {
        str(name): [str(v) for v in versions]
        for name, versions in value.items()
        if isinstance(versions, list)
    }


def list_images() -> list[dict[str, Any]]:
    """Every local image labelled as a Forgeline build image, one entry per tag."""
    entries = []
    try:
        found = _docker().images.list(filters={"label": IMAGE_LABEL})
    except _docker_errors().DockerException:
        return []  # no Docker engine: no images
    for image in found:
        labels = image.labels or {}
        for ref in image.tags or []:
            entries.append(
                {
                    "image": ref,
                    "id": image.short_id,
                    "kind": labels.get(IMAGE_LABEL, ""),
                    "description": labels.get(DESCRIPTION_LABEL, ""),
                    "runtimes": parse_runtimes_label(labels.get(RUNTIMES_LABEL)),
                    "created": image.attrs.get("Created", ""),
                    "sizeBytes": image.attrs.get("Size", 0),
                }
            )
    return sorted(entries, key=lambda entry: entry["image"])
