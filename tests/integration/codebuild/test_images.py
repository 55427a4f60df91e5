"""Local build images: the tiny and standard recipes, their labels, the curated listing,
and runtime-versions checks (pure cases first, then against real images)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import botocore.session
import pytest

from forgeline.codebuild import images, runtime_versions
from forgeline.codebuild.curated_images import curated_images


def _docker_run(image: str, script: str, user: str = "0") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "--user", user, image, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _labels(image: str) -> dict[str, str]:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out) or {})


@pytest.fixture(scope="session")
def standard_image() -> str:
    """Reuses forgeline/standard:latest when present; else builds it (about a minute).
    Tests that use it are marked `docker` (tests/support/markers.py)."""
    return images.ensure_image("standard")


# --- runtime-versions (pure) ------------------------------------------------------------

AVAILABLE = {"python": ["3.11"], "php": ["8.2"], "java": ["openjdk17"], "nodejs": ["18"]}


@pytest.mark.parametrize(
    "requested",
    [
        {},
        {"python": ["3.11"]},
        {"python": ["3"]},
        {"python": ["latest"]},
        {"php": ["8"], "nodejs": ["18"]},
        {"nodejs": ["18.x"]},
        {"java": ["corretto17"]},
        {"java": ["openjdk17"]},
    ],
)
def test_runtime_versions_satisfied(requested: dict[str, list[str]]) -> None:
    assert runtime_versions.runtime_versions_error(AVAILABLE, requested) is None


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        (
            {"php": ["7"]},
            "Unknown runtime version named '7' of php. This build image has the following "
            "versions: 8.2",
        ),
        (
            {"python": ["3.1"]},  # a prefix only counts up to a dot: 3.1 is not 3.11
            "Unknown runtime version named '3.1' of python. This build image has the "
            "following versions: 3.11",
        ),
        (
            {"java": ["corretto21"]},
            "Unknown runtime version named 'corretto21' of java. This build image has the "
            "following versions: openjdk17",
        ),
        (
            {"dotnet": ["8.0"]},
            "Unknown runtime named 'dotnet'. This build image has the following runtimes: "
            "java, nodejs, php, python",
        ),
    ],
)
def test_runtime_versions_error_messages(requested: dict[str, list[str]], message: str) -> None:
    assert runtime_versions.runtime_versions_error(AVAILABLE, requested) == message


def test_an_image_without_runtimes_names_none() -> None:
    assert runtime_versions.runtime_versions_error({}, {"python": ["3.11"]}) == (
        "Unknown runtime named 'python'. This build image has the following runtimes: none"
    )


# --- host apt sources (pure) --------------------------------------------------------------


def test_host_mirror_from_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "# a comment\n"
        "URIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        "\n"
        "Types: deb-src deb\n"
        "URIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
    )
    (tmp_path / "sources.list.d" / "other.sources.disabled").write_text(
        "Types: deb\nURIs: http://wrong.example/\nSuites: bookworm\n"
    )
    assert images.host_mirror("bookworm", tmp_path) == "http://mirror.example/debian"


def test_host_mirror_from_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg arch=amd64] http://one.example/debian "
        "bookworm main contrib\n"
    )
    assert images.host_mirror("bookworm", tmp_path) == "http://one.example/debian"
    with pytest.raises(images.ImageBuildError, match="trixie"):
        images.host_mirror("trixie", tmp_path)


def test_host_suite(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('NAME="Debian GNU/Linux"\nVERSION_CODENAME=bookworm\n')
    assert images.host_suite(release) == "bookworm"
    release.write_text('NAME="Something"\n')
    with pytest.raises(images.ImageBuildError):
        images.host_suite(release)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(images.ImageBuildError, match="unknown image kind"):
        images.build_image("huge")
    with pytest.raises(images.ImageBuildError, match="standard"):
        images.build_image("tiny", runtimes=True)


# --- tiny ---------------------------------------------------------------------------------


def test_tiny_builds_quickly_with_labels_and_runs(tiny_image: str) -> None:
    ref = f"forgeline/tiny:test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    lines: list[str] = []
    try:
        assert images.build_image("tiny", tag=ref, progress=lines.append) == ref
        elapsed = time.monotonic() - started
        assert elapsed < 15, elapsed
        labels = _labels(ref)
        assert labels[images.IMAGE_LABEL] == "tiny"
        assert json.loads(labels[images.RUNTIMES_LABEL]) == {}
        assert images.image_runtimes(ref) == {}
        run = _docker_run(ref, "echo hi")
        assert (run.returncode, run.stdout) == (0, "hi\n"), run.stderr
        assert lines and lines[-1].startswith(f"built {ref}")
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True)


def test_tiny_has_a_build_user_and_usual_tools(tiny_image: str) -> None:
    run = _docker_run(
        tiny_image,
        "id codebuild-user; stat -c %a /tmp; echo $PATH; "
        "for tool in sh ls cat mkdir cp tar gzip find env sleep sed grep; do "
        "command -v $tool >/dev/null || echo missing $tool; done; /usr/bin/env true && echo ok",
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("uid=1000(codebuild-user) gid=1000(codebuild-user)")
    assert lines[1] == "1777"
    assert lines[2] == images.IMAGE_PATH
    assert lines[3:] == ["ok"]
    as_user = _docker_run(tiny_image, "id -un; echo $HOME; touch /tmp/x && echo wrote", "1000")
    assert as_user.stdout.split()[0] == "codebuild-user"
    assert as_user.stdout.split()[-1] == "wrote"


def test_ensure_image_reuses_an_existing_image(tiny_image: str) -> None:
    before = _image_id(tiny_image)
    started = time.monotonic()
    assert images.ensure_image("tiny") == tiny_image
    assert time.monotonic() - started < 1
    assert _image_id(tiny_image) == before


def _image_id(ref: str) -> str:
    return subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


# --- standard -------------------------------------------------------------------------


def test_standard_image_has_git_python_and_a_build_user(standard_image: str) -> None:
    run = _docker_run(
        standard_image,
        "set -e; cd /tmp; git init -q repo; cd repo; git -c user.email=a@b -c user.name=a "
        "commit -q --allow-empty -m first; git log --format=%s; "
        "python3 -c 'import json, ssl; print(json.dumps({\"ok\": True}))'; "
        "bash -c 'echo ${BASH_VERSINFO[0]}'; for tool in curl zip unzip; do command -v $tool; "
        "done; id -u codebuild-user",
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "first"
    assert lines[1] == '{"ok": true}'
    assert int(lines[2]) >= 5
    assert lines[3:6] == ["/usr/bin/curl", "/usr/bin/zip", "/usr/bin/unzip"]
    assert lines[6] == "1000"


def test_standard_label_says_what_is_really_installed(standard_image: str) -> None:
    labels = _labels(standard_image)
    assert labels[images.IMAGE_LABEL] == "standard"
    declared = images.image_runtimes(standard_image)
    assert declared == images.probe_runtimes(standard_image)
    assert list(declared) == ["python"] or "python" in declared
    assert declared["python"][0].startswith("3.")


def test_check_runtime_versions_against_images(standard_image: str, tiny_image: str) -> None:
    python = images.image_runtimes(standard_image)["python"][0]
    assert runtime_versions.check_runtime_versions(standard_image, {"python": ["3"]}) is None
    assert runtime_versions.check_runtime_versions(standard_image, {"python": [python]}) is None
    assert runtime_versions.check_runtime_versions(standard_image, {"python": ["2.7"]}) == (
        "Unknown runtime version named '2.7' of python. This build image has the following "
        f"versions: {python}"
    )
    assert runtime_versions.check_runtime_versions(tiny_image, {"python": ["3"]}) == (
        "Unknown runtime named 'python'. This build image has the following runtimes: none"
    )
    assert runtime_versions.check_runtime_versions(tiny_image, {}) is None
    # Images Forgeline did not make are their owner's business, as on CodeBuild.
    assert (
        runtime_versions.check_runtime_versions("forgeline/no-such-image:1", {"python": ["3"]})
        is None
    )


# --- listing --------------------------------------------------------------------------


def test_curated_images_match_the_codebuild_model(tiny_image: str, standard_image: str) -> None:
    platforms = curated_images()
    model = botocore.session.get_session().get_service_model("codebuild")
    output = model.operation_model("ListCuratedEnvironmentImages").output_shape
    platform_shape = output.members["platforms"].member
    language_enum = platform_shape.members["languages"].member.members["language"].enum
    by_platform = {p["platform"]: p for p in platforms}
    assert set(by_platform) <= set(platform_shape.members["platform"].enum)
    # Forgeline's own images are Debian; with the standard image here, AWS's curated names
    # that run on it are listed under AWS's platforms too.
    assert set(by_platform) == {"DEBIAN", "UBUNTU", "AMAZON_LINUX"}
    ubuntu = {i["name"] for lang in by_platform["UBUNTU"]["languages"] for i in lang["images"]}
    assert "aws/codebuild/standard:7.0" in ubuntu
    by_language = {
        entry["language"]: entry["images"] for entry in by_platform["DEBIAN"]["languages"]
    }
    assert set(by_language) <= set(language_enum)
    base_names = {image["name"] for image in by_language["BASE"]}
    assert {tiny_image, standard_image} <= base_names
    assert standard_image in {image["name"] for image in by_language["PYTHON"]}
    assert tiny_image not in {image["name"] for image in by_language.get("PYTHON", [])}
    for image in by_language["BASE"]:
        assert set(image) == {"name", "description", "versions"}
        assert image["description"]
        assert image["versions"] and all(isinstance(v, str) for v in image["versions"])


def test_cli_lists_and_builds_images(tiny_image: str) -> None:
    cli = [sys.executable, "-m", "forgeline.cli", "images"]
    listed = subprocess.run([*cli, "list"], capture_output=True, text=True, check=True)
    entries = {entry["image"]: entry for entry in json.loads(listed.stdout)}
    assert entries[tiny_image]["kind"] == "tiny"
    ref = f"forgeline/tiny:cli-{uuid.uuid4().hex[:8]}"
    try:
        built = subprocess.run(
            [*cli, "build", "tiny", "--tag", ref], capture_output=True, text=True
        )
        assert built.returncode == 0, built.stderr
        assert built.stdout.splitlines()[-1] == ref
        assert _labels(ref)[images.IMAGE_LABEL] == "tiny"
    finally:
        subprocess.run(["docker", "rmi", ref], capture_output=True)
    refused = subprocess.run([*cli, "build", "tiny", "--runtimes"], capture_output=True, text=True)
    assert refused.returncode != 0
    assert "standard" in refused.stderr


@pytest.mark.docker
def test_runtimes_image_when_built() -> None:
    """`images build standard --runtimes` takes minutes: checked when the image exists."""
    if not images._image_exists(images.RUNTIMES_TAG):
        pytest.skip(f"{images.RUNTIMES_TAG} not built (forgeline images build --runtimes)")
    declared = images.image_runtimes(images.RUNTIMES_TAG)
    assert declared == images.probe_runtimes(images.RUNTIMES_TAG)
    assert {"java", "python", "nodejs", "ruby", "golang", "php"} <= set(declared)
    assert (
        runtime_versions.check_runtime_versions(images.RUNTIMES_TAG, {"java": ["corretto17"]})
        is None
    )
    run = _docker_run(images.RUNTIMES_TAG, "go version && node -e 'console.log(1+1)'")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "2"


def test_without_an_engine_images_are_none_and_nothing_is_checked(tmp_path: Path) -> None:
    """ListCuratedEnvironmentImages must answer (empty), not fail, when Docker is down."""
    script = (
        "import json; from forgeline.codebuild import images, runtime_versions; "
        "from forgeline.codebuild.curated_images import curated_images; "
        "print(json.dumps([curated_images(), images.image_runtimes('forgeline/tiny'), "
        "runtime_versions.check_runtime_versions('forgeline/tiny', {'python': ['3']})]))"
    )
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [[], {}, None]


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("forgeline/tiny", ("forgeline/tiny", "latest")),
        ("forgeline/tiny:test", ("forgeline/tiny", "test")),
        ("localhost:5000/team/img", ("localhost:5000/team/img", "latest")),
        ("localhost:5000/team/img:1.0", ("localhost:5000/team/img", "1.0")),
    ],
)
def test_image_references_split_into_repository_and_tag(
    ref: str, expected: tuple[str, str]
) -> None:
    assert images._split_ref(ref) == expected


def test_static_elf_detection(tmp_path: Path) -> None:
    assert not images._is_static_elf(Path(sys.executable).resolve())  # dynamically linked
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert not images._is_static_elf(script)
