"""The worker image of the production stack builds, runs as forgeline, and makes build images.

Builds deploy/Dockerfile against the local engine and runs the compose file's worker
entry point in it with the engine's socket mounted. No registry is reachable here, so when
the engine lacks python:3.11-slim a Debian base with python3 is made once with debootstrap
and kept under a fixed tag (later runs reuse it, as they reuse Docker's layer cache).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.paths import REPO_ROOT

OFFICIAL_BASE = "python:3.11-slim"
LOCAL_BASE = "forgeline-test/python-base:bookworm"
IMAGE = "forgeline-test/forgeline:latest"
SOCKET = "/var/run/docker.sock"


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


# The image does not depend on the state store: build and check it once per suite run.
pytestmark = [pytest.mark.docker, pytest.mark.db("postgres")]


def has_image(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def make_local_base() -> str:
    """A Debian minbase with python3 and venv, from the host's suite, imported once."""
    if has_image(OFFICIAL_BASE):
        return OFFICIAL_BASE
    if not has_image(LOCAL_BASE):
        from forgeline.codebuild.images import host_mirror, host_suite

        debootstrap = shutil.which("debootstrap")
        assert debootstrap, (
            "debootstrap is needed to make a base image: apt-get install debootstrap"
        )
        suite = host_suite()
        with tempfile.TemporaryDirectory(prefix="forgeline-base-") as scratch:
            rootfs = Path(scratch) / "rootfs"
            subprocess.run(
                [
                    debootstrap,
                    "--variant=minbase",
                    "--include=python3,python3-venv",
                    suite,
                    str(rootfs),
                    host_mirror(suite),
                ],
                check=True,
                capture_output=True,
                timeout=900,
            )
            tar = subprocess.Popen(
                [
                    "tar",
                    "-C",
                    str(rootfs),
                    "--numeric-owner",
                    "--exclude=./dev/*",
                    "--exclude=./proc/*",
                    "--exclude=./sys/*",
                    "-c",
                    ".",
                ],
                stdout=subprocess.PIPE,
            )
            subprocess.run(
                ["docker", "import", "-", LOCAL_BASE],
                stdin=tar.stdout,
                check=True,
                capture_output=True,
                timeout=300,
            )
            assert tar.wait() == 0
    return LOCAL_BASE


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    base = make_local_base()
    # Certificate authorities this host added (a TLS-inspecting proxy) reach pip too.
    extra_ca = "".join(
        path.read_text() for path in sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    )
    # The engine may have no bridge network: the build reaches PyPI and apt by the host's.
    docker(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        "--build-arg",
        f"PIP_EXTRA_CA={extra_ca}",
        "-f",
        str(REPO_ROOT / "deploy" / "Dockerfile"),
        "-t",
        IMAGE,
        str(REPO_ROOT),
        timeout=1200,
    )
    yield IMAGE


def worker_service() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]["worker"]


def run_worker(image: str, *command: str, build_dir: Path) -> subprocess.CompletedProcess[str]:
    """`docker compose run worker COMMAND`: the compose user, entry point and mounts."""
    service = worker_service()
    return docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--user",
        str(service["user"]),
        "--entrypoint",
        service["entrypoint"][0],
        "-e",
        f"FORGELINE_BUILD_DIR={build_dir}",
        "-v",
        f"{SOCKET}:{SOCKET}",
        "-v",
        f"{build_dir}:{build_dir}",
        image,
        *command,
        timeout=300,
        check=False,
    )


def test_image_runs_as_forgeline_with_build_tools(image: str) -> None:
    config = docker("image", "inspect", image, "--format", "{{.Config.User}}").stdout.strip()
    assert config == "forgeline"
    probe = docker(
        "run",
        "--rm",
        "--network",
        "host",
        image,
        "sh",
        "-c",
        "id -u; stat -c %u /data; "
        "for tool in git debootstrap setpriv forgeline; do command -v $tool; done; "
        "forgeline --help >/dev/null && echo cli-ok",
    ).stdout.split()
    assert probe[:2] == ["10001", "10001"], probe
    assert probe[-1] == "cli-ok", probe
    assert len(probe) == 7, probe  # every tool was found
    busybox = docker(
        "run", "--rm", image, "sh", "-c", "ls /bin/busybox /usr/bin/busybox 2>/dev/null"
    )
    assert "busybox" in busybox.stdout


def test_worker_entry_point_joins_the_socket_group_and_owns_the_build_dir(
    image: str, tmp_path: Path
) -> None:
    build_dir = tmp_path / "builds"  # missing: Docker creates it root-owned, as on a host
    script = (
        "id -u; test -w /var/run/docker.sock && echo socket-ok; "
        f"touch {build_dir}/probe && echo build-dir-ok"
    )
    result = run_worker(image, "sh", "-c", script, build_dir=build_dir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10001", "socket-ok", "build-dir-ok"], result.stdout
    assert build_dir.stat().st_uid == 10001


def test_images_build_tiny_inside_the_worker(image: str, tmp_path: Path) -> None:
    tag = "forgeline-test/tiny-from-worker:latest"
    docker("rmi", "-f", tag, check=False)
    try:
        result = run_worker(
            image, "forgeline", "images", "build", "tiny", "--tag", tag, build_dir=tmp_path
        )
        assert result.returncode == 0, result.stdout + result.stderr
        echoed = docker("run", "--rm", "--network", "none", tag, "sh", "-c", "echo built")
        assert echoed.stdout.strip() == "built"
    finally:
        docker("rmi", "-f", tag, check=False)
