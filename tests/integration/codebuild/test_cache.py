"""Build cache round trips: the generated scripts run by real shells (dash, bash, busybox
and, when a Docker engine answers, inside a forgeline/tiny container), stored locally and
in a blob store."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from forgeline.codebuild.cache import (
    CacheError,
    cache_hit,
    cache_restore_script,
    cache_save_script,
    download,
    has_cached_content,
    invalidate_project_cache,
    local_cache_dir,
    s3_cache_location,
    upload,
    uses_path_cache,
)
from forgeline.core.blobstore import LocalBlobStore
from forgeline.core.settings import Settings


def busybox_bin(tmp_path: Path) -> Path | None:
    """A directory of busybox applets, so the scripts see only busybox's find, tar, sort..."""
    busybox = shutil.which("busybox")
    if busybox is None:
        return None
    applets = tmp_path / "busybox-bin"
    applets.mkdir(exist_ok=True)
    listing = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    for applet in listing.stdout.split():
        link = applets / applet
        if not link.exists():
            link.symlink_to(busybox)
    return applets


SHELLS = ["/bin/sh", "/bin/bash", "busybox"]


class Shell:
    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        if kind == "busybox":
            applets = busybox_bin(tmp_path)
            if applets is None:
                pytest.skip("busybox is not installed")
            self.argv = [str(applets / "sh")]
            self.env["PATH"] = str(applets)
        else:
            self.argv = [kind]

    def run(self, script: str, src_dir: Path) -> str:
        result = subprocess.run(
            [*self.argv, "-c", script],
            cwd=src_dir,
            env={**self.env, "CODEBUILD_SRC_DIR": str(src_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def layout(tmp_path: Path):
    """A source dir with dependencies, and an 'absolute' home outside it."""
    src = tmp_path / "build1" / "src"
    write(src / "node_modules" / "left-pad" / "index.js", "pad")
    write(src / "node_modules" / ".bin" / "tool", "#!/bin/sh\n")
    (src / "node_modules" / "current").symlink_to("left-pad")
    write(src / "target" / "app.jar", "jar")
    write(src / "target" / "classes" / "A.class", "class")
    write(src / "app.py", "source, not cached")
    home = tmp_path / "home"
    write(home / ".m2" / "repository" / "lib.jar", "lib")
    write(home / "with space" / "it's.txt", "quoted")
    paths = ["node_modules/**/*", "target/*.jar", f"{home}/.m2/**/*", f"{home}/with space"]
    return src, home, paths


@pytest.mark.parametrize("kind", SHELLS)
def test_round_trip_into_a_new_source_directory(tmp_path: Path, layout, kind: str) -> None:
    shell = Shell(kind, tmp_path)
    src, home, paths = layout
    mount = tmp_path / "cache"
    mount.mkdir()

    first = shell.run(cache_restore_script(paths, str(mount)), src)
    assert not cache_hit(first) and "Cache miss" in first
    saved = shell.run(cache_save_script(paths, str(mount)), src)
    assert "Cache saved: 4 paths" in saved
    assert has_cached_content(mount)

    shutil.rmtree(home)
    new_src = tmp_path / "build2" / "src"
    write(new_src / "app.py", "fresh checkout")
    restored = shell.run(cache_restore_script(paths, str(mount)), new_src)
    assert cache_hit(restored) and "Cache restored: 4 paths" in restored
    assert (new_src / "node_modules" / "left-pad" / "index.js").read_text() == "pad"
    assert os.readlink(new_src / "node_modules" / "current") == "left-pad"
    assert (new_src / "target" / "app.jar").read_text() == "jar"
    assert not (new_src / "target" / "classes").exists()  # `*.jar` did not ask for it
    assert (new_src / "app.py").read_text() == "fresh checkout"
    assert (home / ".m2" / "repository" / "lib.jar").read_text() == "lib"
    assert (home / "with space" / "it's.txt").read_text() == "quoted"


@pytest.mark.parametrize("kind", SHELLS)
def test_save_replaces_and_nothing_matching_keeps_the_old_cache(
    tmp_path: Path, layout, kind: str
) -> None:
    shell = Shell(kind, tmp_path)
    src, _, paths = layout
    mount = tmp_path / "cache"
    mount.mkdir()
    shell.run(cache_save_script(paths, str(mount)), src)
    shutil.rmtree(src / "node_modules")
    assert "Cache saved: 3 paths" in shell.run(cache_save_script(paths, str(mount)), src)
    empty = tmp_path / "empty"
    empty.mkdir()
    kept = shell.run(cache_save_script(["nothing/**/*"], str(mount)), empty)
    assert "no matching cache paths" in kept
    restored = shell.run(cache_restore_script(paths, str(mount)), empty)
    assert "Cache restored: 3 paths" in restored
    assert not (empty / "node_modules").exists()
    assert (empty / "target" / "app.jar").exists()
    assert sorted(p.name for p in mount.iterdir()) == ["data"]  # no stage left behind


def test_the_mount_may_be_a_variable_set_when_the_script_runs(tmp_path: Path, layout) -> None:
    shell = Shell("/bin/sh", tmp_path)
    src, _, paths = layout
    mount = tmp_path / "cache dir"
    mount.mkdir()
    prelude = f"CODEBUILD_CACHE_DIR='{mount}'\n"
    assert "Cache saved" in shell.run(
        prelude + cache_save_script(paths, "$CODEBUILD_CACHE_DIR"), src
    )
    assert has_cached_content(mount)
    restored = shell.run(prelude + cache_restore_script(paths, "${CODEBUILD_CACHE_DIR}"), src)
    assert cache_hit(restored)
    unset = subprocess.run(
        ["/bin/sh", "-c", cache_restore_script(paths, "$NOT_SET_ANYWHERE")],
        capture_output=True,
        text=True,
    )
    assert unset.returncode != 0 and "NOT_SET_ANYWHERE is not set" in unset.stderr


def test_no_cache_paths_means_no_work(tmp_path: Path) -> None:
    shell = Shell("/bin/sh", tmp_path)
    assert "no paths specified" in shell.run(cache_restore_script([], "/nowhere"), tmp_path)
    assert "no paths specified" in shell.run(cache_save_script([], "/nowhere"), tmp_path)


def test_s3_cache_upload_download_and_invalidate(tmp_path: Path, layout) -> None:
    shell = Shell("/bin/sh", tmp_path)
    src, _, paths = layout
    settings = Settings(data_dir=tmp_path / "state")
    store = LocalBlobStore(tmp_path / "blobs")
    project_cache = {"type": "S3", "location": "cache-bucket/ci"}
    assert uses_path_cache(project_cache)
    location = s3_cache_location(project_cache, "111122223333", "us-east-1", "web")
    assert location.startswith("cache-bucket/ci/web-") and location.endswith(".tgz")

    build1 = tmp_path / "b1-cache"
    assert download(store, location, build1) is False
    assert upload(store, location, build1) is None  # nothing saved, nothing stored
    shell.run(cache_save_script(paths, str(build1)), src)
    info = upload(store, location, build1)
    assert info is not None and info.key == "buckets/" + location

    build2 = tmp_path / "b2-cache"
    assert download(store, location, build2) is True
    new_src = tmp_path / "fresh"
    new_src.mkdir()
    assert cache_hit(shell.run(cache_restore_script(paths, str(build2)), new_src))
    assert (new_src / "node_modules" / "left-pad" / "index.js").read_text() == "pad"

    # Another project's cache and a keyed cache of this one share the prefix.
    other = s3_cache_location(project_cache, "111122223333", "us-east-1", "web2")
    keyed = s3_cache_location(project_cache, "111122223333", "us-east-1", "web", "deps-v1")
    upload(store, other, build1)
    upload(store, keyed, build1)
    invalidate_project_cache(settings, store, "111122223333", "us-east-1", "web", project_cache)
    assert store.stat("buckets/" + location) is None
    assert store.stat("buckets/" + keyed) is None
    assert store.stat("buckets/" + other) is not None


def test_local_cache_dir_is_per_project_and_invalidated(tmp_path: Path, layout) -> None:
    shell = Shell("/bin/sh", tmp_path)
    src, _, paths = layout
    settings = Settings(data_dir=tmp_path / "state")
    store = LocalBlobStore(tmp_path / "blobs")
    project_cache = {"type": "LOCAL", "modes": ["LOCAL_CUSTOM_CACHE", "LOCAL_SOURCE_CACHE"]}
    assert uses_path_cache(project_cache)
    assert not uses_path_cache({"type": "LOCAL", "modes": ["LOCAL_DOCKER_LAYER_CACHE"]})
    assert not uses_path_cache({"type": "NO_CACHE"})
    mine = local_cache_dir(settings, "111122223333", "us-east-1", "web")
    theirs = local_cache_dir(settings, "444455556666", "us-east-1", "web")
    assert mine != theirs and mine.is_dir()
    shell.run(cache_save_script(paths, str(mine)), src)
    shell.run(cache_save_script(paths, str(theirs)), src)
    invalidate_project_cache(settings, store, "111122223333", "us-east-1", "web", project_cache)
    assert not has_cached_content(local_cache_dir(settings, "111122223333", "us-east-1", "web"))
    assert has_cached_content(theirs)


def test_a_hostile_cache_archive_is_refused(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        member = tarfile.TarInfo("data/link")
        member.type = tarfile.SYMTYPE
        member.linkname = "/etc"
        archive.addfile(member)
        payload = tarfile.TarInfo("data/link/evil")
        archive.addfile(payload, io.BytesIO(b""))
    store.put("buckets/c/evil.tgz", buffer.getvalue())
    with pytest.raises(CacheError):
        download(store, "c/evil.tgz", tmp_path / "into")
    assert not Path("/etc/evil").exists()


def test_round_trip_inside_a_container(tmp_path: Path, tiny_image: str) -> None:
    """Absolute paths exist only inside the build: the cache mount carries them across."""
    import docker

    client = docker.from_env()
    mount = tmp_path / "cache"
    mount.mkdir()
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    paths = ["deps/**/*", "/root/.m2/**/*"]
    (scripts / "save.sh").write_text(cache_save_script(paths, "/codebuild/cache"))
    (scripts / "restore.sh").write_text(cache_restore_script(paths, "/codebuild/cache"))

    def run(script: str) -> str:
        output = client.containers.run(
            tiny_image,
            ["sh", "-c", f"mkdir -p /codebuild/src && cd /codebuild/src && {script}"],
            environment={"CODEBUILD_SRC_DIR": "/codebuild/src"},
            volumes={
                str(mount): {"bind": "/codebuild/cache", "mode": "rw"},
                str(scripts): {"bind": "/codebuild/scripts", "mode": "ro"},
            },
            network_mode="none",
            remove=True,
        )
        return output.decode()

    make = "mkdir -p deps/a /root/.m2/r && echo dep > deps/a/x && echo lib > /root/.m2/r/l.jar"
    saved = run(f"{make} && sh /codebuild/scripts/save.sh")
    assert "Cache saved: 2 paths" in saved
    restored = run("sh /codebuild/scripts/restore.sh && cat deps/a/x /root/.m2/r/l.jar")
    assert "Cache restored: 2 paths" in restored
    assert restored.endswith("dep\nlib\n")
