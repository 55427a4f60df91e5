"""Forwarding into a build container's network namespace (runners/netns_forward.py).

A container on network `none` must reach the one forwarded host server, at the same loopback
address and port it has on the host, and nothing else: not Redis, not Postgres, not another
host port. Every "unreachable" check is paired with the same command from a `host`-network
container reaching that port, so a refusal means isolation and not a broken probe. Error
paths come first; they need no Docker engine.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.codebuild.runners.netns_forward import (
    Forwarder,
    ListenFailed,
    NamespaceUnavailable,
    forward_into,
)

# No database anywhere here: one pass of the suite is enough.
pytestmark = pytest.mark.no_db
REDIS_PORT = 6379
POSTGRES_PORT = 5432
MB = 1024 * 1024


def _forwarder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("netns-")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _host_accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def _blob(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /hello, GET /whoami (the client's address), GET /blob?size=N&seed=S, GET /slow,
    POST /digest (sha256 of the body)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/hello":
            self._reply(b"forwarded hello")
        elif url.path == "/whoami":
            self._reply(self.client_address[0].encode())
        elif url.path == "/blob":
            self._reply(_blob(int(query["size"]), int(query.get("seed", "0"))))
        elif url.path == "/slow":
            time.sleep(0.5)
            self._reply(b"slow")
        else:
            self.send_error(404)

    def do_POST(self) -> None:  # noqa: N802
        remaining = int(self.headers["Content-Length"])
        digest = hashlib.sha256()
        while remaining:
            chunk = self.rfile.read(min(remaining, MB))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
        self._reply(digest.hexdigest().encode())

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    """A small HTTP server on the host's loopback, on a free port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def half_close_port() -> Iterator[int]:
    """A TCP server that reads until the client's EOF, then answers '<sha256> <length>'."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            digest, length = hashlib.sha256(), 0
            while chunk := conn.recv(MB):
                digest.update(chunk)
                length += len(chunk)
            conn.sendall(f"{digest.hexdigest()} {length}\n".encode())

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    listener.close()


# --- error paths (no Docker needed) ---------------------------------------------------------


def test_nonexistent_pid_is_a_clear_error() -> None:
    # pid_max itself is never a pid: pids are below it.
    missing = int(Path("/proc/sys/kernel/pid_max").read_text())
    with pytest.raises(NamespaceUnavailable, match="PID namespace"):
        forward_into(missing, [("127.0.0.1", 4750, "127.0.0.1", 4750)])
    for not_a_pid in (0, -1):
        with pytest.raises(NamespaceUnavailable, match="not running"):
            forward_into(not_a_pid, [("127.0.0.1", 4750, "127.0.0.1", 4750)])
    assert _forwarder_threads() == []


def test_refuses_to_listen_in_its_own_namespace() -> None:
    # A host-network container (or a pid from another PID namespace) would put the listener
    # on the host itself.
    with pytest.raises(NamespaceUnavailable, match="shares this process's network namespace"):
        forward_into(os.getpid(), [("127.0.0.1", _free_port(), "127.0.0.1", 4750)])


def test_listen_address_must_be_numeric_and_forwards_given() -> None:
    with pytest.raises(ValueError, match="numeric"):
        forward_into(os.getpid(), [("localhost", 4750, "127.0.0.1", 4750)])
    with pytest.raises(ValueError, match="at least one"):
        forward_into(os.getpid(), [])


def test_upstream_source_must_be_an_address_of_the_upstreams_family() -> None:
    with pytest.raises(ValueError, match="numeric"):
        forward_into(
            os.getpid(), [("127.0.0.1", 4750, "127.0.0.1", 4750)], upstream_source="localhost"
        )
    with pytest.raises(ValueError, match="family"):
        forward_into(os.getpid(), [("127.0.0.1", 4750, "::1", 4750)], upstream_source="127.0.0.2")
    assert _forwarder_threads() == []


@pytest.fixture
def bare_namespace() -> Iterator[int]:
    """A process alone in a new network namespace whose loopback is still down."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1)")
    proc = subprocess.Popen(["unshare", "--net", "sleep", "60"])
    try:
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{proc.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
            assert time.monotonic() < deadline, "unshare never entered a new namespace"
            time.sleep(0.02)
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_loopback_down_is_a_clear_error(bare_namespace: int) -> None:
    with pytest.raises(ListenFailed, match="loopback interface up"):
        forward_into(bare_namespace, [("127.0.0.1", 4750, "127.0.0.1", 4750)])
    assert _forwarder_threads() == []


_FETCH = (
    "import sys, urllib.request as u\n"
    "try: print(u.urlopen(sys.argv[1], timeout=5).read().decode())\n"
    "except OSError as e: print('FAILED', e)\n"
)


def _fetch_inside(namespace: int, url: str) -> str:
    cmd = ["nsenter", "-t", str(namespace), "-n", sys.executable, "-c", _FETCH, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()


def _loopback_up(namespace: int) -> None:
    subprocess.run(
        ["nsenter", "-t", str(namespace), "-n", "ip", "link", "set", "lo", "up"], check=True
    )


def test_forwards_in_any_namespace(bare_namespace: int, http_port: int) -> None:
    """Not Docker-specific: a plain namespace with its loopback up behaves the same."""
    _loopback_up(bare_namespace)
    with forward_into(bare_namespace, [("127.0.0.1", http_port, "127.0.0.1", http_port)]):
        assert _fetch_inside(bare_namespace, f"http://127.0.0.1:{http_port}/hello") == (
            "forwarded hello"
        )
        assert _fetch_inside(bare_namespace, f"http://127.0.0.1:{REDIS_PORT}/").startswith("FAILED")
    assert _fetch_inside(bare_namespace, f"http://127.0.0.1:{http_port}/hello").startswith("FAILED")
    assert _forwarder_threads() == []


def test_a_request_sent_before_the_upstream_connects_is_not_lost(
    bare_namespace: int, http_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some Pythons (Debian's 3.11.2) start reading a new transport although its protocol
    paused it in connection_made: the client's request then arrives before the upstream
    connection exists. Here reading is never paused and the upstream comes 0.3 s late."""
    import asyncio.selector_events

    from forgeline.codebuild.runners import netns_forward

    transport = asyncio.selector_events._SelectorSocketTransport
    monkeypatch.setattr(transport, "pause_reading", lambda self: None)
    connect = netns_forward._Accepted._connect_upstream

    async def late(self: netns_forward._Accepted) -> None:
        await asyncio.sleep(0.3)
        await connect(self)

    monkeypatch.setattr(netns_forward._Accepted, "_connect_upstream", late)
    _loopback_up(bare_namespace)
    with forward_into(bare_namespace, [("127.0.0.1", http_port, "127.0.0.1", http_port)]):
        assert _fetch_inside(bare_namespace, f"http://127.0.0.1:{http_port}/hello") == (
            "forwarded hello"
        )


# --- from inside a real build container -----------------------------------------------------


# Each test below is marked `docker` (tests/support/markers.py): skipped, with the reason,
# when no Docker engine answers.


@pytest.fixture(scope="module")
def run_idle(tiny_image: str) -> Iterator[Any]:
    """Starts idling containers of the busybox build image on a given network."""
    import docker

    client = docker.from_env()

    def run(network: str) -> Any:
        container = client.containers.run(
            tiny_image, ["sleep", "600"], network_mode=network, detach=True
        )
        container.reload()
        return container

    yield run
    client.close()


@pytest.fixture
def sandbox(run_idle: Any) -> Iterator[Any]:
    """A build-like container on network `none`."""
    container = run_idle("none")
    yield container
    container.remove(force=True)


@pytest.fixture(scope="module")
def host_network(run_idle: Any) -> Iterator[Any]:
    """The same image on network `host`: the control that shows each probe can connect."""
    container = run_idle("host")
    yield container
    container.remove(force=True)


def _pid(container: Any) -> int:
    return int(container.attrs["State"]["Pid"])


def _sh(container: Any, script: str, timeout: int = 120) -> tuple[int, str]:
    exit_code, output = container.exec_run(["timeout", str(timeout), "sh", "-c", script])
    return int(exit_code), output.decode(errors="replace")


def _connects(container: Any, port: int) -> bool:
    """Whether a TCP connection to 127.0.0.1:port opens from inside the container."""
    _, output = _sh(
        container, f"nc -w 3 127.0.0.1 {port} </dev/null >/dev/null 2>&1 && echo OPEN || echo SHUT"
    )
    assert output.strip() in ("OPEN", "SHUT"), output
    return output.strip() == "OPEN"


@pytest.fixture
def forwarded(sandbox: Any, http_port: int) -> Iterator[Forwarder]:
    with forward_into(
        _pid(sandbox), [("127.0.0.1", http_port, "127.0.0.1", http_port)], container_id=sandbox.id
    ) as forwarder:
        yield forwarder


@pytest.mark.docker
def test_loopback_is_up_in_a_none_container(sandbox: Any) -> None:
    _, output = _sh(sandbox, "ip addr show lo")
    assert "UP" in output and "inet 127.0.0.1/8" in output


@pytest.mark.docker
def test_forwarded_server_answers(sandbox: Any, http_port: int, forwarded: Forwarder) -> None:
    code, output = _sh(sandbox, f"wget -q -O - http://127.0.0.1:{http_port}/hello")
    assert (code, output) == (0, "forwarded hello")
    assert forwarded.listening == [("127.0.0.1", http_port)]
    assert forwarded.accepted_connections == 1


@pytest.mark.docker
def test_upstream_connections_come_from_the_chosen_address(
    sandbox: Any, http_port: int, forwarded: Forwarder
) -> None:
    url = f"http://127.0.0.1:{http_port}/whoami"
    assert _sh(sandbox, f"wget -q -O - {url}") == (0, "127.0.0.1")  # the kernel's choice
    forwarded.close()
    with forward_into(
        _pid(sandbox),
        [("127.0.0.1", http_port, "127.0.0.1", http_port)],
        container_id=sandbox.id,
        upstream_source="127.0.0.2",
    ):
        assert _sh(sandbox, f"wget -q -O - {url}") == (0, "127.0.0.2")


@pytest.mark.docker
def test_large_bodies_both_ways(sandbox: Any, http_port: int, forwarded: Forwarder) -> None:
    size = 8 * MB
    expected = hashlib.sha256(_blob(size, 7)).hexdigest()
    code, output = _sh(
        sandbox, f"wget -q -O - 'http://127.0.0.1:{http_port}/blob?size={size}&seed=7' | sha256sum"
    )
    assert code == 0 and output.split()[0] == expected

    # Raw HTTP over nc: BusyBox wget's --post-file stops at the first NUL byte.
    code, output = _sh(
        sandbox,
        f"head -c {size} /dev/urandom > /tmp/upload && sha256sum /tmp/upload | cut -d' ' -f1 && "
        f"{{ printf 'POST /digest HTTP/1.0\\r\\nContent-Length: {size}\\r\\n\\r\\n'; "
        f"cat /tmp/upload; }} | nc 127.0.0.1 {http_port}",
    )
    local, remote = output.split()[0], output.split()[-1]
    assert code == 0 and " 200 " in output and local == remote


@pytest.mark.docker
def test_half_close_passes_through(sandbox: Any, half_close_port: int) -> None:
    """The client's EOF reaches the server, whose answer still comes back afterwards."""
    route = [("127.0.0.1", half_close_port, "127.0.0.1", half_close_port)]
    with forward_into(_pid(sandbox), route):
        code, output = _sh(
            sandbox,
            f"head -c {3 * MB} /dev/urandom > /tmp/sent && sha256sum /tmp/sent | cut -d' ' -f1 && "
            f"nc 127.0.0.1 {half_close_port} < /tmp/sent",
            timeout=30,
        )
    local, remote, length = output.split()
    assert code == 0 and local == remote and int(length) == 3 * MB


@pytest.mark.docker
def test_concurrent_connections(sandbox: Any, http_port: int, forwarded: Forwarder) -> None:
    # Eight requests the server holds for 0.5 s each: together well under the 4 s in a row.
    started = time.monotonic()
    code, output = _sh(
        sandbox,
        "for i in 1 2 3 4 5 6 7 8; do "
        f"wget -q -O /tmp/slow$i http://127.0.0.1:{http_port}/slow & done; wait; cat /tmp/slow*",
    )
    elapsed = time.monotonic() - started
    assert code == 0 and output == "slow" * 8
    assert elapsed < 3.0, elapsed

    size = 2 * MB
    code, output = _sh(
        sandbox,
        "for i in 1 2 3 4; do "
        f"wget -q -O /tmp/blob$i 'http://127.0.0.1:{http_port}/blob?size={size}&seed='$i & "
        "done; wait; for i in 1 2 3 4; do sha256sum /tmp/blob$i | cut -d' ' -f1; done",
    )
    assert code == 0
    assert output.split() == [hashlib.sha256(_blob(size, i)).hexdigest() for i in range(1, 5)]
    assert forwarded.accepted_connections == 12
    deadline = time.monotonic() + 5
    while forwarded.active_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert forwarded.active_connections == 0


@pytest.mark.docker
@pytest.mark.parametrize("service", ["redis", "postgres", "unforwarded"])
def test_nothing_else_on_the_host_is_reachable(
    service: str,
    sandbox: Any,
    host_network: Any,
    http_port: int,
    forwarded: Forwarder,
    half_close_port: int,
) -> None:
    # half_close_port is a second host server that is deliberately not forwarded.
    port = {"redis": REDIS_PORT, "postgres": POSTGRES_PORT, "unforwarded": half_close_port}[service]
    if not _host_accepts(port):
        pytest.skip(f"nothing listens on the host's 127.0.0.1:{port}")
    assert _connects(host_network, port), "the probe cannot even reach the host-network port"
    assert not _connects(sandbox, port)
    assert _connects(sandbox, http_port), "the forwarded port must still connect"


@pytest.mark.docker
def test_redis_answers_a_host_container_only(
    sandbox: Any, host_network: Any, forwarded: Forwarder
) -> None:
    if not _host_accepts(REDIS_PORT):
        pytest.skip("no Redis on the host")
    ping = f"(printf 'PING\\r\\n'; sleep 1) | nc -w 3 127.0.0.1 {REDIS_PORT}"
    assert "+PONG" in _sh(host_network, ping)[1]
    code, output = _sh(sandbox, ping)
    assert "+PONG" not in output and "Connection refused" in output


@pytest.mark.docker
def test_close_refuses_and_leaves_no_threads(sandbox: Any, http_port: int) -> None:
    before = set(threading.enumerate())
    forwarder = forward_into(_pid(sandbox), [("127.0.0.1", http_port, "127.0.0.1", http_port)])
    assert len(_forwarder_threads()) == 1  # the namespace thread has already ended
    url = f"http://127.0.0.1:{http_port}/hello"
    # A connection left open inside the container: close() must drop it too.
    _sh(sandbox, f"(sleep 30 | nc 127.0.0.1 {http_port}) >/dev/null 2>&1 &")
    assert _sh(sandbox, f"wget -q -O - {url}") == (0, "forwarded hello")
    forwarder.close()
    forwarder.close()  # twice is fine
    code, output = _sh(sandbox, f"wget -q -O - {url}")
    assert code != 0 and "Connection refused" in output
    # The connection left open was dropped: its nc sees the end and exits.
    assert (
        _sh(sandbox, "for i in $(seq 50); do pidof nc || exit 0; sleep 0.1; done; exit 1")[0] == 0
    )
    assert _forwarder_threads() == []
    assert set(threading.enumerate()) <= before


@pytest.mark.docker
def test_close_after_the_container_exited(run_idle: Any, http_port: int) -> None:
    container = run_idle("none")
    try:
        forwarder = forward_into(
            _pid(container), [("127.0.0.1", http_port, "127.0.0.1", http_port)]
        )
        _sh(container, f"(sleep 30 | nc 127.0.0.1 {http_port}) >/dev/null 2>&1 &")
        container.kill()
        container.wait(timeout=30)
        forwarder.close()
    finally:
        container.remove(force=True)
    assert _forwarder_threads() == []


@pytest.mark.docker
def test_unreachable_upstream_closes_the_connection(sandbox: Any) -> None:
    dead = _free_port()
    with forward_into(_pid(sandbox), [("127.0.0.1", dead, "127.0.0.1", dead)]) as forwarder:
        started = time.monotonic()
        code, _ = _sh(sandbox, f"wget -q -O - http://127.0.0.1:{dead}/")
        assert code != 0 and time.monotonic() - started < 10
        assert forwarder.accepted_connections == 1


@pytest.mark.docker
def test_port_taken_inside_the_container(sandbox: Any) -> None:
    port = _free_port()
    _sh(sandbox, f"(nc -l -p {port} >/dev/null 2>&1 &) ; sleep 0.3")
    with pytest.raises(ListenFailed, match="already listens"):
        forward_into(_pid(sandbox), [("127.0.0.1", port, "127.0.0.1", port)])
    assert _forwarder_threads() == []


@pytest.mark.docker
def test_wrong_container_id_is_refused(sandbox: Any, host_network: Any) -> None:
    with pytest.raises(NamespaceUnavailable, match="not in container"):
        forward_into(
            _pid(sandbox), [("127.0.0.1", 4750, "127.0.0.1", 4750)], container_id=host_network.id
        )


@pytest.mark.docker
def test_needs_root(sandbox: Any) -> None:
    if os.geteuid() != 0:
        pytest.skip("runs as root to drop to nobody")
    pid = _pid(sandbox)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # a forked copy drops to nobody and tries
        verdict = "ACCEPTED"
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            forward_into(pid, [("127.0.0.1", 4750, "127.0.0.1", 4750)])
        except NamespaceUnavailable as exc:
            verdict = f"REFUSED {exc}"
        except BaseException as exc:
            verdict = f"OTHER {exc!r}"
        os.write(write_end, verdict.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as verdict_pipe:
        verdict = verdict_pipe.read().decode()
    os.waitpid(child, 0)
    assert verdict.startswith("REFUSED") and "needs root" in verdict, verdict


@pytest.mark.docker
def test_connections_beyond_the_limit_are_dropped(sandbox: Any, http_port: int) -> None:
    route = [("127.0.0.1", http_port, "127.0.0.1", http_port)]
    with forward_into(_pid(sandbox), route, max_connections=1) as forwarder:
        _sh(sandbox, f"(sleep 30 | nc 127.0.0.1 {http_port}) >/dev/null 2>&1 &")
        deadline = time.monotonic() + 5
        while forwarder.active_connections < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        code, _ = _sh(sandbox, f"wget -q -O - http://127.0.0.1:{http_port}/hello")
        assert code != 0 and forwarder.accepted_connections == 1
