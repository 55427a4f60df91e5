"""Build runners against real processes and a real Docker engine (the tiny image).

Every behaviour the engine relies on is checked on both runners: streamed output, exit
statuses, working directory, environment isolation, background processes (left running
between runs, killed by cleanup even when they escaped the process group), stop() during
a long command, binary output. Docker-only: container removal, missing image, privileged.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from forgeline.codebuild import images
from forgeline.codebuild.runners import (
    BUILD_ID_LABEL,
    ENGINE_UNAVAILABLE,
    UNABLE_TO_PULL_IMAGE,
    RunInterrupted,
    RunnerError,
    RunSpec,
    choose_runner,
    describe_runner_choice,
)
from forgeline.codebuild.runners.docker_runner import DockerRunner
from forgeline.codebuild.runners.host_runner import HostRunner, kill_build_processes
from forgeline.codebuild.runners.select import reset_runner_choice
from forgeline.core.settings import Settings

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TINY = images.DEFAULT_TAGS["tiny"]


@pytest.fixture(params=["host", pytest.param("docker", marks=pytest.mark.docker)])
def runner(request: pytest.FixtureRequest) -> DockerRunner | HostRunner:
    if request.param == "host":
        return HostRunner()
    request.getfixturevalue("tiny_image")
    return DockerRunner()


class Output:
    """Collects streamed chunks with the time each arrived."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.times: list[float] = []

    def __call__(self, chunk: bytes) -> None:
        assert isinstance(chunk, bytes)
        self.chunks.append(chunk)
        self.times.append(time.monotonic())

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def text(self) -> str:
        return self.data.decode()


def _build_id() -> str:
    return f"runner-test:{uuid.uuid4()}"


