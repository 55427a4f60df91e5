"""The production gateway: one public port in front of the per-service processes.

API calls are routed on the X-Amz-Target prefix, git smart HTTP on the /v1/repos path (and
nothing outside it: the services' operator endpoints are never reached through here); SigV4
is verified by the service that answers, so the Host header passes through.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

import httpx
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from forgeline.core import identity
from forgeline.core.http_responses import aws_json_response
from forgeline.core.protocol import wire
from forgeline.core.protocol.catalog import APIS, target_prefixes
from forgeline.core.protocol.errors import AwsError

log = logging.getLogger("forgeline.gateway")


class GatewayProxy:
    """Gateway in the production stack: forwards each API call to the owning service."""

    def __init__(self, upstreams: dict[str, str]) -> None:
        self.upstreams = upstreams
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(300.0, connect=5.0))
        self.app_by_prefix = {
            prefix: next(spec.app for spec in APIS if spec.model_name == model)
            for prefix, model in target_prefixes().items()
        }

    async def __call__(self, request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        app = self.app_by_prefix.get(target.partition(".")[0])
        upstream = self.upstreams.get(app or "")
        if upstream is None:
            error = AwsError(
                f"Operation {target!r} is not recognized by this endpoint.",
                code="UnknownOperationException",
            )
            return aws_json_response(400, error.body(), identity.new_request_id())
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if k.lower() not in ("host", "content-length")
        ]
        # Services verify SigV4 over the Host the client signed, so pass it through.
        headers.append(("host", request.headers.get("host", "")))
        try:
            upstream_response = await self.client.request(
                request.method, upstream + "/", content=await request.body(), headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning("upstream %s unreachable: %s", app, exc)
            # 503 is what boto3 retries: the service may be restarting.
            error = AwsError(
                f"The {app} service is not reachable right now; retry shortly.",
                code="ServiceUnavailableException",
                status=503,
            )
            return aws_json_response(503, error.body(), identity.new_request_id())
        return Response(
            upstream_response.content,
            status_code=upstream_response.status_code,
            headers={
                k: v
                for k, v in upstream_response.headers.items()
                if k.lower() in ("content-type", "x-amzn-requestid", wire.QUERY_ERROR_HEADER)
            },
        )

    async def forward_git(self, request: Request) -> Response:
        """git smart HTTP (/v1/repos/...) to the repo service, streamed both ways."""
        upstream = self.upstreams.get("repo")
        if upstream is None:
            return Response("No repo service is configured.\n", status_code=404)
        # The Host header stays: git passwords are signed over the host the client used.
        headers = [
            (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP_HEADERS
        ]
        target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        if _leaves_the_repositories(target):
            # The HTTP client would resolve `..` and send /v1/repos/../../metrics as /metrics:
            # the repo service's operator endpoints, asked from the gateway's own address.
            return Response("Not found.\n", status_code=404)
        if request.url.query:
            target += "?" + request.url.query
        outgoing = self.client.build_request(
            request.method,
            upstream + target,
            headers=headers,
            content=request.stream() if request.method == "POST" else None,
        )
        try:
            incoming = await self.client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            log.warning("repo service unreachable: %s", exc)
            return Response("The repository service is unavailable.\n", status_code=502)
        return StreamingResponse(
            incoming.aiter_raw(),
            status_code=incoming.status_code,
            headers={
                k: v for k, v in incoming.headers.items() if k.lower() not in _HOP_BY_HOP_HEADERS
            },
            background=BackgroundTask(incoming.aclose),
        )


def _leaves_the_repositories(raw_path: str) -> bool:
    """Whether a git path has a `.` or `..` segment (percent-encoded or not): git never
    sends one, and resolved it could name a path outside /v1/repos/."""
    path = raw_path.split("?", 1)[0]
    return any(unquote(segment) in (".", "..") for segment in path.split("/"))


# Headers that describe one connection, not the message: never forwarded as they are.
_HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
