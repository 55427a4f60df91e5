"""Hook routes and the hook payload: which URL a function name leads to, what a malformed
routes file is told, and the exact request the HTTP invoker sends (through httpx's
in-memory transport; the real socket path is tests/integration/codedeploy/test_hook_invoker.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from forgeline.core.functions import (
    FUNCTION_HEADER,
    FunctionInvocationError,
    FunctionRoute,
    FunctionRoutes,
    FunctionRoutesError,
    HttpFunctionInvoker,
    RecordingFunctionInvoker,
    UnknownFunction,
    bare_function_name,
)

ARN = "arn:aws:lambda:us-east-1:123456789012:function:Smoke"
PAYLOAD = {"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "c1a2b3c4-execution"}


def test_payload_is_awss_two_ids() -> None:
    assert PAYLOAD == {
        "DeploymentId": "d-ABCDEF123",
        "LifecycleEventHookExecutionId": "c1a2b3c4-execution",
    }


@pytest.mark.parametrize(
    ("reference", "bare"),
    [
        ("Smoke", "Smoke"),
        ("Smoke:live", "Smoke"),
        ("123456789012:function:Smoke", "Smoke"),
        (ARN, "Smoke"),
        (ARN + ":7", "Smoke"),
    ],
)
def test_bare_function_name(reference: str, bare: str) -> None:
    assert bare_function_name(reference) == bare


def test_routes_by_exact_name_then_bare_name_then_fallback() -> None:
    routes = FunctionRoutes.from_mapping(
        {
            "Smoke": "http://127.0.0.1:9001/smoke",
            ARN + ":live": {"url": "https://checks.internal/live", "timeoutSeconds": 30},
            "*": "http://hooks.internal:8080/hooks/{function}",
        }
    )
    assert routes.route_for("Smoke")[0] == "http://127.0.0.1:9001/smoke"
    assert routes.route_for(ARN)[0] == "http://127.0.0.1:9001/smoke"
    assert routes.route_for(ARN + ":7")[0] == "http://127.0.0.1:9001/smoke"
    url, route = routes.route_for(ARN + ":live")
    assert (url, route.timeout_seconds) == ("https://checks.internal/live", 30.0)
    assert routes.route_for("Other:live")[0] == "http://hooks.internal:8080/hooks/Other"


def test_a_function_without_a_route_is_named() -> None:
    routes = FunctionRoutes.from_mapping({"Smoke": "http://127.0.0.1:9001/"})
    with pytest.raises(UnknownFunction) as caught:
        routes.route_for("Missing")
    assert caught.value.function_name == "Missing"
    assert str(caught.value) == (
        "No function route leads to function 'Missing' (routes for: Smoke); add it, or a '*' "
        "route, to the function routes."
    )


def test_routes_from_a_setting_inline_or_empty() -> None:
    assert FunctionRoutes.from_setting("") == FunctionRoutes()
    routes = FunctionRoutes.from_setting(' {"Smoke": "http://127.0.0.1:1/"} ')
    assert routes.by_function == {"Smoke": FunctionRoute("http://127.0.0.1:1/")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "the function routes setting is not valid JSON: Expecting property name"),
        ('["http://x/"]', "setting must be a JSON object mapping function names to URLs"),
        ('{"Smoke": 5}', "function route 'Smoke' must be a URL or {url, timeoutSeconds}, not 5"),
        ('{"Smoke": "ftp://x/"}', "must be an http:// or https:// URL with a host, not 'ftp://x/'"),
        ('{"Smoke": "http:///path"}', "must be an http:// or https:// URL with a host"),
        ('{"Smoke": {"url": "http://x/", "timeout": 3}}', "has 'timeout'; it takes url and"),
        ('{"Smoke": {"timeoutSeconds": 3}}', "function route 'Smoke' needs a url"),
        ('{"Smoke": {"url": "http://x/", "timeoutSeconds": 0}}', "above 0, not 0"),
        ('{"Smoke": "http://x/{function}"}', "only the '*' route may hold {function}"),
        ('{" ": "http://x/"}', "function route names must be function names"),
    ],
)
def test_malformed_routes_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FunctionRoutesError) as caught:
        FunctionRoutes.from_setting(text)
    assert message in str(caught.value)


def test_the_invoker_posts_the_payload_as_json() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    routes = FunctionRoutes.from_mapping({"*": "http://hooks.test/{function}"})
    with HttpFunctionInvoker(routes, transport=httpx.MockTransport(answer)) as invoker:
        invoker.invoke(ARN + ":live", PAYLOAD)
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "http://hooks.test/Smoke"
    assert request.headers["content-type"] == "application/json"
    assert request.headers[FUNCTION_HEADER] == ARN + ":live"
    assert json.loads(request.content) == PAYLOAD


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(500, text="validator\n crashed"),
            "Function 'Smoke' at http://hooks.test/ answered HTTP 500: validator crashed",
        ),
        (httpx.Response(404), "Function 'Smoke' at http://hooks.test/ answered HTTP 404."),
        (
            httpx.Response(307, headers={"location": "http://elsewhere/"}),
            "answered HTTP 307",
        ),
    ],
)
def test_a_refusing_answer_is_an_invocation_error(response: httpx.Response, message: str) -> None:
    routes = FunctionRoutes.from_mapping({"Smoke": "http://hooks.test/"})
    with HttpFunctionInvoker(routes, transport=httpx.MockTransport(lambda _: response)) as invoker:
        with pytest.raises(FunctionInvocationError) as caught:
            invoker.invoke("Smoke", PAYLOAD)
    assert message in str(caught.value)
    assert caught.value.function_name == "Smoke"


def test_transport_failures_are_invocation_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    routes = FunctionRoutes.from_mapping(
        {"Smoke": {"url": "http://hooks.test/", "timeoutSeconds": 2}}
    )
    with HttpFunctionInvoker(routes, transport=httpx.MockTransport(refuse)) as invoker:
        with pytest.raises(FunctionInvocationError, match="Could not reach function 'Smoke'"):
            invoker.invoke("Smoke", PAYLOAD)
    with HttpFunctionInvoker(routes, transport=httpx.MockTransport(stall)) as invoker:
        with pytest.raises(
            FunctionInvocationError, match="did not take the payload within 2 seconds"
        ):
            invoker.invoke("Smoke", PAYLOAD)


def test_the_recording_invoker_keeps_calls_and_fails_on_demand() -> None:
    invoker = RecordingFunctionInvoker(failing=frozenset({"Broken"}))
    invoker.invoke("Smoke", PAYLOAD)
    with pytest.raises(FunctionInvocationError, match="Broken cannot be reached"):
        invoker.invoke("Broken", PAYLOAD)
    assert invoker.calls == [("Smoke", PAYLOAD), ("Broken", PAYLOAD)]