@pytest.fixture
def make_session(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """prepare() a session on a fresh build directory; every session is cleaned up after."""
    sessions = []

    def make(runner: DockerRunner | HostRunner, **overrides: object):
        root = tmp_path / f"build-{len(sessions)}"
        root.mkdir()
        fields: dict[str, object] = {
            "build_id": _build_id(),
            "root": root,
            "image": TINY,
            "env": {"PATH": PATH, "GREETING": "hello there"},
        }
        fields.update(overrides)
        session = runner.prepare(RunSpec(**fields))
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.cleanup()


def _sh(
    session, script: str, *, cwd: str | None = None, user: str | None = None
) -> tuple[int, Output]:
    out = Output()
    status = session.run(
        ["sh", "-c", script], cwd=cwd or session.root_in_runner, on_output=out, user=user
    )
    return status, out


def _processes_with(text: str) -> list[int]:
    """Host pids whose command line contains TEXT (container processes are visible too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _wait_until(predicate: Callable[[], bool], seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# --- output, status, cwd, environment ---------------------------------------------------


def test_output_streams_in_order_as_it_is_written(runner, make_session) -> None:
    session = make_session(runner)
    started = time.monotonic()
    status, out = _sh(
        session,
        "echo one; echo two >&2; echo three; echo four >&2; sleep 1; echo five",
    )
    finished = time.monotonic()
    assert status == 0
    assert out.text == "one\ntwo\nthree\nfour\nfive\n"
    # The first lines arrived while the command still slept, not all at the end.
    assert out.times[0] - started < (finished - started) - 0.5


@pytest.mark.parametrize(
    ("script", "expected"),
    [("true", 0), ("exit 3", 3), ("false", 1), ("kill -9 $$", 137), ("exit 255", 255)],
)
def test_exit_status(runner, make_session, script: str, expected: int) -> None:
    session = make_session(runner)
    status, _ = _sh(session, script)
    assert status == expected


def test_missing_command_is_an_exit_status_not_an_exception(runner, make_session) -> None:
    session = make_session(runner)
    out = Output()
    status = session.run(["no-such-command-here"], cwd=session.root_in_runner, on_output=out)
    assert status in (126, 127)
    assert out.text  # says why


def test_cwd_and_shared_build_directory(runner, make_session) -> None:
    session = make_session(runner)
    root = Path(session.root_in_runner)
    spec_root = _spec_root(session, runner)
    (spec_root / "sub").mkdir()
    (spec_root / "sub" / "from-host.txt").write_text("made on the host\n")
    status, out = _sh(
        session,
        "pwd; cat from-host.txt; mkdir -p made/deeper; echo inside > made/deeper/file",
        cwd=f"{root}/sub",
    )
    assert status == 0, out.text
    assert out.text == f"{root}/sub\nmade on the host\n"
    assert (spec_root / "sub" / "made" / "deeper" / "file").read_text() == "inside\n"
    if runner.name == "docker":
        assert str(root).startswith("/codebuild/output/src")
        assert len(root.name) == len("src") + 9
    # Whatever the build wrote can be removed by the host.
    shutil.rmtree(spec_root / "sub")


def _spec_root(session, runner) -> Path:
    if runner.name == "host":
        return Path(session.root_in_runner)
    # The container's mount source is the build directory on the host.
    mounts = runner.client().api.inspect_container(session.container_id)["Mounts"]
    return Path(next(m["Source"] for m in mounts if m["Destination"] == session.root_in_runner))


def test_environment_is_exactly_the_build_environment(
    runner, make_session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGELINE_TEST_LEAK", "should-not-be-seen")
    session = make_session(runner)
    out = Output()
    status = session.run(["env"], cwd=session.root_in_runner, on_output=out)
    assert status == 0
    variables = dict(line.split("=", 1) for line in out.text.splitlines())
    assert "FORGELINE_TEST_LEAK" not in variables
    assert variables["GREETING"] == "hello there"
    assert variables["PATH"] == PATH
    if runner.name == "host":
        # Nothing of the server's environment: only the build's and the marker.
        assert set(variables) == {"PATH", "GREETING", "FORGELINE_BUILD_MARKER"}


def test_binary_output_passes_through_unchanged(runner, make_session) -> None:
    session = make_session(runner)
    payload = bytes(range(256)) * 64 + os.urandom(1024 * 1024) + b"\r\n\0\xff no newline"
    (_spec_root(session, runner) / "blob.bin").write_bytes(payload)
    out = Output()
    status = session.run(["cat", "blob.bin"], cwd=session.root_in_runner, on_output=out)
    assert status == 0
    assert out.data == payload
    assert len(out.chunks) > 1  # streamed in pieces, not one buffer


def test_run_as_user(runner, make_session) -> None:
    session = make_session(runner)
    user = "codebuild-user" if runner.name == "docker" else "nobody"
    if runner.name == "host" and os.geteuid() != 0:
        status, out = _sh(session, "id -u", user=user)
        assert status == 126
        assert "only root can switch users" in out.text
        return
    status, out = _sh(session, "id -u", user=user)
    assert status == 0, out.text
    assert out.text.strip() == ("1000" if runner.name == "docker" else "65534")
    status, out = _sh(session, "id -u", user="no-such-user-x")
    assert status == 126
    assert "no-such-user-x" in out.text


# --- background processes, stop, cleanup ---------------------------------------------


def test_background_processes_live_between_runs_and_die_at_cleanup(runner, make_session) -> None:
    session = make_session(runner)
    tag = str(1000 + int(uuid.uuid4().int % 8000))
    started = time.monotonic()
    status, out = _sh(
        session,
        f"sleep {tag}1 & echo $! > bg.pid; "
        f"setsid sleep {tag}2 & "
        f"(sh -c 'sleep {tag}3 > /dev/null 2>&1 &' &); "
        "echo started",
    )
    # The command's exit ends run(), although its children still hold the output pipe
    # (Docker waits up to 2 s for them before it ends an exec's stream).
    assert time.monotonic() - started < 4
    assert status == 0
    assert out.text == "started\n"
    assert _wait_until(lambda: len(_processes_with(f"sleep {tag}")) == 3)
    status, out = _sh(session, 'kill -0 "$(cat bg.pid)" && echo alive')
    assert (status, out.text) == (0, "alive\n")
    session.cleanup()
    assert _wait_until(lambda: not _processes_with(f"sleep {tag}")), _processes_with(f"sleep {tag}")
    session.cleanup()  # idempotent


def test_output_of_background_processes_goes_to_the_run_in_progress(runner, make_session) -> None:
    session = make_session(runner)
    status, _ = _sh(session, "(sleep 1; echo late) & echo early")
    assert status == 0
    status, out = _sh(session, "sleep 2; echo next")
    assert status == 0
    if runner.name == "host":
        assert out.text == "late\nnext\n"
    else:
        assert out.text.endswith("next\n")


def test_stop_ends_a_long_command_quickly(runner, make_session) -> None:
    session = make_session(runner)
    timer = threading.Timer(0.5, session.stop)
    timer.start()
    started = time.monotonic()
    with pytest.raises(RunInterrupted):
        session.run(["sleep", "100"], cwd=session.root_in_runner, on_output=Output())
    assert time.monotonic() - started < 5
    timer.join()
    # Once stopped, nothing more runs.
    with pytest.raises(RunInterrupted):
        session.run(["true"], cwd=session.root_in_runner, on_output=Output())


def test_stop_kills_a_command_that_ignores_sigterm(runner, make_session) -> None:
    session = make_session(runner)
    tag = str(1000 + int(uuid.uuid4().int % 8000))
    timer = threading.Timer(0.5, session.stop)
    timer.start()
    started = time.monotonic()
    with pytest.raises(RunInterrupted):
        _sh(session, f"trap '' TERM; while :; do sleep {tag}; done")
    assert time.monotonic() - started < 5
    timer.join()
    assert _wait_until(lambda: not _processes_with(f"sleep {tag}"))


def test_stop_before_run(runner, make_session) -> None:
    session = make_session(runner)
    session.stop()
    with pytest.raises(RunInterrupted):
        session.run(["true"], cwd=session.root_in_runner, on_output=Output())


def test_lost_build_leftovers_are_removed(runner, make_session) -> None:
    """A worker that died mid-build never called cleanup(): the engine asks the runner."""
    session = make_session(runner)
    tag = str(1000 + int(uuid.uuid4().int % 8000))
    status, _ = _sh(session, f"setsid sleep {tag}7 > /dev/null 2>&1 &")
    assert status == 0
    assert _wait_until(lambda: bool(_processes_with(f"sleep {tag}7")))
    build_id = _session_build_id(session, runner)
    assert runner.remove_build_container(build_id) >= 1
    assert _wait_until(lambda: not _processes_with(f"sleep {tag}7"))


def _session_build_id(session, runner) -> str:
    if runner.name == "docker":
        labels = runner.client().api.inspect_container(session.container_id)["Config"]["Labels"]
        return str(labels[BUILD_ID_LABEL])
    return str(session._build_id)


def test_kill_build_processes_leaves_other_builds_alone(tmp_path: Path) -> None:
    runner = HostRunner()
    mine, theirs = _build_id(), _build_id()
    tag = str(1000 + int(uuid.uuid4().int % 8000))
    sessions = []
    for build_id, suffix in ((mine, "1"), (theirs, "2")):
        root = tmp_path / suffix
        root.mkdir()
        session = runner.prepare(RunSpec(build_id, root, None, {"PATH": PATH}))
        sessions.append(session)
        session.run(
            ["sh", "-c", f"setsid sleep {tag}{suffix} > /dev/null 2>&1 &"],
            cwd=str(root),
            on_output=Output(),
        )
    try:
        assert _wait_until(lambda: len(_processes_with(f"sleep {tag}")) == 2)
        assert kill_build_processes(mine) == 1
        assert _wait_until(lambda: not _processes_with(f"sleep {tag}1"))
        assert _processes_with(f"sleep {tag}2")
    finally:
        for session in sessions:
            session.cleanup()
    assert _wait_until(lambda: not _processes_with(f"sleep {tag}"))


# --- Docker only ------------------------------------------------------------------------


def _containers_of(build_id: str) -> str:
    return subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"label={BUILD_ID_LABEL}={build_id}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_container_is_labelled_and_removed_by_cleanup(tiny_image: str, tmp_path: Path) -> None:
    runner = DockerRunner()
    build_id = _build_id()
    session = runner.prepare(RunSpec(build_id, tmp_path, tiny_image, {"PATH": PATH}))
    try:
        assert _containers_of(build_id)
        assert session.run(["true"], cwd=session.root_in_runner, on_output=Output()) == 0
    finally:
        session.cleanup()
    assert _containers_of(build_id) == ""
    session.cleanup()
    session.stop()  # harmless after cleanup


def test_missing_image_fails_fast_with_pull_error(tiny_image: str, tmp_path: Path) -> None:
    runner = DockerRunner()
    build_id = _build_id()
    started = time.monotonic()
    with pytest.raises(RunnerError) as caught:
        runner.prepare(RunSpec(build_id, tmp_path, "forgeline/no-such-image:1", {}))
    assert time.monotonic() - started < 2
    assert caught.value.code == UNABLE_TO_PULL_IMAGE
    assert "forgeline/no-such-image:1" in caught.value.message
    assert _containers_of(build_id) == ""


def test_unsupported_network_mode_is_a_client_error(tiny_image: str, tmp_path: Path) -> None:
    with pytest.raises(RunnerError) as caught:
        DockerRunner().prepare(RunSpec(_build_id(), tmp_path, tiny_image, {}, network="bridge"))
    assert caught.value.code == "CLIENT_ERROR"


def _effective_capabilities(session) -> int:
    status, out = _sh(session, "grep CapEff /proc/self/status")
    assert status == 0
    return int(out.text.split()[1], 16)


def test_privileged_flag(tiny_image: str, make_session) -> None:
    runner = DockerRunner()
    plain = make_session(runner)
    status, _ = _sh(plain, "test -S /var/run/docker.sock")
    assert status != 0  # no way to the host's Docker daemon
    privileged = make_session(runner, privileged=True)
    status, _ = _sh(privileged, "test -S /var/run/docker.sock")
    assert status != 0  # privileged is not the host's daemon: that takes the operator's opt-in
    handed = make_session(runner, privileged=True, host_docker_socket=True)
    status, out = _sh(handed, "test -S /var/run/docker.sock && echo socket")
    assert (status, out.text) == (0, "socket\n")
    assert _effective_capabilities(privileged) > _effective_capabilities(plain)
    info = runner.client().api.inspect_container(privileged.container_id)["HostConfig"]
    # Where the engine itself lacks capabilities, --privileged cannot start: the runner
    # then grants every capability the engine has.
    assert info["Privileged"] is True or info["CapAdd"] == ["ALL"]
    plain_info = runner.client().api.inspect_container(plain.container_id)["HostConfig"]
    assert plain_info["Privileged"] is False and not plain_info["CapAdd"]


def test_limits_network_and_mounts_reach_the_container(
    tiny_image: str, make_session, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "note").write_text("read me\n")
    runner = DockerRunner()
    session = make_session(
        runner,
        cpus=0.5,
        memory_bytes=256 * 1024 * 1024,
        network="none",
        extra_mounts=[(shared, "/codebuild/readonly/shared", True)],
    )
    host_config = runner.client().api.inspect_container(session.container_id)["HostConfig"]
    assert host_config["NanoCpus"] == 500_000_000
    assert host_config["Memory"] == 256 * 1024 * 1024
    assert host_config["NetworkMode"] == "none"
    assert session.mount_paths == {"/codebuild/readonly/shared": "/codebuild/readonly/shared"}
    status, out = _sh(session, "cat /codebuild/readonly/shared/note")
    assert (status, out.text) == (0, "read me\n")
    status, _ = _sh(session, "touch /codebuild/readonly/shared/x")
    assert status != 0  # read-only
    status, out = _sh(session, "ls /sys/class/net")
    assert out.text.split() == ["lo"]


def test_remove_orphans_keeps_live_builds(tiny_image: str, make_session) -> None:
    runner = DockerRunner()
    prefix = f"orphan-test-{uuid.uuid4()}:"
    alive = make_session(runner, build_id=prefix + "alive")
    lost = make_session(runner, build_id=prefix + "lost")
    assert lost.container_id != alive.container_id
    removed = runner.remove_orphans({prefix + "alive"}, build_id_prefix=prefix)
    assert removed == 1
    assert _containers_of(prefix + "lost") == ""
    assert _containers_of(prefix + "alive")


def test_prepare_and_first_run_is_close_to_a_bare_docker_run(
    tiny_image: str, tmp_path: Path
) -> None:
    """prepare() + the first command costs at most 2x `docker run --rm <image> true`."""
    runner = DockerRunner()
    runner.client().ping()  # the client's first connection is not part of a build

    def bare() -> float:
        started = time.monotonic()
        subprocess.run(["docker", "run", "--rm", tiny_image, "true"], check=True)
        return time.monotonic() - started

    def ours() -> float:
        started = time.monotonic()
        session = runner.prepare(RunSpec(_build_id(), tmp_path, tiny_image, {"PATH": PATH}))
        try:
            assert session.run(["true"], cwd=session.root_in_runner, on_output=Output()) == 0
            return time.monotonic() - started
        finally:
            session.cleanup()

    bare_times, our_times = [], []
    for _ in range(10):
        bare_times.append(bare())
        our_times.append(ours())
    bare_median, our_median = statistics.median(bare_times), statistics.median(our_times)
    print(f"docker run --rm: {bare_median:.3f} s, prepare+first run: {our_median:.3f} s")
    assert our_median <= 2 * bare_median


def test_host_runner_starts_in_milliseconds(tmp_path: Path) -> None:
    runner = HostRunner()
    times = []
    for _ in range(10):
        started = time.monotonic()
        session = runner.prepare(RunSpec(_build_id(), tmp_path, None, {"PATH": PATH}))
        try:
            assert session.run(["true"], cwd=str(tmp_path), on_output=Output()) == 0
            times.append(time.monotonic() - started)
        finally:
            session.cleanup()
    assert statistics.median(times) < 0.05


def test_host_runner_needs_the_build_directory(tmp_path: Path) -> None:
    with pytest.raises(RunnerError):
        HostRunner().prepare(RunSpec(_build_id(), tmp_path / "missing", None, {}))


# --- choosing ---------------------------------------------------------------------------


def test_choose_runner_follows_the_setting(tmp_path: Path) -> None:
    reset_runner_choice()
    try:
        assert choose_runner(Settings(data_dir=tmp_path, build_runner="host")).name == "host"
        assert choose_runner(Settings(data_dir=tmp_path, build_runner="docker")).name == "docker"
        automatic = Settings(data_dir=tmp_path, build_runner="auto")
        # `auto` never means the host: without an engine, container builds are refused.
        assert choose_runner(automatic).name == "docker"
        line = describe_runner_choice(automatic)
        assert line.startswith("build runner: docker (auto")
        assert choose_runner(automatic) is choose_runner(automatic)
    finally:
        reset_runner_choice()


@pytest.mark.parametrize("setting", ["auto", "docker"])
def test_without_an_engine_container_builds_are_refused_as_a_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    # A real unreachable engine: nothing listens on this socket path.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    reset_runner_choice()
    try:
        chosen = choose_runner(Settings(data_dir=tmp_path, build_runner=setting))
        assert chosen.name == "docker"
        line = describe_runner_choice(Settings(data_dir=tmp_path, build_runner=setting))
        assert "no Docker engine answers" in line and "FORGELINE_BUILD_RUNNER=host" in line
        assert not DockerRunner().available()
        (tmp_path / "root").mkdir()
        spec = RunSpec(
            build_id="p:no-engine", root=tmp_path / "root", image="forgeline/tiny", env={}
        )
        with pytest.raises(RunnerError) as refused:
            chosen.prepare(spec)
        assert refused.value.fault and refused.value.code == ENGINE_UNAVAILABLE
        assert "Start Docker" in refused.value.message
        assert "FORGELINE_BUILD_RUNNER=host" in refused.value.message
        # Nothing to clean up on an engine that is not there: no error either.
        assert chosen.remove_build_container("p:no-engine") == 0
    finally:
        reset_runner_choice()


def test_the_host_runner_is_announced_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reset_runner_choice()
    try:
        with caplog.at_level("INFO", logger="forgeline.build.runners"):
            describe_runner_choice(Settings(data_dir=tmp_path, build_runner="host"))
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warned) == 1 and "without isolation" in warned[0]
    finally:
        reset_runner_choice()
