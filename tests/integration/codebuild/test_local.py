"""`forgeline build-local`: the CLI as a subprocess, real builds in Docker (the tiny image)
and as host processes, with no server running."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import zipfile
from pathlib import Path

import pytest

from forgeline.codebuild import images
from forgeline.codebuild.build_log import BuildLog
from forgeline.codebuild.local import LocalBuildUsageError, default_cache_dir, parse_env_file
from forgeline.codebuild.runners.docker_runner import DockerRunner
from forgeline.core.settings import Settings
from tests.support.paths import REPO_ROOT
from tests.support.server import FORGELINE


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Where the default cache directory goes (XDG_CACHE_HOME), away from the real one;
    its `tmp` subdirectory is the command's TMPDIR (where the throwaway state goes)."""
    path = tmp_path / "xdg-cache"
    (path / "tmp").mkdir(parents=True)
    return path


def command_env(home: Path) -> dict[str, str]:
    return {**os.environ, "XDG_CACHE_HOME": str(home), "TMPDIR": str(home / "tmp")}


def leftovers(home: Path) -> list[str]:
    """What the command left in its TMPDIR (its throwaway state must be gone)."""
    return sorted(path.name for path in (home / "tmp").iterdir())


def build_local(
    home: Path, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    env = {**command_env(home), **(extra_env or {})}
    return subprocess.run(
        [*FORGELINE, "build-local", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def source_tree(tmp_path: Path, buildspec: str, files: dict[str, str] | None = None) -> Path:
    source = tmp_path / "source"
    source.mkdir()
    (source / "buildspec.yml").write_text(buildspec)
    for name, text in (files or {}).items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return source


def snapshot(tree: Path) -> dict[str, tuple[int, str]]:
    """Every path under `tree` with its mode and content digest (links: their target)."""
    found: dict[str, tuple[int, str]] = {}
    for path in sorted(tree.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            digest = os.readlink(path)
        elif path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest = "dir"
        found[str(path.relative_to(tree))] = (info.st_mode, digest)
    return found


def summary_of(output: str) -> str:
    return output[output.index("Build summary") :]


SUCCESS_BUILDSPEC = """\
version: 0.2
env:
  variables:
    TARGET: release
  exported-variables:
    - BUILT_FOR
phases:
  build:
    commands:
      - echo "building for $TARGET"
      - export BUILT_FOR="$TARGET-$(cat version.txt)"
      - mkdir -p out/bin && echo "binary $BUILT_FOR" > out/bin/app && echo notes > out/NOTES
artifacts:
  files:
    - '**/*'
  base-directory: out
"""


# ---------------------------------------------------------------- success and artifacts


def test_success_writes_the_zip_artifact_and_shows_phases(
    tmp_path: Path, home: Path, tiny_image: str
) -> None:
    source = source_tree(tmp_path, SUCCESS_BUILDSPEC, {"version.txt": "1.2"})
    artifacts = tmp_path / "artifacts"
    result = build_local(
        home, "--source", str(source), "--image", tiny_image, "--artifacts", str(artifacts)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Runner: docker" in out
    assert f"Image: {tiny_image}" in out
    # Live lines in the engine's format, in order, and the build's own output among them.
    entering = out.index("Entering phase BUILD")
    assert entering < out.index("building for release") < out.index("Phase complete: BUILD")
    summary = summary_of(out)
    for phase in ("PROVISIONING", "DOWNLOAD_SOURCE", "BUILD", "UPLOAD_ARTIFACTS", "FINALIZING"):
        assert f"  {phase:<18} SUCCEEDED" in summary
    assert "Build status: SUCCEEDED" in summary
    assert "BUILT_FOR=release-1.2" in summary
    with zipfile.ZipFile(artifacts / "artifacts.zip") as bundle:
        assert sorted(bundle.namelist()) == ["NOTES", "bin/app"]
        assert bundle.read("bin/app") == b"binary release-1.2\n"
    assert str(artifacts / "artifacts.zip") in summary
    assert leftovers(home) == []


def test_none_packaging_writes_files_and_secondary_artifacts(
    tmp_path: Path, home: Path, tiny_image: str
) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - mkdir -p out/sub docs && echo main > out/sub/a.txt && echo doc > docs/guide.md
      - echo 'echo run' > out/run.sh && chmod 755 out/run.sh
artifacts:
  files:
    - '**/*'
  base-directory: out
  secondary-artifacts:
    manual:
      files:
        - docs/guide.md
      discard-paths: yes
"""
    source = source_tree(tmp_path, buildspec)
    artifacts = tmp_path / "artifacts"
    result = build_local(
        home,
        "-s",
        str(source),
        "-i",
        tiny_image,
        "-a",
        str(artifacts),
        "--packaging",
        "none",
        "--no-cache",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (artifacts / "sub" / "a.txt").read_text() == "main\n"
    assert (artifacts / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (artifacts / "manual" / "guide.md").read_text() == "doc\n"
    assert f"{artifacts / 'manual'} (1 file)" in result.stdout
    assert "Cache: not used (--no-cache)" in result.stdout


def test_host_runner_runs_the_same_build(tmp_path: Path, home: Path) -> None:
    source = source_tree(tmp_path, SUCCESS_BUILDSPEC, {"version.txt": "9"})
    artifacts = tmp_path / "artifacts"
    result = build_local(
        home, "--source", str(source), "--runner", "host", "--artifacts", str(artifacts)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Runner: host" in result.stdout
    assert "Image: (none: host runner)" in result.stdout
    assert "BUILT_FOR=release-9" in summary_of(result.stdout)
    with zipfile.ZipFile(artifacts / "artifacts.zip") as bundle:
        assert bundle.read("bin/app") == b"binary release-9\n"


@pytest.mark.docker
def test_defaults_pick_docker_and_the_best_local_image(tmp_path: Path, home: Path) -> None:
    present = {entry["image"] for entry in images.list_images()}
    standard = images.DEFAULT_TAGS["standard"]
    expected = standard if standard in present else images.ensure_image("tiny")
    source = source_tree(
        tmp_path, "version: 0.2\nphases:\n  build:\n    commands:\n      - echo defaults\n"
    )
    result = build_local(home, "-s", str(source), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Runner: docker (auto: Docker engine" in result.stdout
    assert f"Image: {expected}" in result.stdout
    assert f"Running on docker runner, image {expected}" in result.stdout


def test_secondary_sources_are_copied_next_to_the_primary(tmp_path: Path, home: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - cat "$CODEBUILD_SRC_DIR_shared/data.txt"
      - echo "extra" > "$CODEBUILD_SRC_DIR_shared/data.txt"
"""
    source = source_tree(tmp_path, buildspec)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data.txt").write_text("shared data\n")
    result = build_local(
        home,
        "-s",
        str(source),
        "--secondary-source",
        f"shared:{shared}",
        "--runner",
        "host",
        "--no-cache",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shared data" in result.stdout
    assert (shared / "data.txt").read_text() == "shared data\n"
    bad = build_local(home, "-s", str(source), "--secondary-source", "no-dashes:" + str(shared))
    assert bad.returncode == 2
    assert "letters, digits and underscores" in bad.stderr


# ---------------------------------------------------------------- failures and usage errors


def test_failing_build_exits_1_with_the_phase_context(
    tmp_path: Path, home: Path, tiny_image: str
) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - echo "before the failure"
      - exit 3
  post_build:
    commands:
      - echo "post build runs after a failed build"
"""
    source = source_tree(tmp_path, buildspec)
    result = build_local(home, "-s", str(source), "-i", tiny_image, "--no-cache")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "before the failure" in out
    assert "Phase complete: BUILD State: FAILED" in out
    assert "Phase context status code: COMMAND_EXECUTION_ERROR" in out
    summary = summary_of(out)
    assert f"  {'BUILD':<18} FAILED" in summary
    assert "COMMAND_EXECUTION_ERROR: Error while executing command: exit 3." in summary
    assert "Build status: FAILED" in summary


def test_buildspec_error_fails_download_source(tmp_path: Path, home: Path) -> None:
    source = source_tree(tmp_path, "version: 0.2\nphases: [unclosed\n")
    result = build_local(home, "-s", str(source), "--runner", "host", "--no-cache")
    assert result.returncode == 1, result.stdout + result.stderr
    summary = summary_of(result.stdout)
    assert f"  {'DOWNLOAD_SOURCE':<18} FAILED" in summary
    assert "YAML_FILE_ERROR" in summary


def test_buildspec_option_overrides_the_source_buildspec(tmp_path: Path, home: Path) -> None:
    source = source_tree(
        tmp_path, "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 1\n"
    )
    override = tmp_path / "other.yml"
    override.write_text("version: 0.2\nphases:\n  build:\n    commands:\n      - echo overridden\n")
    result = build_local(
        home, "-s", str(source), "-b", str(override), "--runner", "host", "--no-cache"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "overridden" in result.stdout


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("no-buildspec", [], "no buildspec.yml in"),
        ("bad-env", ["--env-file", "{env}"], "line 2: expected NAME=VALUE"),
        ("ok", ["--buildspec", "{missing}"], "does not exist"),
        ("ok", ["--compute-type", "BUILD_GENERAL1_HUGE"], "InvalidInputException"),
        ("ok", ["--runner", "kubernetes"], "Invalid value for '--runner'"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path, home: Path, setup: str, args: list[str], message: str
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    if setup != "no-buildspec":
        (source / "buildspec.yml").write_text(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n"
        )
    env_file = tmp_path / "vars.env"
    env_file.write_text("GOOD=1\nthis is not an assignment\n")
    args = [
        arg.replace("{env}", str(env_file)).replace("{missing}", str(tmp_path / "none.yml"))
        for arg in args
    ]
    result = build_local(home, "-s", str(source), "--runner", "host", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Build summary" not in result.stdout


# ---------------------------------------------------------------- environment and source


def test_env_file_values_reach_the_build(tmp_path: Path, home: Path, tiny_image: str) -> None:
    buildspec = """\
version: 0.2
env:
  variables:
    FROM_BUILDSPEC: buildspec
phases:
  build:
    commands:
      - echo "greeting=[$GREETING] quoted=[$QUOTED] single=[$SINGLE] exported=[$EXPORTED]"
      - echo "buildspec=[$FROM_BUILDSPEC] later=[$REPEATED]"
"""
    source = source_tree(tmp_path, buildspec)
    env_file = tmp_path / "local.env"
    env_file.write_text(
        "# settings for a local run\n"
        "\n"
        "GREETING=hello world\n"
        'QUOTED="with  spaces = and equals"\n'
        "SINGLE='single quoted'\n"
        "export EXPORTED=yes\n"
        "FROM_BUILDSPEC=env-file\n"
        "REPEATED=first\n"
        "REPEATED=second\n"
    )
    result = build_local(
        home, "-s", str(source), "-i", tiny_image, "-e", str(env_file), "--no-cache"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "greeting=[hello world] quoted=[with  spaces = and equals] single=[single quoted] "
        "exported=[yes]"
    ) in result.stdout
    # As on AWS, StartBuild's environment variables override the buildspec's.
    assert "buildspec=[env-file] later=[second]" in result.stdout


def test_source_directory_is_not_changed_by_the_build(
    tmp_path: Path, home: Path, tiny_image: str
) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - echo changed > existing.txt
      - rm -f doomed.txt
      - mkdir -p new/dir && echo new > new/dir/file.txt
      - chmod 600 script.sh
      - cat existing.txt
"""
    source = source_tree(
        tmp_path, buildspec, {"existing.txt": "original\n", "doomed.txt": "x", "script.sh": "#!"}
    )
    (source / "script.sh").chmod(0o755)
    (source / "link").symlink_to("existing.txt")
    before = snapshot(source)
    result = build_local(home, "-s", str(source), "-i", tiny_image, "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "changed" in result.stdout  # the build did change its own copy
    assert snapshot(source) == before


# ---------------------------------------------------------------- cache and reports


def test_cache_persists_between_runs_in_the_default_cache_dir(
    tmp_path: Path, home: Path, tiny_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    buildspec = """\
version: 0.2
phases:
  install:
    commands:
      - 'if [ -f deps/stamp ]; then echo "deps from cache: $(cat deps/stamp)"; fi'
  build:
    commands:
      - mkdir -p deps && [ -f deps/stamp ] || echo "run-$RUN" > deps/stamp
cache:
  paths:
    - deps/**/*
"""
    source = source_tree(tmp_path, buildspec)
    env_file = tmp_path / "run.env"
    env_file.write_text("RUN=1\n")
    first = build_local(home, "-s", str(source), "-i", tiny_image, "-e", str(env_file))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Cache miss: nothing cached yet" in first.stdout
    assert "Cache: nothing cached yet, saved for the next run" in first.stdout
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    kept = default_cache_dir(source)
    assert kept.parent == home / "forgeline" / "build-local"
    assert (kept / "data" / "manifest").is_file()

    env_file.write_text("RUN=2\n")
    second = build_local(home, "-s", str(source), "-i", tiny_image, "-e", str(env_file))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Cache restored:" in second.stdout
    assert "deps from cache: run-1" in second.stdout
    assert "Cache: restored from the previous run" in summary_of(second.stdout)
    assert not (source / "deps").exists()


def test_explicit_cache_dir_and_no_cache(tmp_path: Path, home: Path) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - mkdir -p deps && echo kept > deps/file
cache:
  paths:
    - deps/**/*
"""
    source = source_tree(tmp_path, buildspec)
    cache_dir = tmp_path / "my-cache"
    first = build_local(home, "-s", str(source), "--runner", "host", "--cache-dir", str(cache_dir))
    assert first.returncode == 0, first.stdout + first.stderr
    assert (cache_dir / "data" / "manifest").is_file()
    unused = build_local(home, "-s", str(source), "--runner", "host", "--no-cache")
    assert unused.returncode == 0, unused.stdout + unused.stderr
    assert "Cache restored" not in unused.stdout
    assert not (home / "forgeline").exists()
    again = build_local(home, "-s", str(source), "--runner", "host", "--cache-dir", str(cache_dir))
    assert "Cache restored: 1 paths" in again.stdout


def test_junit_report_is_summarised(tmp_path: Path, home: Path, tiny_image: str) -> None:
    junit = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="unit" tests="4" failures="1" errors="1">
    <testcase classname="calc" name="adds" time="0.01"/>
    <testcase classname="calc" name="subtracts" time="0.01"/>
    <testcase classname="calc" name="divides"><failure message="off by one">trace</failure></testcase>
    <testcase classname="calc" name="parses"><error message="boom">trace</error></testcase>
  </testsuite>
</testsuites>
"""
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - mkdir -p results && cp fixtures/junit.xml results/junit.xml
reports:
  unit-tests:
    files:
      - results/junit.xml
    file-format: JUNITXML
"""
    source = source_tree(tmp_path, buildspec, {"fixtures/junit.xml": junit})
    reports = tmp_path / "reports"
    result = build_local(
        home, "-s", str(source), "-i", tiny_image, "--no-cache", "--reports", str(reports)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = summary_of(result.stdout)
    assert "Reports:" in summary
    assert "source-unit-tests: FAILED total 4 passed 2 failed 2" in summary
    assert (reports / "unit-tests" / "results" / "junit.xml").read_text() == junit


# ---------------------------------------------------------------- isolation and stopping


def test_configured_server_state_is_left_alone(tmp_path: Path, home: Path) -> None:
    """FORGELINE_* settings of a server (database, broker, blob store) are not used."""
    source = source_tree(
        tmp_path, "version: 0.2\nphases:\n  build:\n    commands:\n      - echo isolated\n"
    )
    data_dir = tmp_path / "server-data"
    result = build_local(
        home,
        "-s",
        str(source),
        "--runner",
        "host",
        "--no-cache",
        extra_env={
            "FORGELINE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/nothing",
            "FORGELINE_BROKER_URL": "redis://127.0.0.1:1/0",
            "FORGELINE_BLOB_STORE": "s3",
            "FORGELINE_DATA_DIR": str(data_dir),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "isolated" in result.stdout
    assert not data_dir.exists()


def test_interrupt_stops_the_build_and_keeps_the_cache(
    tmp_path: Path, home: Path, tiny_image: str
) -> None:
    buildspec = """\
version: 0.2
phases:
  build:
    commands:
      - mkdir -p deps && echo "saved by run $RUN" > deps/file
      - echo started
      - if [ "$RUN" = 2 ]; then sleep 60; fi
cache:
  paths:
    - deps/**/*
"""
    source = source_tree(tmp_path, buildspec)
    cache_dir = tmp_path / "cache"
    env_file = tmp_path / "run.env"
    env_file.write_text("RUN=1\n")
    args = ["build-local", "-s", str(source), "-i", tiny_image, "--cache-dir", str(cache_dir)]
    first = build_local(home, *args[1:], "-e", str(env_file))
    assert first.returncode == 0, first.stdout + first.stderr
    manifest = (cache_dir / "data" / "manifest").read_text()

    env_file.write_text("RUN=2\n")
    process = subprocess.Popen(
        [*FORGELINE, *args, "-e", str(env_file)],
        cwd=REPO_ROOT,
        env=command_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.strip() == "started":
                process.send_signal(signal.SIGINT)
                break
        rest = process.stdout.read()
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert status == 1, "".join(seen) + rest
    assert any("Cache restored:" in line for line in seen)
    summary = summary_of(rest)
    assert f"  {'BUILD':<18} STOPPED" in summary
    assert "Build status: STOPPED" in summary
    build_id = summary.split("Build status: STOPPED (", 1)[1].split(",", 1)[0]
    # The engine already removed the build's container.
    assert DockerRunner(ping_timeout=2).remove_build_container(build_id) == 0
    assert leftovers(home) == []
    # The stopped build saved no cache, so the previous one is still there.
    assert (cache_dir / "data" / "manifest").read_text() == manifest
    third = build_local(home, *args[1:], "-e", str(env_file).replace("run.env", "none.env"))
    assert third.returncode == 2  # (a missing env file is a usage error)
    env_file.write_text("RUN=3\n")
    again = build_local(home, *args[1:], "-e", str(env_file))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Cache restored: 1 paths" in again.stdout


def test_sigterm_stops_a_host_build(tmp_path: Path, home: Path) -> None:
    source = source_tree(
        tmp_path,
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 120\n",
    )
    process = subprocess.Popen(
        [*FORGELINE, "build-local", "-s", str(source), "--runner", "host", "--no-cache"],
        cwd=REPO_ROOT,
        env=command_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.strip() == "started":
                process.send_signal(signal.SIGTERM)
                break
        rest = process.stdout.read()
        status = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert status == 1, rest
    assert "Stopping the build" in rest
    assert "Build status: STOPPED" in summary_of(rest)
    assert leftovers(home) == []


# ---------------------------------------------------------------- pure parts


def test_parse_env_file() -> None:
    parsed = parse_env_file("# c\n\nA=1\nexport B = two words \nC=\"q\"\nD='x=y'\nE=\nA=3\n")
    assert parsed == [
        {"name": "A", "value": "3", "type": "PLAINTEXT"},
        {"name": "B", "value": "two words", "type": "PLAINTEXT"},
        {"name": "C", "value": "q", "type": "PLAINTEXT"},
        {"name": "D", "value": "x=y", "type": "PLAINTEXT"},
        {"name": "E", "value": "", "type": "PLAINTEXT"},
    ]
    for bad in ("NOEQUALS", "=value", "1ABC=x", "A B=c", "with-dash=1"):
        with pytest.raises(LocalBuildUsageError, match="line 1"):
            parse_env_file(bad)


def test_terminal_echo_is_masked_and_line_based(tmp_path: Path) -> None:
    """What build-local prints comes through the build log's echo: whole lines, with
    secret values hidden as in the stored log, and a last line without a newline too."""
    shown: list[str] = []
    log = BuildLog(Settings(data_dir=tmp_path), None, echo=shown.append)
    log.mask(["s3cr3t"])
    log.write(b"token=s3c")
    log.write(b"r3t done\npartial")
    log.entering("BUILD")
    log.write(b"tail without newline")
    log.close()
    assert shown[0] == "token=*** done"
    assert shown[1] == "partial"
    assert shown[2].startswith("[Container] ") and shown[2].endswith(" Entering phase BUILD")
    assert shown[3] == "tail without newline"
    assert len(shown) == 4
