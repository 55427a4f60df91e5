"""The HTTP face of Forgeline: one FastAPI app per service, or all of them behind the gateway.

`create_app(apps=None)` serves every service in this process (the embedded default and the
gateway); `create_app(apps=["build"])` serves one, as the production stack runs it. With
FORGELINE_SERVICE_URLS set, the gateway forwards each API call to the service that owns it.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from forgeline.core import identity, lifecycle
from forgeline.core.build_clients import BuildClients
from forgeline.core.context import RequestContext
from forgeline.core.cors import CorsMiddleware, CorsPolicy
from forgeline.core.db import is_quick_read
from forgeline.core.gateway import GatewayProxy
from forgeline.core.http_responses import aws_json_response
from forgeline.core.manifest import ClaimingEndpoint, resolve, serving
from forgeline.core.observability import LATENCY, REQUESTS, metrics_text
from forgeline.core.protocol import wire
from forgeline.core.protocol.dispatch import Dispatcher, ResolvedOperation, error_status
from forgeline.core.protocol.errors import AwsError
from forgeline.core.protocol.provider import is_long_poll
from forgeline.core.providers import load_providers
from forgeline.core.settings import SERVICE_NAMES, Settings, get_settings, is_loopback_host

log = logging.getLogger("forgeline.api")

# Threads for long polls (one per waiting agent); they mostly sleep on an event.
LONG_POLL_THREADS = 2000

JSON_CONTENT_TYPES = (
    "application/x-amz-json-1.1",
    "application/x-amz-json-1.0",
    "application/json",
)


class AwsJsonEndpoint:
    """Handles `POST /` for the APIs this process serves, as a plain ASGI app.

    It sits in front of FastAPI's middleware and routing (see `ForgelineApp`): an API call
    needs none of them, and skipping them halves the per-request overhead.
    """

    def __init__(self, settings: Settings, apps: list[str]) -> None:
        self.settings = settings
        self.apps = apps
        self.dispatcher = Dispatcher(load_providers(apps))
        self._quick_reads: dict[tuple[str, str], bool] = {}
        self._long_polls: dict[tuple[str, str], bool] = {}
        # Made on first use: a limiter belongs to the event loop that serves the requests.
        self._long_poll_limiter: anyio.CapacityLimiter | None = None

    def _is_long_poll(self, resolved: ResolvedOperation) -> bool:
        key = (resolved.spec.model_name, resolved.name)
        marked = self._long_polls.get(key)
        if marked is None:
            provider = resolved.provider
            marked = provider.is_implemented(resolved.name) and is_long_poll(
                provider.handler_for(resolved.name)
            )
            self._long_polls[key] = marked
        return marked

    async def _run_long_poll(self, *args: Any) -> tuple[dict[str, Any], str]:
        """A long poll waits on threads of its own: a thousand waiting agents must not take
        the threads (settings.api_threads) that every other API call needs."""
        if self._long_poll_limiter is None:
            self._long_poll_limiter = anyio.CapacityLimiter(LONG_POLL_THREADS)
        return await anyio.to_thread.run_sync(self._run, *args, limiter=self._long_poll_limiter)

    def _is_quick_read(self, resolved: ResolvedOperation) -> bool:
        """Handlers marked `quick_read` run on the event loop: under load the hop to a
        worker thread (and the GIL hand-offs that follow) costs more than they do."""
        key = (resolved.spec.model_name, resolved.name)
        quick = self._quick_reads.get(key)
        if quick is None:
            provider = resolved.provider
            quick = provider.is_implemented(resolved.name) and is_quick_read(
                provider.handler_for(resolved.name)
            )
            self._quick_reads[key] = quick
        return quick

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = Headers(scope=scope)
        request_id = headers.get("x-amzn-requestid-override") or identity.new_request_id()
        resolved: ResolvedOperation | None = None
        account = None
        try:
            body = await self._read_body(headers, receive)
            resolved = self.dispatcher.resolve(headers.get("x-amz-target"))
            self._check_content_type(headers, wire.content_type(resolved.operation.service_model))
            if self._is_quick_read(resolved):
                result, account = self._run(scope, headers, body, resolved, request_id)
            elif self._is_long_poll(resolved):
                result, account = await self._run_long_poll(
                    scope, headers, body, resolved, request_id
                )
            else:
                result, account = await run_in_threadpool(
                    self._run, scope, headers, body, resolved, request_id
                )
            status, payload = 200, result
        except AwsError as error:
            status, payload = error_status(resolved, error), error.body()
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            status = 500
            payload = {
                "__type": "InternalFailure",
                "message": "The server hit an unexpected error.",
            }
        service = resolved.spec.model_name if resolved else "unknown"
        operation = resolved.name if resolved else "unknown"
        elapsed = time.perf_counter() - started
        REQUESTS.labels(service, operation, str(status)).inc()
        LATENCY.labels(service, operation).observe(elapsed)
        log.info(
            "request",
            extra={
                "request_id": request_id,
                "account": account,
                "service": service,
                "operation": operation,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "error": payload.get("__type") if status >= 400 else None,
            },
        )
        model = resolved.operation.service_model if resolved else None
        await aws_json_response(
            status,
            payload,
            request_id,
            content_type=wire.content_type(model),
            headers=wire.error_headers(model, payload["__type"], status) if status >= 400 else None,
        )(scope, receive, send)

    async def _read_body(self, headers: Headers, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _check_content_type(headers: Headers, expected: str) -> None:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in JSON_CONTENT_TYPES:
            raise AwsError(
                f"Content type {content_type!r} is not supported; send {expected}.",
                code="UnsupportedMediaTypeException",
                status=415,
            )

    def _run(
        self,
        scope: Scope,
        headers: Headers,
        body: bytes,
        resolved: ResolvedOperation,
        request_id: str,
    ) -> tuple[dict[str, Any], str]:
        who = identity.authenticate(
            method=scope["method"],
            raw_path=scope.get("raw_path", b"/").decode("latin-1") or "/",
            query_string=scope.get("query_string", b"").decode("latin-1"),
            headers=headers.items(),
            body=body,
            signing_name=resolved.operation.service_model.signing_name,
            settings=self.settings,
        )
        params = self.dispatcher.parse_body(resolved, body)
        ctx = RequestContext(
            account_id=who.account_id,
            region=who.region,
            principal_arn=who.principal_arn,
            access_key_id=who.access_key_id,
            service=resolved.spec.model_name,
            operation=resolved.name,
            request_id=request_id,
        )
        return self.dispatcher.invoke(resolved, ctx, params), who.account_id


class ForgelineApp(FastAPI):
    """FastAPI with a short path for AWS API calls: `POST /` skips the middleware stack.

    Everything else (health, readiness, metrics, git, lifespan) goes through FastAPI.
    """

    api_endpoint: AwsJsonEndpoint | None = None
    # Endpoints a service declares that tell their requests apart themselves (S3).
    claiming_endpoints: tuple[ClaimingEndpoint, ...] = ()
    cors: CorsMiddleware | None = None  # set when some origin is allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cors = self.cors
        if cors is not None and scope["type"] == "http":
            await cors(scope, receive, send)
            return
        await self._route(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.api_endpoint
        if (
            endpoint is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/"
        ):
            await endpoint(scope, receive, send)
            return
        # S3 requests are told apart by their credential scope, not by path.
        if scope["type"] == "http":
            for claiming in self.claiming_endpoints:
                if await claiming.claims(scope, self.router.routes):
                    await claiming(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


def _too_large(limit: int) -> AwsError:
    return AwsError(
        f"The request body exceeds the limit of {limit} bytes.",
        code="RequestEntityTooLargeException",
        status=413,
    )


def _refused_to_builds(request: Request, build_clients: BuildClients) -> Response | None:
    """The answer to a build asking for an operator's endpoint; None for anyone else."""
    if not build_clients.includes(request.client.host if request.client else None):
        return None
    return JSONResponse(
        {
            "__type": "AccessDeniedException",
            "message": f"{request.url.path} is an operator endpoint; it is not served to builds.",
        },
        status_code=403,
    )


