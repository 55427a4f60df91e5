"""The traffic proxy against a real HAProxy and real loopback HTTP backends.

Each backend answers its own name, so a request's answer says which member served it; a
bounded load (a few threads, one connection per request) counts answers and failures while
the proxy moves traffic. No database is involved.
"""

from __future__ import annotations

import http.client
import http.server
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from forgeline.codedeploy.traffic.config import render
from forgeline.codedeploy.traffic.errors import (
    HaproxyNotInstalled,
    InvalidTrafficConfig,
    UnknownMember,
    UnknownTargetGroup,
)
from forgeline.codedeploy.traffic.layout import ProxyLayout
from forgeline.codedeploy.traffic.model import (
    DRAIN,
    MAINT,
    READY,
    Address,
    HealthCheck,
    Member,
    ProxyModel,
    TargetGroup,
)
from forgeline.codedeploy.traffic.process import HaproxyProcess, find_haproxy
from forgeline.codedeploy.traffic.proxy import TrafficProxy
from forgeline.codedeploy.traffic.runtime import RuntimeClient

pytestmark = pytest.mark.no_db


# Backends and load.


class _NamedHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Backend

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/health":
            status, body = self.server.health_status, b"health"
        else:
            time.sleep(self.server.delay)
            status, body = 200, self.server.name.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Backend(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _NamedHandler)
        self.name = name
        self.delay = 0.0
        self.health_status = 200

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_port}"

    def handle_error(self, request: object, client_address: object) -> None:
        # HAProxy closes idle keep-alive connections to members; that is not an error.
        pass


@pytest.fixture
def backend() -> Iterator[Callable[[str], _Backend]]:
    started: list[_Backend] = []

    def start(name: str) -> _Backend:
        server = _Backend(name)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port: int, *, timeout: float = 5.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@dataclass
class _Request:
    started: float
    answer: str | None  # the member's name, None when the request failed
    error: str | None = None


@dataclass
class Load:
    """`threads` clients looping requests at a port until stopped, each on a new connection
    or, with `keep_alive`, on one it keeps while the proxy allows. Every request is recorded
    with its start time and its answer or failure."""

    port: int
    threads: int = 4
    keep_alive: bool = False
    requests: list[_Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._loop, daemon=True) for _ in range(self.threads)
        ]

    def _loop(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set():
            started = time.monotonic()
            conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read().decode()
                record = (
                    _Request(started, body)
                    if response.status == 200
                    else _Request(started, None, f"HTTP {response.status}")
                )
                if not self.keep_alive or response.will_close:
                    conn.close()
                    conn = None
            except OSError as error:
                record = _Request(started, None, repr(error))
                conn.close()
                conn = None
            with self._lock:
                self.requests.append(record)
        if conn is not None:
            conn.close()

    def __enter__(self) -> Load:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def failures(self) -> list[_Request]:
        return [r for r in self.requests if r.answer is None]

    def answers(self, *, since: float = 0.0, until: float = float("inf")) -> Counter[str]:
        return Counter(
            r.answer for r in self.requests if r.answer is not None and since <= r.started < until
        )


# The proxy.


@pytest.fixture(scope="module")
def haproxy_binary() -> str:
    try:
        return find_haproxy()
    except HaproxyNotInstalled as error:
        pytest.skip(str(error))


@pytest.fixture
def proxy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tp")


@pytest.fixture
def proxy(haproxy_binary: str, proxy_dir: Path) -> Iterator[TrafficProxy]:
    made = TrafficProxy(proxy_dir, haproxy_binary=haproxy_binary)
    yield made
    made.stop()


def worker_pids(proxy: TrafficProxy) -> tuple[int, ...]:
    return proxy.process.processes().workers


def share(answers: Counter[str], name: str) -> float:
    return 100.0 * answers[name] / sum(answers.values())


# Weights.


def test_weights_90_10_give_the_canary_its_share_within_3_points(proxy, backend) -> None:
    blue, green = backend("blue"), backend("green")
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "blue", blue.address, weight=90)
    proxy.register("web", "green", green.address, weight=10)

    answers = Counter(get(port)[1] for _ in range(1000))

    assert sum(answers.values()) == 1000
    assert abs(share(answers, "green") - 10) <= 3
    assert abs(share(answers, "blue") - 90) <= 3


