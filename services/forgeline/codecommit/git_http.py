"""Git smart HTTP at /v1/repos/<name>, served by git itself and streamed both ways.

    GET  /v1/repos/<name>/info/refs?service=git-upload-pack|git-receive-pack
    POST /v1/repos/<name>/git-upload-pack
    POST /v1/repos/<name>/git-receive-pack

Each request runs `git upload-pack|receive-pack --stateless-rpc` on the repository's
bare directory. The request body goes into its stdin as it arrives (gunzipped on the
fly when the client compressed it) and its stdout goes out as it is produced, so a pack
is never held in memory. This is a plain ASGI app rather than a FastAPI route because
both directions must stream at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import re
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import anyio.to_thread
import pygit2
from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codecommit import git_auth, git_hooks, gitstore, storage
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.db import session_scope
from forgeline.core.observability import LATENCY, REQUESTS
from forgeline.core.settings import Settings

log = logging.getLogger("forgeline.git")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SERVICES = ("git-upload-pack", "git-receive-pack")
READ_SIZE = 256 * 1024
PIPE_SIZE = 1024 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_ROUTE_RE = re.compile(r"(/v1/repos/([^/]+))/(info/refs|git-upload-pack|git-receive-pack)")
# GIT_PROTOCOL is "key[=value]" entries joined by colons, e.g. "version=2".
_PROTOCOL_RE = re.compile(r"[A-Za-z0-9._=:-]{1,256}")
NO_CACHE = [
    (b"cache-control", b"no-cache, max-age=0, must-revalidate"),
    (b"expires", b"Fri, 01 Jan 1980 00:00:00 GMT"),
    (b"pragma", b"no-cache"),
]


class HttpError(Exception):
    def __init__(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


class _ClientGone(Exception):
    """The client disconnected before its request body was complete."""


@dataclasses.dataclass(frozen=True)
class GitRequest:
    service: str  # git-upload-pack | git-receive-pack
    advertise: bool  # GET info/refs
    repo_path: str  # /v1/repos/<name>, as the client addressed it
    name: str
    headers: dict[str, str]

    @property
    def content_type(self) -> str:
        kind = "advertisement" if self.advertise else "result"
        return f"application/x-{self.service}-{kind}"

    @property
    def git_protocol(self) -> str | None:
        value = self.headers.get("git-protocol", "").strip()
        return value if _PROTOCOL_RE.fullmatch(value) else None


@dataclasses.dataclass(frozen=True)
class Target:
    repository_id: str
    account_id: str
    path: Path
    principal_arn: str


def parse_request(scope: Scope) -> GitRequest:
    """The git operation a request asks for; HttpError if it is not one."""
    path = scope.get("path", "")
    match = _ROUTE_RE.fullmatch(path)
    if match is None:
        # The dumb protocol (objects/, HEAD) is not served, as on CodeCommit.
        raise HttpError(404, "Not found: Forgeline serves git's smart HTTP protocol only.")
    repo_path, raw_name, action = match.groups()
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
    }
    method = scope.get("method", "GET")
    if action == "info/refs":
        if method not in ("GET", "HEAD"):
            raise HttpError(405, "Use GET for info/refs.", [(b"allow", b"GET")])
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        service = (query.get("service") or [""])[0]
        if service not in SERVICES:
            raise HttpError(403, "Forgeline serves git's smart HTTP protocol only.")
        return GitRequest(service, True, repo_path, unquote(raw_name), headers)
    if method != "POST":
        raise HttpError(405, f"Use POST for {action}.", [(b"allow", b"POST")])
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != f"application/x-{action}-request":
        raise HttpError(415, f"Expected Content-Type application/x-{action}-request.")
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise HttpError(415, f"Unsupported Content-Encoding {encoding!r}.")
    return GitRequest(action, False, repo_path, unquote(raw_name), headers)


def _pkt_line(text: str) -> bytes:
    data = text.encode("utf-8")
    return f"{len(data) + 4:04x}".encode("ascii") + data


class GitHttpApp:
    """The ASGI app behind /v1/repos/."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hooks_dir = git_hooks.install_hooks(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        service, status, account = "unknown", 500, None
        try:
            request = parse_request(scope)
            service = request.service
            target = await anyio.to_thread.run_sync(self._resolve, request)
            account = target.account_id
            status = await self._serve(request, target, receive, send)
        except HttpError as error:
            status = error.status
            await _send_text(send, error.status, error.message, error.headers)
        elapsed = time.perf_counter() - started
        REQUESTS.labels("codecommit-git", service, str(status)).inc()
        LATENCY.labels("codecommit-git", service).observe(elapsed)
        log.info(
            "git request",
            extra={
                "account": account,
                "service": "codecommit-git",
                "operation": service,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )

    # --- who and which repository ----------------------------------------------------------

    def _resolve(self, request: GitRequest) -> Target:
        # Read-only: on SQLite, git requests then never queue behind API writes.
        with session_scope(self.settings.resolved_database_url, readonly=True) as session:
            try:
                identity = git_auth.authenticate(
                    session,
                    self.settings,
                    request.headers.get("authorization"),
                    repo_path=request.repo_path,
                    host=request.headers.get("host", ""),
                    repository_name=request.name,
                )
            except git_auth.GitAuthError as error:
                realm = f'Basic realm="{git_auth.REALM}"'.encode()
                raise HttpError(401, str(error), [(b"www-authenticate", realm)]) from None
            repository = self._find_repository(session, identity, request.name)
            if repository is None:
                raise HttpError(404, f"Repository {request.name} does not exist.")
            target = Target(
                repository.id,
                repository.account_id,
                storage.repository_path(self.settings, repository.id),
                identity.principal_arn,
            )
            default_branch = repository.default_branch
        if not target.path.is_dir():
            raise HttpError(404, f"Repository {request.name} has no storage.")
        if request.advertise:
            # HEAD follows the default branch, whoever changed it: clones check it out, and
            # git refuses to delete it by push, as CodeCommit refuses to delete the default.
            _sync_head(target.path, default_branch)
        return target

    def _find_repository(
        self, session: Session, identity: git_auth.GitIdentity, name: str
    ) -> Repository | None:
        query = select(Repository).where(
            Repository.account_id == identity.account_id, Repository.name == name
        )
        if identity.region is not None:
            return session.scalars(query.where(Repository.region == identity.region)).first()
        # Credentials that name no region: the default region's repository, else the only one.
        candidates = list(session.scalars(query))
        for repository in candidates:
            if repository.region == self.settings.default_region:
                return repository
        return candidates[0] if len(candidates) == 1 else None

    # --- running git -----------------------------------------------------------------------

    def _command(self, request: GitRequest, target: Target) -> list[str]:
        command = ["git"]
        if request.service == "git-receive-pack":
            # CodeCommit accepts force pushes; the hook reports every ref change.
            command += ["-c", f"core.hooksPath={self.hooks_dir}"]
            command += ["-c", "receive.denyNonFastForwards=false"]
        else:
            command += ["-c", "uploadpack.allowFilter=true"]
        command += [request.service.removeprefix("git-"), "--stateless-rpc"]
        if request.advertise:
            command.append("--advertise-refs")
        command.append(str(target.path))
        return command

    def _environment(self, request: GitRequest, ref_log: str | None) -> dict[str, str]:
        # The server's own GIT_* variables (GIT_DIR and the like) must not leak into git.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("GIT_") and key != git_hooks.REF_LOG_ENV
        }
        if request.git_protocol:
            env["GIT_PROTOCOL"] = request.git_protocol
        if ref_log:
            env[git_hooks.REF_LOG_ENV] = ref_log
        return env

    async def _serve(
        self, request: GitRequest, target: Target, receive: Receive, send: Send
    ) -> int:
        ref_log = None
        if request.service == "git-receive-pack" and not request.advertise:
            handle, ref_log = tempfile.mkstemp(prefix="forgeline-push-", suffix=".refs")
            os.close(handle)
        try:
            return await self._run_git(request, target, receive, send, ref_log)
        finally:
            if ref_log:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(ref_log)

    async def _run_git(
        self,
        request: GitRequest,
        target: Target,
        receive: Receive,
        send: Send,
        ref_log: str | None,
    ) -> int:
        # git's stdin and stdout are pipes of our own, enlarged: a pack streams through
        # them in fewer, larger steps than the default 64 KiB pipes allow.
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        try:
            for fd in (stdin_write, stdout_write):
                _enlarge_pipe(fd)
            process = await asyncio.create_subprocess_exec(
                *self._command(request, target),
                stdin=stdin_read,
                stdout=stdout_write,
                stderr=asyncio.subprocess.PIPE,
                env=self._environment(request, ref_log),
            )
        except BaseException:
            os.close(stdin_write)
            os.close(stdout_read)
            raise
        finally:
            os.close(stdin_read)
            os.close(stdout_write)
        stdin = await _writer(stdin_write)
        stdout, stdout_transport = await _reader(stdout_read)
        assert process.stderr
        errors = asyncio.create_task(_tail(process.stderr))
        if request.advertise:
            stdin.close()
            feeder: asyncio.Task[None] | None = None
        else:
            gzipped = request.headers.get("content-encoding", "").strip().lower() in (
                "gzip",
                "x-gzip",
            )
            feeder = asyncio.create_task(_feed(receive, stdin, gzipped))
        watcher = asyncio.create_task(self._stop_on_disconnect(request, process, feeder, receive))
        response_started = False
        try:
            pending = _pkt_line(f"# service={request.service}\n") + b"0000"
            if not request.advertise:
                pending = b""
            while chunk := await stdout.read(READ_SIZE):
                if not response_started:
                    await _start(send, 200, request.content_type)
                    response_started = True
                await send(
                    {"type": "http.response.body", "body": pending + chunk, "more_body": True}
                )
                pending = b""
            returncode = await process.wait()
            body_error = await _outcome(feeder)
            if ref_log:
                await self._record_push(target, Path(ref_log))
            if not response_started:
                status, body = self._empty_outcome(request, returncode, body_error, await errors)
                if status != 200:
                    await _send_text(send, status, body)
                    return status
                await _start(send, 200, request.content_type)
                await send({"type": "http.response.body", "body": pending, "more_body": True})
            elif returncode != 0:
                log.warning(
                    "git exited %s: %s", returncode, (await errors).decode(errors="replace")
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return 200
        finally:
            stdout_transport.close()
            stdin.close()
            watcher.cancel()
            for task in (feeder, errors):
                if task is not None and not task.done():
                    task.cancel()
            if process.returncode is None:
                await _stop(process)

    async def _stop_on_disconnect(
        self,
        request: GitRequest,
        process: asyncio.subprocess.Process,
        feeder: asyncio.Task[None] | None,
        receive: Receive,
    ) -> None:
        """Stop upload-pack when its client hangs up; receive-pack finishes on its own."""
        if feeder is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(feeder)
        elif (await receive())["type"] != "http.request":
            return
        message = await receive()
        if message["type"] == "http.disconnect" and request.service == "git-upload-pack":
            await _stop(process)

    @staticmethod
    def _empty_outcome(
        request: GitRequest, returncode: int, body_error: BaseException | None, stderr: bytes
    ) -> tuple[int, str]:
        if isinstance(body_error, HttpError):
            return body_error.status, body_error.message
        if returncode == 0:
            return 200, ""
        log.warning("git %s failed (%s): %s", request.service, returncode, stderr[-2000:])
        return 500, f"{request.service} failed."

    async def _record_push(self, target: Target, ref_log: Path) -> None:
        changes = git_hooks.read_ref_log(ref_log)
        if not changes:
            return
        try:
            default_branch = await anyio.to_thread.run_sync(
                git_hooks.record_push,
                self.settings,
                target.repository_id,
                changes,
                target.principal_arn,
            )
            await anyio.to_thread.run_sync(_sync_head, target.path, default_branch)
        except Exception:
            # The refs moved on disk already; the client's push succeeded either way.
            log.exception("recording a push to %s failed", target.repository_id)


async def _feed(receive: Receive, stdin: asyncio.StreamWriter, gzipped: bool) -> None:
    """Copy the request body into git's stdin as it arrives, gunzipping if needed."""
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if gzipped else None
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone()
            data = message.get("body", b"")
            if decompressor is None:
                if data:
                    stdin.write(data)
                    await stdin.drain()
            else:
                # Inflate in bounded steps: a small body may expand enormously.
                while data:
                    try:
                        output = decompressor.decompress(data, READ_SIZE)
                    except zlib.error as error:
                        raise HttpError(400, f"The gzip request body is corrupt: {error}") from None
                    data = decompressor.unconsumed_tail
                    if output:
                        stdin.write(output)
                        await stdin.drain()
            if not message.get("more_body", False):
                break
        if decompressor is not None and not decompressor.eof:
            raise HttpError(400, "The gzip request body is truncated.")
    except (BrokenPipeError, ConnectionResetError):
        pass  # git stopped reading; its exit status and output tell the rest
    finally:
        stdin.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await stdin.wait_closed()


def _enlarge_pipe(fd: int) -> None:
    # Linux lets any process grow a pipe to fs.pipe-max-size (1 MiB by default).
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)