def _mount_service_routes(app: FastAPI, apps: list[str], settings: Settings) -> None:
    """Routes a service serves besides the AWS API (git smart HTTP, build log links),
    as the manifests of the services this process serves declare them."""
    for manifest in serving(apps):
        for mount in manifest.http_mounts:
            resolve(mount)(app, settings)


def create_app(apps: list[str] | None = None, settings: Settings | None = None) -> ForgelineApp:
    settings = settings or get_settings()
    apps = list(apps or SERVICE_NAMES)
    proxy_map = settings.service_url_map() if len(apps) == len(SERVICE_NAMES) else {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Only the process that serves every API (embedded default or gateway) makes the
        # first account's credentials, so services starting together cannot race to it.
        runtime = lifecycle.start(settings, bootstrap=len(apps) == len(SERVICE_NAMES))
        import anyio.to_thread

        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        # What start-up loaded (API models, ORM mappings) lives as long as the process; out of
        # the collector's sight, full collections stop pausing requests for tens of ms.
        gc.freeze()
        try:
            yield
        finally:
            runtime.stop()

    app = ForgelineApp(
        title="Forgeline", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    if proxy_map:
        gateway = GatewayProxy(proxy_map)
        app.add_api_route("/", gateway, methods=["POST"], include_in_schema=False)
        app.add_api_route(
            "/v1/repos/{git_path:path}",
            gateway.forward_git,
            methods=["GET", "POST"],
            include_in_schema=False,
        )
    else:
        endpoint = AwsJsonEndpoint(settings, apps)
        app.api_endpoint = endpoint
        # Also routed, so FastAPI answers other methods on `/` as before (405).
        app.router.routes.append(Route("/", endpoint, methods=["POST"], include_in_schema=False))
        _mount_service_routes(app, apps, settings)

    app.claiming_endpoints = tuple(
        resolve(factory)(settings) for manifest in serving(apps) for factory in manifest.endpoints
    )
    cors_policy = CorsPolicy.from_settings(settings)
    if cors_policy.enabled:
        app.cors = CorsMiddleware(app._route, cors_policy)

    # Builds reach this port too (their URLs name it): the operator's endpoints below
    # (readiness, metrics, reset) refuse them, each in its own handler, so no other route to
    # the same handler gets round the rule. /health stays open to everyone: it answers a
    # constant and touches nothing.
    build_clients = BuildClients(settings)

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, Any]:
        return {"status": "ok", "services": apps}

    @app.get("/ready", include_in_schema=False)
    def ready(request: Request) -> Response:
        refused = _refused_to_builds(request, build_clients)
        if refused is not None:
            return refused
        checks = lifecycle.readiness(settings)
        status = 200 if all(item["ok"] for item in checks.values()) else 503
        return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        refused = _refused_to_builds(request, build_clients)
        if refused is not None:
            return refused
        return Response(metrics_text(), media_type="text/plain; version=0.0.4")

    # `/moto-api/reset` is moto's path for the same thing: a suite written against moto's
    # server switches to Forgeline by changing only its endpoint. Same rule, same answer.
    @app.post("/_forgeline/reset", include_in_schema=False)
    @app.post("/moto-api/reset", include_in_schema=False)
    def reset(request: Request) -> Response:
        refused = _refused_to_builds(request, build_clients)
        if refused is not None:
            return refused
        client = request.client.host if request.client else ""
        if not (
            settings.allow_reset and is_loopback_host(settings.host) and is_loopback_host(client)
        ):
            return JSONResponse(
                {
                    "__type": "AccessDeniedException",
                    "message": "Reset is disabled; set FORGELINE_ALLOW_RESET=1 on a loopback server.",
                },
                status_code=403,
            )
        wiped = lifecycle.reset_state(settings)
        # moto answers {"status": "ok"}; the rest says what was wiped.
        return JSONResponse({"status": "ok", "reset": True, "tables": wiped})

    return app
