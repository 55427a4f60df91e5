"""The HTTP hook invoker against a real loopback HTTP server: the payload and headers a
hook endpoint receives, routing by name, by ARN and through the "*" template, routes read
from a file, and what a failing, silent or absent endpoint turns into."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from forgeline.core.functions import (
    FUNCTION_HEADER,
    FunctionInvocationError,
    FunctionRoutes,
    HttpFunctionInvoker,
)

pytestmark = pytest.mark.no_db

PAYLOAD = {
    "DeploymentId": "d-7EXAMPLE1",
    "LifecycleEventHookExecutionId": "0a1b2c3d-4e5f-hook-execution",
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HookEndpoint:
    """A loopback server standing for hook functions: /fail/... answers 500, /slow/...
    holds the request until released; anything else is taken (202)."""

    url: str
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def endpoint() -> Iterator[HookEndpoint]:
    state = HookEndpoint(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            if self.path.startswith("/slow/"):
                state.release.wait(10)
            status = 500 if self.path.startswith("/fail/") else 202
            reply = b"validator exploded" if status == 500 else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # A client that gave up leaves a broken pipe behind; that is expected here.
    server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_an_endpoint_receives_awss_payload(endpoint: HookEndpoint) -> None:
    routes = FunctionRoutes.from_mapping({"ValidateBeforeTraffic": f"{endpoint.url}/before"})
    with HttpFunctionInvoker(routes) as invoker:
        invoker.invoke("ValidateBeforeTraffic", PAYLOAD)
    (received,) = endpoint.received
    assert received.path == "/before"
    assert json.loads(received.body) == {
        "DeploymentId": "d-7EXAMPLE1",
        "LifecycleEventHookExecutionId": "0a1b2c3d-4e5f-hook-execution",
    }
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers[FUNCTION_HEADER] == "ValidateBeforeTraffic"


def test_routing_by_arn_and_through_the_template(endpoint: HookEndpoint) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:Smoke:live"
    routes = FunctionRoutes.from_mapping(
        {"Smoke": f"{endpoint.url}/smoke", "*": f"{endpoint.url}/hooks/{{function}}"}
    )
    with HttpFunctionInvoker(routes) as invoker:
        invoker.invoke(arn, PAYLOAD)
        invoker.invoke("AfterAllowTestTraffic-check", PAYLOAD)
        invoker.invoke("123456789012:function:Other", PAYLOAD)
    assert [item.path for item in endpoint.received] == [
        "/smoke",
        "/hooks/AfterAllowTestTraffic-check",
        "/hooks/Other",
    ]
    assert endpoint.received[0].headers[FUNCTION_HEADER] == arn


def test_routes_read_from_a_file(endpoint: HookEndpoint, tmp_path: Path) -> None:
    routes_file = tmp_path / "hook-routes.json"
    routes_file.write_text(
        json.dumps({"Smoke": {"url": f"{endpoint.url}/from-file", "timeoutSeconds": 5}})
    )
    with HttpFunctionInvoker(FunctionRoutes.from_setting(str(routes_file))) as invoker:
        invoker.invoke("Smoke", PAYLOAD)
    assert [item.path for item in endpoint.received] == ["/from-file"]


def test_an_endpoint_that_answers_500(endpoint: HookEndpoint) -> None:
    routes = FunctionRoutes.from_mapping({"Smoke": f"{endpoint.url}/fail/smoke"})
    with HttpFunctionInvoker(routes) as invoker, pytest.raises(FunctionInvocationError) as caught:
        invoker.invoke("Smoke", PAYLOAD)
    assert str(caught.value) == (
        f"Function 'Smoke' at {endpoint.url}/fail/smoke answered HTTP 500: validator exploded"
    )


def test_an_endpoint_that_does_not_answer_in_time(endpoint: HookEndpoint) -> None:
    routes = FunctionRoutes.from_mapping(
        {"Smoke": {"url": f"{endpoint.url}/slow/smoke", "timeoutSeconds": 0.3}}
    )
    started = time.monotonic()
    with HttpFunctionInvoker(routes) as invoker, pytest.raises(FunctionInvocationError) as caught:
        invoker.invoke("Smoke", PAYLOAD)
    assert time.monotonic() - started < 3
    assert str(caught.value) == (
        f"Function 'Smoke' at {endpoint.url}/slow/smoke did not take the payload "
        "within 0.3 seconds."
    )
    assert len(endpoint.received) == 1


def test_no_one_listening() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port was free a moment ago and nothing listens on it now.
    url = f"http://127.0.0.1:{port}/hook"
    with HttpFunctionInvoker(FunctionRoutes.from_mapping({"Smoke": url})) as invoker:
        with pytest.raises(
            FunctionInvocationError, match=f"Could not reach function 'Smoke' at {url}"
        ):
            invoker.invoke("Smoke", PAYLOAD)