async def _writer(fd: int) -> asyncio.StreamWriter:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
        os.fdopen(fd, "wb", buffering=0),
    )
    return asyncio.StreamWriter(transport, protocol, None, loop)


async def _reader(fd: int) -> tuple[asyncio.StreamReader, asyncio.ReadTransport]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=PIPE_SIZE)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    return reader, transport


async def _outcome(task: asyncio.Task[None] | None) -> BaseException | None:
    if task is None:
        return None
    try:
        await task
    except (HttpError, _ClientGone) as error:
        return error
    return None


async def _tail(stream: asyncio.StreamReader, limit: int = 64 * 1024) -> bytes:
    kept = b""
    while chunk := await stream.read(READ_SIZE):
        kept = (kept + chunk)[-limit:]
    return kept


async def _stop(process: asyncio.subprocess.Process) -> None:
    # SIGTERM first: git removes its lock files on it, SIGKILL would leave them behind.
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


async def _start(send: Send, status: int, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type.encode("ascii")), *NO_CACHE],
        }
    )


async def _send_text(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = (message + "\n").encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                *NO_CACHE,
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _sync_head(path: Path, default_branch: str | None) -> None:
    """gitstore.sync_head for the repository at PATH; nothing if it is gone meanwhile."""
    if not (path / "HEAD").is_file():
        return
    gitstore.sync_head(pygit2.Repository(str(path)), default_branch)