def test_set_weights_shifts_traffic_live_without_a_reload(proxy, backend) -> None:
    blue, green = backend("blue"), backend("green")
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "blue", blue.address, weight=90)
    proxy.register("web", "green", green.address, weight=10)
    workers = worker_pids(proxy)

    proxy.set_weights("web", {"blue": 0, "green": 100})
    after_shift = Counter(get(port)[1] for _ in range(100))
    proxy.set_weights("web", {"blue": 50, "green": 50})
    halves = Counter(get(port)[1] for _ in range(1000))

    assert after_shift == Counter({"green": 100})
    assert abs(share(halves, "green") - 50) <= 3
    assert {m.name: m.weight for m in proxy.members("web")} == {"blue": 50, "green": 50}
    assert worker_pids(proxy) == workers


# Drain and deregistration.


def test_drain_sends_every_new_request_to_the_other_member_with_no_failure(proxy, backend) -> None:
    blue, green = backend("blue"), backend("green")
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "blue", blue.address)
    proxy.register("web", "green", green.address)

    with Load(port, threads=4) as load:
        time.sleep(0.7)
        proxy.set_state("web", "blue", DRAIN)
        drained_at = time.monotonic()
        time.sleep(1.3)

    assert load.failures() == []
    assert load.answers(until=drained_at)["blue"] > 0
    after = load.answers(since=drained_at)
    assert after["green"] > 100
    assert after["blue"] == 0
    blue_status = next(m for m in proxy.members("web") if m.name == "blue")
    assert (blue_status.state, blue_status.weight) == (DRAIN, 1)


def test_deregister_waits_for_requests_in_flight_then_removes_the_member(proxy, backend) -> None:
    blue, green = backend("blue"), backend("green")
    blue.delay = 0.8
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "blue", blue.address)
    in_flight: list[tuple[int, str]] = []
    slow = threading.Thread(target=lambda: in_flight.append(get(port)))
    slow.start()
    time.sleep(0.3)  # the slow request is on blue now
    proxy.register("web", "green", green.address)

    result = proxy.deregister("web", "blue", drain_seconds=10)
    slow.join()

    assert result.removed and result.drained and result.cut_requests == 0
    assert 0.2 < result.waited_seconds < 5
    assert in_flight == [(200, "blue")]
    assert [m.name for m in proxy.members("web")] == ["green"]
    assert {get(port)[1] for _ in range(20)} == {"green"}


def test_deregister_cuts_requests_still_running_when_the_drain_time_ends(proxy, backend) -> None:
    blue, green = backend("blue"), backend("green")
    blue.delay = 5
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "blue", blue.address)
    outcome: list[object] = []

    def slow_request() -> None:
        try:
            outcome.append(get(port, timeout=10))
        except OSError as error:
            outcome.append(error)

    slow = threading.Thread(target=slow_request)
    slow.start()
    time.sleep(0.3)
    proxy.register("web", "green", green.address)

    started = time.monotonic()
    result = proxy.deregister("web", "blue", drain_seconds=0.5)
    took = time.monotonic() - started
    slow.join()

    assert result.removed and not result.drained and result.cut_requests == 1
    assert took < 3  # the drain time, not the request's 5 s
    assert outcome and outcome[0] != (200, "blue")
    assert [m.name for m in proxy.members("web")] == ["green"]


def test_members_join_and_leave_under_load_with_no_failure_and_no_reload(proxy, backend) -> None:
    blue, green, canary = backend("blue"), backend("green"), backend("canary")
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "blue", blue.address)
    workers = worker_pids(proxy)

    with Load(port, threads=4) as load:
        time.sleep(0.4)
        joining_at = time.monotonic()
        proxy.register("web", "green", green.address)
        proxy.register("web", "canary", canary.address, weight=1)
        joined_at = time.monotonic()
        time.sleep(0.6)
        blue_left = proxy.deregister("web", "blue", drain_seconds=5)
        canary_left = proxy.deregister("web", "canary", drain_seconds=5)
        left_at = time.monotonic()
        time.sleep(0.6)

    assert load.failures() == []
    assert load.answers(until=joining_at).keys() == {"blue"}
    assert load.answers(since=joined_at, until=left_at).keys() >= {"green", "canary"}
    assert load.answers(since=left_at).keys() == {"green"}
    assert blue_left.removed and blue_left.drained
    assert canary_left.removed and canary_left.drained
    assert worker_pids(proxy) == workers


# Target groups and reloads.


