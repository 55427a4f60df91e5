"""The S3 endpoint as a plain ASGI app: authenticate, route, run the operation, answer.

An operation is ordinary blocking code (the blob store is synchronous), so each request
runs in a worker thread; the request body and the response travel between that thread
and the event loop one ASGI message at a time, so neither is ever held whole in memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from anyio.lowlevel import EventLoopToken
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from forgeline.core import identity
from forgeline.core.blobstore import BlobStore, get_blob_store
from forgeline.core.observability import LATENCY, REQUESTS
from forgeline.core.settings import Settings
from forgeline.s3 import auth, buckets
from forgeline.s3.body import ReceiveStream
from forgeline.s3.errors import S3Error
from forgeline.s3.exchange import S3Request, S3Response
from forgeline.s3.routing import route
from forgeline.s3.xmlio import error_document

log = logging.getLogger("forgeline.s3")

# A refused upload's body is read and dropped up to this size, so the client sees the
# error instead of a reset connection; larger bodies get `Connection: close` instead.
_DRAIN_LIMIT = 64 * 1024 * 1024


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class S3Endpoint:
    """Answers path-style S3 requests over the blob store the settings configure."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: BlobStore | None = None

    @property
    def store(self) -> BlobStore:
        if self._store is None:
            self._store = get_blob_store(self.settings)
        return self._store

    async def claims(self, scope: Scope, routes: list[Any]) -> bool:
        """Whether this request is for S3: signed for `s3`, or unsigned and addressed to
        a bucket on a path no other route serves (it will be refused as anonymous)."""
        query = scope.get("query_string", b"").decode("latin-1")
        authorization = _header(scope, b"authorization")
        if auth.is_s3_signed(authorization, query):
            return True
        if authorization is not None or "X-Amz-Credential=" in query:
            return False
        if any(route.matches(scope)[0] != Match.NONE for route in routes):
            return False
        first = scope["path"].lstrip("/").split("/", 1)[0]
        if buckets.bucket_name_problem(first) is not None:
            return False
        # The registry may be in a remote store: look it up off the event loop.
        found = await anyio.to_thread.run_sync(buckets.get_bucket, self.store, first)
        return found is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = anyio.lowlevel.current_token()
        await anyio.to_thread.run_sync(self._handle, scope, receive, send, loop)

    # -- in the worker thread ------------------------------------------------------------

    def _handle(self, scope: Scope, receive: Receive, send: Send, loop: EventLoopToken) -> None:
        started = time.perf_counter()
        request_id = identity.new_request_id()
        method = scope["method"]
        header_pairs = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in scope.get("headers", ())
        ]
        headers: dict[str, str] = {}
        for name, value in header_pairs:
            headers.setdefault(name, value)
        body = ReceiveStream(receive, loop)
        operation, account, status, code = "unknown", None, 500, None
        sent = _Sender(send, loop, method == "HEAD", request_id)
        try:
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
            query_string = scope.get("query_string", b"").decode("latin-1")
            caller = auth.authenticate(
                method=method,
                raw_path=raw_path.decode("latin-1"),
                query_string=query_string,
                headers=header_pairs,
                settings=self.settings,
            )
            account = caller.account_id
            bucket, key = _split_path(raw_path)
            query: dict[str, str] = {}
            for name, value in parse_qsl(query_string, keep_blank_values=True):
                query.setdefault(name, value)
            operation, handler = route(method, bucket, key, query, headers)
            request = S3Request(
                method=method,
                bucket=bucket,
                key=key,
                query=query,
                headers=headers,
                caller=caller,
                body=body,
                store=self.store,
                request_id=request_id,
                base_url=_base_url(scope, headers),
            )
            response = handler(request)
            status = response.status
            sent.response(response)
        except S3Error as error:
            status, code = error.status, error.code
            if sent.started:
                log.warning(
                    "response interrupted: %s", error.message, extra={"request_id": request_id}
                )
                return
            closing = not self._drain(body, headers)
            sent.error(error, closing)
        except ClientDisconnect:
            status = 499
        except Exception:
            status, code = 500, "InternalError"
            if sent.started:
                # Too late for an error document: the client sees the response cut short.
                log.warning("response interrupted", exc_info=True, extra={"request_id": request_id})
                return
            log.exception("unhandled error", extra={"request_id": request_id})
            internal = S3Error(
                "InternalError", "We encountered an internal error. Please try again.", 500
            )
            sent.error(internal, not self._drain(body, headers))
        finally:
            elapsed = time.perf_counter() - started
            REQUESTS.labels("s3", operation, str(status)).inc()
            LATENCY.labels("s3", operation).observe(elapsed)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "account": account,
                    "service": "s3",
                    "operation": operation,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "error": code,
                },
            )

    @staticmethod
    def _drain(body: ReceiveStream, headers: dict[str, str]) -> bool:
        """Read the rest of a refused request's body; False when the connection must close."""
        if body.finished:
            return True
        if "expect" in headers:
            return False  # the client waits for our answer before sending the body
        length = headers.get("content-length", "")
        if not length.isdigit() or int(length) > _DRAIN_LIMIT:
            return False
        try:
            while body.read(1024 * 1024):
                pass
        except ClientDisconnect:
            return False
        return True


def _split_path(raw_path: bytes) -> tuple[str, str]:
    """(bucket, key) of a path-style request; the key keeps every slash it was given."""
    try:
        path = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.") from None
    bucket, _, key = path.removeprefix("/").partition("/")
    return bucket, key


def _base_url(scope: Scope, headers: dict[str, str]) -> str:
    host = headers.get("host", "localhost")
    return f"{scope.get('scheme', 'http')}://{host}"


class _Sender:
    """Sends one response from the worker thread through the event loop."""

    def __init__(self, send: Send, loop: EventLoopToken, head: bool, request_id: str) -> None:
        self._send = send
        self._loop = loop
        self._head = head
        self._request_id = request_id
        self.started = False

    def _message(self, message: dict[str, Any]) -> None:
        anyio.from_thread.run(self._send, message, token=self._loop)  # type: ignore[arg-type]

    def _start(self, status: int, headers: dict[str, str]) -> None:
        headers = {
            **headers,
            "x-amz-request-id": self._request_id,
            "x-amz-id-2": self._request_id,
        }
        self.started = True
        self._message(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (name.lower().encode("latin-1"), _header_bytes(value))
                    for name, value in headers.items()
                ],
            }
        )

    def response(self, response: S3Response) -> None:
        headers = dict(response.headers)
        body = response.body
        if isinstance(body, bytes) and "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        self._start(response.status, headers)
        if self._head:
            if not isinstance(body, bytes):
                _close(body)
            self._message({"type": "http.response.body", "body": b""})
            return
        if isinstance(body, bytes):
            self._message({"type": "http.response.body", "body": body})
            return
        try:
            for chunk in body:
                self._message({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            _close(body)
        self._message({"type": "http.response.body", "body": b""})

    def error(self, error: S3Error, closing: bool) -> None:
        document = b"" if self._head else error_document(error, self._request_id)
        headers = {"Content-Type": "application/xml", "Content-Length": str(len(document))}
        if closing:
            headers["Connection"] = "close"
        self._start(error.status, headers)
        self._message({"type": "http.response.body", "body": document})


def _header_bytes(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _close(body: Iterator[bytes]) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()
