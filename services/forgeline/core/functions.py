"""Invoking Lambda functions, which Forgeline does not run: a function name leads to a URL.

CodeDeploy invokes a Lambda or ECS deployment's functions (which answer with
PutLifecycleEventHookExecutionStatus), and CodePipeline's Invoke actions (which answer with
PutJobSuccessResult or PutJobFailureResult). Here a `FunctionInvoker` hands the payload AWS
would pass the function to whatever stands for it, and the verdict comes back through the
same API call. An invoker only delivers: it returns once the function has taken the
payload and raises `FunctionInvocationError` when it could not.

`HttpFunctionInvoker` POSTs the payload as JSON to a URL chosen by the function's name, and
counts any 2xx answer as taken (the body is ignored). The request also carries the
function's name in the `X-Forgeline-Function` header, for a server that stands for
several functions.

Function routes (`FunctionRoutes`) map function names to URLs. As JSON (a file, or a
setting's value; see `FunctionRoutes.from_setting`):

    {
      "ValidateBeforeTraffic": "http://127.0.0.1:9001/before",
      "arn:aws:lambda:us-east-1:123456789012:function:Smoke":
          {"url": "https://checks.internal/smoke", "timeoutSeconds": 30},
      "*": "http://127.0.0.1:9000/functions/{function}"
    }

A value is a URL (http or https) or an object with `url` and optional `timeoutSeconds`
(default 10: how long to wait for the function to take the payload, not for its verdict).
A function is looked up by the name it is given, then, for an ARN or a qualified name
(`name:alias`), by its bare function name, and last under `"*"`, whose URL may hold
`{function}`, replaced by the bare function name.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx

DEFAULT_TIMEOUT_SECONDS = 10.0
FALLBACK_KEY = "*"
FUNCTION_PLACEHOLDER = "{function}"
FUNCTION_HEADER = "X-Forgeline-Function"
# How much of a refusing answer's body goes into the error message.
_BODY_EXCERPT = 200


class FunctionInvoker(Protocol):
    def invoke(self, function_name: str, payload: Mapping[str, Any]) -> None:
        """Deliver `payload` to the function; raise FunctionInvocationError if it cannot be."""
        ...


class FunctionInvocationError(Exception):
    """The function could not be handed its payload; the message says why."""

    def __init__(self, function_name: str, message: str) -> None:
        super().__init__(message)
        self.function_name = function_name


class UnknownFunction(FunctionInvocationError):
    """No route leads to the function."""


class FunctionRoutesError(ValueError):
    """The function routes (file or setting) are malformed; the message says where."""


@dataclasses.dataclass(frozen=True)
class FunctionRoute:
    url: str  # may hold {function} when it is the "*" route
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


@dataclasses.dataclass(frozen=True)
class FunctionRoutes:
    by_function: Mapping[str, FunctionRoute] = dataclasses.field(default_factory=dict)
    fallback: FunctionRoute | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> FunctionRoutes:
        if not isinstance(data, Mapping):
            raise FunctionRoutesError(
                "function routes must be a JSON object mapping function names to URLs"
            )
        by_function: dict[str, FunctionRoute] = {}
        fallback: FunctionRoute | None = None
        for name, value in data.items():
            if not isinstance(name, str) or not name.strip():
                raise FunctionRoutesError(
                    f"function route names must be function names, not {name!r}"
                )
            route = _route(name, value)
            if name == FALLBACK_KEY:
                fallback = route
            else:
                by_function[name.strip()] = route
        return cls(by_function, fallback)

    @classmethod
    def from_json(cls, text: str, source: str = "function routes") -> FunctionRoutes:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FunctionRoutesError(
                f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        if not isinstance(data, dict):
            raise FunctionRoutesError(
                f"{source} must be a JSON object mapping function names to URLs"
            )
        return cls.from_mapping(data)

    @classmethod
    def from_file(cls, path: str | Path) -> FunctionRoutes:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise FunctionRoutesError(
                f"cannot read the function routes file {path}: {exc}"
            ) from None
        return cls.from_json(text, source=f"the function routes file {path}")

    @classmethod
    def from_setting(cls, value: str) -> FunctionRoutes:
        """A setting holds the routes inline (JSON) or the path of a JSON file; empty means
        no routes."""
        text = value.strip()
        if not text:
            return cls()
        if text.startswith(("{", "[")):
            return cls.from_json(text, source="the function routes setting")
        return cls.from_file(text)

    def route_for(self, function_name: str) -> tuple[str, FunctionRoute]:
        """The URL to POST to for `function_name`, and the route it came from."""
        bare = bare_function_name(function_name)
        for candidate in dict.fromkeys((function_name, _unprefixed(function_name), bare)):
            route = self.by_function.get(candidate)
            if route is not None:
                return route.url, route
        if self.fallback is not None:
            url = self.fallback.url.replace(FUNCTION_PLACEHOLDER, urllib.parse.quote(bare, safe=""))
            return url, self.fallback
        known = ", ".join(sorted(self.by_function)) or "none"
        raise UnknownFunction(
            function_name,
            f"No function route leads to function {function_name!r} (routes for: {known}); "
            f"add it, or a {FALLBACK_KEY!r} route, to the function routes.",
        )


class HttpFunctionInvoker:
    """Delivers payloads by HTTP POST; one client, so connections are reused."""

    def __init__(
        self, routes: FunctionRoutes, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.routes = routes
        self._client = httpx.Client(transport=transport, follow_redirects=False)

    def invoke(self, function_name: str, payload: Mapping[str, Any]) -> None:
        url, route = self.routes.route_for(function_name)
        try:
            response = self._client.post(
                url,
                json=payload,
                headers={FUNCTION_HEADER: function_name},
                timeout=route.timeout_seconds,
            )
        except httpx.TimeoutException:
            raise FunctionInvocationError(
                function_name,
                f"Function {function_name!r} at {url} did not take the payload within "
                f"{route.timeout_seconds:g} seconds.",
            ) from None
        except httpx.HTTPError as exc:
            raise FunctionInvocationError(
                function_name,
                f"Could not reach function {function_name!r} at {url}: {str(exc) or type(exc).__name__}",
            ) from None
        if not response.is_success:
            excerpt = " ".join(response.text[:_BODY_EXCERPT].split())
            raise FunctionInvocationError(
                function_name,
                f"Function {function_name!r} at {url} answered HTTP "
                f"{response.status_code}" + (f": {excerpt}" if excerpt else "."),
            )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpFunctionInvoker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclasses.dataclass
class RecordingFunctionInvoker:
    """Keeps what it was asked to deliver; for tests of the code that invokes functions."""

    calls: list[tuple[str, Mapping[str, Any]]] = dataclasses.field(default_factory=list)
    failing: frozenset[str] = frozenset()  # functions that cannot be reached

    def invoke(self, function_name: str, payload: Mapping[str, Any]) -> None:
        self.calls.append((function_name, payload))
        if function_name in self.failing:
            raise FunctionInvocationError(function_name, f"{function_name} cannot be reached.")


def bare_function_name(reference: str) -> str:
    """`my-fn` from `my-fn`, `my-fn:live`, `123456789012:function:my-fn` or a full ARN."""
    return _unprefixed(reference).split(":", 1)[0]


def _unprefixed(reference: str) -> str:
    """The reference without its ARN or partial-ARN prefix: `name` or `name:qualifier`."""
    return reference.split(":function:", 1)[1] if ":function:" in reference else reference


def _route(name: str, value: object) -> FunctionRoute:
    where = f"function route {name!r}"
    if isinstance(value, str):
        url, timeout = value, DEFAULT_TIMEOUT_SECONDS
    elif isinstance(value, Mapping):
        unknown = sorted(set(value) - {"url", "timeoutSeconds"})
        if unknown:
            raise FunctionRoutesError(
                f"{where} has {unknown[0]!r}; it takes url and timeoutSeconds"
            )
        given_url = value.get("url")
        if not isinstance(given_url, str):
            raise FunctionRoutesError(f"{where} needs a url")
        url = given_url
        timeout = value.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise FunctionRoutesError(
                f"{where} timeoutSeconds must be a number of seconds above 0, not {timeout!r}"
            )
    else:
        raise FunctionRoutesError(
            f"{where} must be a URL or {{url, timeoutSeconds}}, not {value!r}"
        )
    _check_url(url.replace(FUNCTION_PLACEHOLDER, "f"), where)
    if FUNCTION_PLACEHOLDER in url and name != FALLBACK_KEY:
        raise FunctionRoutesError(f"{where}: only the {FALLBACK_KEY!r} route may hold {{function}}")
    return FunctionRoute(url.strip(), float(timeout))


def _check_url(url: str, where: str) -> None:
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise FunctionRoutesError(f"{where} has an invalid URL {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FunctionRoutesError(
            f"{where} must be an http:// or https:// URL with a host, not {url!r}"
        )