def test_new_target_groups_reload_with_no_failure_on_an_existing_one(proxy, backend) -> None:
    blue, green, api = backend("blue"), backend("green"), backend("api")
    web_port, api_port = free_port(), free_port()
    proxy.ensure_target_group("web", web_port)
    proxy.register("web", "blue", blue.address, weight=3)
    proxy.register("web", "green", green.address, weight=1)
    proxy.set_state("web", "green", DRAIN)
    reloads: list[tuple[float, float]] = []

    with Load(web_port, threads=2) as fresh, Load(web_port, threads=2, keep_alive=True) as kept:
        for name in ("api", "admin", "metrics"):
            time.sleep(0.4)
            workers = worker_pids(proxy)
            began = time.monotonic()
            proxy.ensure_target_group(name, api_port if name == "api" else free_port())
            reloads.append((began, time.monotonic()))
            assert worker_pids(proxy) != workers  # it did reload
        proxy.register("api", "api", api.address)
        time.sleep(0.4)

    for load in (fresh, kept):
        assert load.failures() == []
        assert load.answers().keys() == {"blue"}
        for began, ended in reloads:
            # Requests were running through every reload.
            assert sum(load.answers(since=began - 0.05, until=ended).values()) > 0
    assert get(api_port) == (200, "api")
    # Members added at runtime, their weights and drain states survive the reloads.
    assert [(m.name, m.weight, m.state) for m in proxy.members("web")] == [
        ("blue", 3, READY),
        ("green", 1, DRAIN),
    ]


def test_removing_a_target_group_stops_its_listener_only(proxy, backend) -> None:
    web, api = backend("web"), backend("api")
    web_port, api_port = free_port(), free_port()
    proxy.ensure_target_group("web", web_port)
    proxy.ensure_target_group("api", api_port)
    proxy.register("web", "web", web.address)
    proxy.register("api", "api", api.address)

    proxy.remove_target_group("api")
    proxy.remove_target_group("api")  # again: nothing left to do

    assert [g.name for g in proxy.target_groups()] == ["web"]
    assert get(web_port) == (200, "web")
    with pytest.raises(OSError):
        get(api_port, timeout=2)


def test_a_port_in_use_is_refused_and_the_proxy_keeps_serving(proxy, backend) -> None:
    web = backend("web")
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "web", web.address)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]

        with pytest.raises(InvalidTrafficConfig, match=f"port {taken} .* already in use"):
            proxy.ensure_target_group("api", taken)
        with pytest.raises(InvalidTrafficConfig, match="cannot both listen on port"):
            proxy.ensure_target_group("api", port)

    assert [g.name for g in proxy.target_groups()] == ["web"]
    assert get(port) == (200, "web")


def test_health_checks_keep_a_failing_member_out_of_traffic(proxy, backend) -> None:
    good, sick = backend("good"), backend("sick")
    sick.health_status = 503
    port = free_port()
    check = HealthCheck(path="/health", interval_seconds=0.2, rise=1, fall=1)
    proxy.ensure_target_group("web", port, health_check=check)
    proxy.register("web", "good", good.address)
    proxy.register("web", "sick", sick.address)

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        health = {m.name: m.health for m in proxy.members("web")}
        if health == {"good": "up", "sick": "down"}:
            break
        time.sleep(0.1)

    assert health == {"good": "up", "sick": "down"}
    assert {get(port)[1] for _ in range(30)} == {"good"}


# Restarts and crashes.


def test_operations_repeated_by_a_restarted_forgeline_change_nothing(
    proxy, proxy_dir, haproxy_binary, backend
) -> None:
    blue, green = backend("blue"), backend("green")
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "blue", blue.address, weight=90)
    proxy.register("web", "green", green.address, weight=10)
    before = proxy.members("web")
    workers = worker_pids(proxy)

    again = TrafficProxy(proxy_dir, haproxy_binary=haproxy_binary)  # a new Forgeline
    again.ensure_target_group("web", port)
    again.register("web", "blue", blue.address, weight=90)
    again.set_weights("web", {"green": 10})
    repeated = again.members("web")
    first = again.deregister("web", "green", drain_seconds=1)
    second = again.deregister("web", "green", drain_seconds=1)

    assert repeated == before
    assert worker_pids(again) == workers  # adopted, not restarted or reloaded
    assert first.removed and not second.removed
    assert [m.name for m in again.members("web")] == ["blue"]


def test_a_change_lost_before_it_reached_haproxy_is_made_on_restart(
    proxy, proxy_dir, haproxy_binary, backend
) -> None:
    blue, green = backend("blue"), backend("green")
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "blue", blue.address, weight=5)
    proxy.register("web", "green", green.address, weight=7)
    # As if Forgeline had crashed after recording green but before telling HAProxy, and
    # after recording blue's weight but before applying it.
    runtime = RuntimeClient(ProxyLayout(proxy_dir).runtime_socket)
    runtime.set_state("web", "green", MAINT)
    runtime.delete_server("web", "green")
    runtime.set_weight("web", "blue", 200)

    TrafficProxy(proxy_dir, haproxy_binary=haproxy_binary).start()

    assert [(s.name, s.weight, s.admin_state) for s in runtime.servers("web")] == [
        ("blue", 5, READY),
        ("green", 7, READY),
    ]


