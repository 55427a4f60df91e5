"""CORS, so a browser app (the JavaScript SDKs, a web console) can call the API directly.

The JavaScript SDKs call CodeCommit, CodeBuild and CloudWatch Logs from browsers; AWS's
endpoints answer their preflights and expose the headers the SDKs read (the request id
above all). This is a plain ASGI wrapper applied before any routing, so the fast path for
`POST /` gets it too, and a request without an `Origin` header pays one scan of its headers.

Which origins are allowed: FORGELINE_CORS_ALLOWED_ORIGINS, `*` or a comma-separated list;
unset means any origin on a loopback server and none otherwise.
"""

from __future__ import annotations

import dataclasses

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forgeline.core.settings import Settings, is_loopback_host

# What AWS's endpoints let a browser read: request ids (JSON and S3 styles), error details,
# and the standard headers clients look at.
EXPOSE_HEADERS = (
    "x-amzn-RequestId,x-amzn-ErrorType,x-amzn-ErrorMessage,x-amzn-query-error,"
    "x-amz-request-id,x-amz-id-2,Date,ETag"
)
ALLOW_METHODS = "GET,POST,PUT,DELETE,HEAD,OPTIONS"
MAX_AGE_SECONDS = "172800"  # two days: a browser need not repeat the preflight per call
# Headers every browser SDK call sends, allowed when a preflight names none.
DEFAULT_ALLOW_HEADERS = (
    "authorization,content-type,x-amz-target,x-amz-date,x-amz-security-token,"
    "x-amz-user-agent,x-amz-content-sha256,amz-sdk-invocation-id,amz-sdk-request"
)


@dataclasses.dataclass(frozen=True)
class CorsPolicy:
    any_origin: bool
    origins: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings) -> CorsPolicy:
        configured = settings.cors_allowed_origins
        if configured is None:
            return cls(any_origin=is_loopback_host(settings.host), origins=frozenset())
        entries = {entry.strip().rstrip("/") for entry in configured.split(",") if entry.strip()}
        return cls(any_origin="*" in entries, origins=frozenset(entries - {"*"}))

    @property
    def enabled(self) -> bool:
        return self.any_origin or bool(self.origins)

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin.rstrip("/") in self.origins

    def allow_origin_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        """The headers every response to an allowed origin carries."""
        if self.any_origin:
            # AWS answers `*`: calls are signed, never authenticated by cookies.
            return [(b"access-control-allow-origin", b"*")]
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"vary", b"Origin"),
        ]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class CorsMiddleware:
    """Answers preflights and adds CORS headers to responses to allowed origins."""

    def __init__(self, app: ASGIApp, policy: CorsPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.policy.enabled:
            await self.app(scope, receive, send)
            return
        raw_origin = _header(scope, b"origin")
        if raw_origin is None:
            await self.app(scope, receive, send)
            return
        origin = raw_origin.decode("latin-1")
        allowed = self.policy.allows(origin)
        if scope["method"] == "OPTIONS":
            await self._preflight(scope, send, origin if allowed else None)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return
        extra = [
            *self.policy.allow_origin_headers(origin),
            (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, send: Send, origin: str | None) -> None:
        if origin is None:
            # A disallowed origin learns nothing: no allow headers, so the browser refuses.
            await _respond(send, 403, [])
            return
        requested = _header(scope, b"access-control-request-headers")
        headers = [
            *self.policy.allow_origin_headers(origin),
            (b"access-control-allow-methods", ALLOW_METHODS.encode()),
            (b"access-control-allow-headers", requested or DEFAULT_ALLOW_HEADERS.encode()),
            (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
            (b"access-control-max-age", MAX_AGE_SECONDS.encode()),
        ]
        await _respond(send, 200, headers)


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", b"0")],
        }
    )
    await send({"type": "http.response.body", "body": b""})
