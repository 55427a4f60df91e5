"""Network namespaces prepared ahead of isolated builds (runners/netns_pool.py), on a real
Docker engine with the tiny image.

Each build must join a namespace of its own (never one another build used), have the way
in to the server already listening there, and leave nothing behind: its holder goes with
it, a closed pool removes what it had ready, and holders of dead workers are swept.
"""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from forgeline.codebuild.runners import RunSpec
from forgeline.codebuild.runners.docker_runner import DockerRunner
from forgeline.codebuild.runners.netns_pool import DEFAULT_POOL_SIZE, HOLDER_LABEL

pytestmark = [pytest.mark.no_db, pytest.mark.docker]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _wait_until(predicate: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _container_exists(container_id: str) -> bool:
    shown = subprocess.run(
        ["docker", "ps", "-a", "-q", "--no-trunc", "--filter", f"id={container_id}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return container_id in shown.stdout


def _sh(session, script: str) -> tuple[int, str]:
    chunks: list[bytes] = []
    status = session.run(["sh", "-c", script], cwd=session.root_in_runner, on_output=chunks.append)
    return status, b"".join(chunks).decode()


@pytest.fixture
def runner(tiny_image: str) -> Iterator[DockerRunner]:
    made = DockerRunner()
    yield made
    made.close()


@pytest.fixture
def make_session(runner: DockerRunner, tmp_path: Path, tiny_image: str) -> Iterator[Callable]:
    sessions = []

    def make(**overrides: object):
        root = tmp_path / f"build-{len(sessions)}"
        root.mkdir()
        fields: dict[str, object] = {
            "build_id": f"netns-pool-test:{uuid.uuid4()}",
            "root": root,
            "image": tiny_image,
            "env": {"PATH": PATH},
        }
        fields.update(overrides)
        session = runner.prepare(RunSpec(**fields))
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.cleanup()


def _network_mode(runner: DockerRunner, session) -> str:
    return str(
        runner.client().api.inspect_container(session.container_id)["HostConfig"]["NetworkMode"]
    )


def test_isolated_builds_join_prepared_namespaces_one_each(runner, make_session) -> None:
    first = make_session()  # nothing prepared yet: the namespace is made for this build
    assert _network_mode(runner, first) == "none"
    assert _wait_until(lambda: len(runner.namespaces.ready()) >= DEFAULT_POOL_SIZE)
    prepared = set(runner.namespaces.ready())

    second, third = make_session(), make_session()
    modes = {_network_mode(runner, second), _network_mode(runner, third)}
    assert modes == {f"container:{holder}" for holder in prepared}
    namespaces = set()
    for session in (first, second, third):
        status, out = _sh(session, "readlink /proc/self/ns/net; ls /sys/class/net")
        assert status == 0
        link, *interfaces = out.split()
        assert interfaces == ["lo"]
        namespaces.add(link)
    # Three builds, three namespaces, none of them the host's.
    assert len(namespaces) == 3
    assert os.readlink("/proc/self/ns/net") not in namespaces


def test_a_build_leaves_with_its_holder_and_a_closed_pool_leaves_nothing(
    runner, make_session
) -> None:
    make_session()
    assert _wait_until(lambda: len(runner.namespaces.ready()) >= DEFAULT_POOL_SIZE)
    session = make_session()
    holder = _network_mode(runner, session).removeprefix("container:")
    assert _container_exists(holder)
    session.cleanup()
    assert not _container_exists(holder)
    # The shelf is filled again once the build is over.
    assert _wait_until(lambda: len(runner.namespaces.ready()) >= DEFAULT_POOL_SIZE)
    ready = runner.namespaces.ready()
    runner.close()
    assert not any(_container_exists(container) for container in ready)
    assert runner.namespaces.ready() == []


def test_a_holder_gone_meanwhile_means_a_namespace_made_for_the_build(runner, make_session) -> None:
    make_session()
    assert _wait_until(lambda: len(runner.namespaces.ready()) >= DEFAULT_POOL_SIZE)
    for container in runner.namespaces.ready():
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=True)
    session = make_session()
    assert _network_mode(runner, session) == "none"
    status, out = _sh(session, "echo still runs")
    assert (status, out) == (0, "still runs\n")


class _Greeter(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"hello from the host\n")


def test_the_way_in_is_already_listening_in_a_prepared_namespace(runner, make_session) -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Greeter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    endpoints = [("127.0.0.1", port, "127.0.0.1", port)]
    try:
        make_session(server_endpoints=endpoints)
        assert _wait_until(lambda: len(runner.namespaces.ready()) >= DEFAULT_POOL_SIZE)
        session = make_session(server_endpoints=endpoints)
        assert _network_mode(runner, session).startswith("container:")
        status, out = _sh(session, f"nc 127.0.0.1 {port} </dev/null")
        assert (status, out) == (0, "hello from the host\n")
        # Only the named port: the host's other listeners stay out of reach.
        status, _ = _sh(session, "nc 127.0.0.1 6379 </dev/null")
        assert status != 0
    finally:
        server.shutdown()
        server.server_close()


def test_holders_of_dead_workers_are_swept(tiny_image: str, make_session, runner) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now
    owner = f"{socket.gethostname()}:{gone.pid}"
    leftover = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--network",
            "none",
            "--label",
            f"{HOLDER_LABEL}={owner}",
            "--entrypoint",
            "sleep",
            tiny_image,
            "600",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    try:
        make_session()  # the pool's first fill sweeps
        assert _wait_until(lambda: not _container_exists(leftover))
    finally:
        subprocess.run(["docker", "rm", "-f", leftover], capture_output=True)


def test_with_none_prepared_each_build_makes_its_own(tiny_image: str, tmp_path: Path) -> None:
    runner = DockerRunner(prepared_namespaces=0)
    sessions = []
    try:
        for n in range(2):
            root = tmp_path / f"b{n}"
            root.mkdir()
            spec = RunSpec(f"netns-pool-test:{uuid.uuid4()}", root, tiny_image, {"PATH": PATH})
            sessions.append(runner.prepare(spec))
            assert _network_mode(runner, sessions[-1]) == "none"
        time.sleep(1)  # a fill, had one started, would have made a holder by now
        assert runner.namespaces.ready() == []
    finally:
        for session in sessions:
            session.cleanup()
        runner.close()