def test_haproxy_killed_comes_back_with_its_members_weights_and_drains(
    proxy, proxy_dir, haproxy_binary, backend
) -> None:
    blue, green, old = backend("blue"), backend("green"), backend("old")
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "blue", blue.address, weight=90)
    proxy.register("web", "green", green.address, weight=10)
    proxy.register("web", "old", old.address, weight=4)
    proxy.set_state("web", "old", DRAIN)
    master = proxy.process.master_pid()
    assert master is not None
    os.kill(master, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proxy.process.master_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(OSError):
        get(port, timeout=2)

    revived = TrafficProxy(proxy_dir, haproxy_binary=haproxy_binary)
    members = revived.members("web")
    answers = Counter(get(port)[1] for _ in range(1000))

    assert [(m.name, m.address, m.weight, m.state) for m in members] == [
        ("blue", blue.address, 90, READY),
        ("green", green.address, 10, READY),
        ("old", old.address, 4, DRAIN),
    ]
    assert answers["old"] == 0
    assert abs(share(answers, "green") - 10) <= 3


# Errors.


def test_bad_requests_are_refused_with_what_is_wrong_and_change_nothing(proxy, backend) -> None:
    blue = backend("blue")
    port = free_port()
    proxy.ensure_target_group("web", port)
    proxy.register("web", "blue", blue.address, weight=2)

    with pytest.raises(UnknownTargetGroup, match="'nope' does not exist"):
        proxy.register("nope", "blue", blue.address)
    with pytest.raises(InvalidTrafficConfig, match="not an IP address"):
        proxy.register("web", "green", "example.com:80")
    with pytest.raises(InvalidTrafficConfig, match="needs a port"):
        proxy.register("web", "green", "127.0.0.1")
    with pytest.raises(InvalidTrafficConfig, match="from 0 to 256"):
        proxy.set_weights("web", {"blue": 300})
    with pytest.raises(UnknownMember, match="no member 'ghost'"):
        proxy.set_weights("web", {"blue": 1, "ghost": 1})
    with pytest.raises(InvalidTrafficConfig, match="member name 'a b' is not valid"):
        proxy.register("web", "a b", blue.address)
    with pytest.raises(InvalidTrafficConfig, match="drain time"):
        proxy.deregister("web", "blue", drain_seconds=-1)
    with pytest.raises(InvalidTrafficConfig, match="state of member"):
        proxy.set_state("web", "blue", "paused")

    assert [(m.name, m.weight, m.state) for m in proxy.members("web")] == [("blue", 2, READY)]


def test_a_missing_haproxy_says_how_to_install_it(tmp_path) -> None:
    with pytest.raises(HaproxyNotInstalled, match="apt-get install -y haproxy"):
        find_haproxy(str(tmp_path / "haproxy"))


def test_rendered_configurations_pass_haproxy_s_own_check(haproxy_binary, proxy_dir) -> None:
    layout = ProxyLayout(proxy_dir)
    model = ProxyModel(
        (
            TargetGroup(
                "web-tg",
                free_port(),
                health_check=HealthCheck(path="/health?deep=1", interval_seconds=0.5),
                members=(
                    Member("i-0abc", Address.parse("10.0.0.5:80"), 90),
                    Member("i-0def", Address.parse("[fd00::5]:80"), 10, DRAIN),
                    Member("i-0123", Address.parse("10.0.0.7:8080"), 0, MAINT),
                ),
            ),
            TargetGroup("api.v2:blue", free_port(), bind_address="::1"),
        )
    )
    path = proxy_dir / "check.cfg"
    path.write_text(render(model, layout))

    HaproxyProcess(layout, binary=haproxy_binary).check_config(path)


def test_a_directory_too_deep_for_haproxy_sockets_still_serves(
    haproxy_binary, backend, tmp_path
) -> None:
    deep = tmp_path / ("nested-" * 8) / "traffic"
    proxy = TrafficProxy(deep, haproxy_binary=haproxy_binary)
    assert proxy.layout.runtime_socket.parent != deep  # moved to a short private directory
    try:
        port = free_port()
        proxy.ensure_target_group("web", port)
        proxy.register("web", "blue", backend("blue").address)
        assert get(port)[1] == "blue"
        folder = proxy.layout.runtime_socket.parent
        assert oct(folder.stat().st_mode & 0o777) == oct(0o700)
    finally:
        proxy.stop()
