"""What the traffic-control and blue/green tests share: a server whose traffic proxy is
stopped with it, a target group made with the operator's command, the proxy's members, and
a loopback load through the proxy that counts every answer and failure."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from forgeline.codedeploy.traffic.proxy import TrafficProxy
from tests.support.server import FORGELINE, ForgelineServer, free_port


def proxy_of(server: ForgelineServer) -> TrafficProxy:
    return TrafficProxy(Path(server.env["FORGELINE_DATA_DIR"]) / "traffic")


@contextlib.contextmanager
def server_with_proxy(
    folder: Path, extra_env: dict[str, str] | None = None
) -> Iterator[ForgelineServer]:
    """A server whose agents poll every 2 s; its traffic proxy stops with it."""
    env = {"FORGELINE_TLS_PORT": str(free_port()), "FORGELINE_CODEDEPLOY_POLL_SECONDS": "2"}
    env.update(extra_env or {})
    server = ForgelineServer(folder, extra_env=env)
    try:
        yield server.start()
    finally:
        server.stop()
        proxy_of(server).stop()


def create_target_group(server: ForgelineServer, name: str) -> int:
    """`forgeline traffic target-group create` on a free port, with a 1 s drain."""
    port = free_port()
    made = subprocess.run(
        [*FORGELINE, "traffic", "target-group", "create", "--name", name,
         "--port", str(port), "--deregistration-delay", "1"],
        env=server.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return port


def members(server: ForgelineServer, target_group: str) -> set[str]:
    return {member.name for member in proxy_of(server).members(target_group)}


class Load:
    """GETs through the proxy, one after another, counting answers and failures."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self.timeline: list[tuple[float, str]] = []  # (sent at, answer)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as reply:
                    answer = reply.read().decode().strip()
                self.answers[answer] += 1
                self.timeline.append((sent, answer))
            except Exception as exc:  # every kind of failure counts
                self.failures.append(repr(exc))
            time.sleep(0.005)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)


def answers_through(port: int, count: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _ in range(count):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
            seen[reply.read().decode().strip()] += 1
    return seen
