"""How `forgeline serve` runs: its ports bound first, then one or several server processes.

The ports are bound before anything is written (data directory, database, credentials,
certificate), so a busy port fails in a second with one line and leaves nothing behind.
The sockets bound here are the ones uvicorn serves: no second bind can lose a race.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import sys
from typing import Any

import click

from forgeline.cli.boundary import CliError


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _bind_error(exc: OSError, host: str, port: int, what: str, change_port: str) -> CliError:
    if exc.errno == errno.EADDRINUSE:
        return CliError(
            f"port {port} on {host} is in use{what}; stop what holds it, or choose another "
            f"with {change_port}"
        )
    reason = exc.strerror or str(exc)
    return CliError(
        f"cannot bind {host}:{port}{what}: {reason} (the address: --host or FORGELINE_HOST; "
        f"the port: {change_port})"
    )


def bind_http(settings: Any) -> socket.socket:
    try:
        return bind(settings.host, settings.port)
    except OSError as exc:
        raise _bind_error(
            exc, settings.host, settings.port, "", "--port or FORGELINE_PORT"
        ) from None


def bind_https(settings: Any) -> socket.socket | None:
    """The HTTPS endpoint's socket (it serves the whole server: git-remote-codecommit and
    CodeDeploy agents speak only HTTPS), or None.

    A port the operator chose must be free; the derived default (port + 1) may be busy,
    which only leaves HTTPS off with a warning.
    """
    from forgeline.core import tls
    from forgeline.core.settings import deprecated_names_in_use

    for warning in deprecated_names_in_use():
        click.echo(f"warning: {warning}", err=True)
    port = tls.tls_port(settings)
    if port is None:
        return None
    try:
        return bind(settings.host, port)
    except OSError as exc:
        if settings.tls_port is not None:
            raise _bind_error(
                exc, settings.host, port, " (HTTPS)", "FORGELINE_TLS_PORT (0 turns HTTPS off)"
            ) from None
        click.echo(
            f"warning: HTTPS (git, CodeDeploy agents) not served: port {port} is busy "
            f"({exc.strerror or exc}); set FORGELINE_TLS_PORT",
            err=True,
        )
        return None


def https_certificate(settings: Any, sock: socket.socket) -> Any:
    """The HTTPS certificate (made on first start) and the CA file its clients trust,
    shown once the ports are held."""
    from forgeline.core import tls

    files = tls.ensure_certificate(settings)
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    url = f"https://{shown_host}:{sock.getsockname()[1]}"
    click.echo(tls.trust_instructions(files, url), err=True)
    return files


def prepare_state(settings: Any, *, bootstrap: bool) -> None:
    """Migrate and make the first credentials before any server process starts.

    A database that cannot be reached then fails here, as one line, not inside uvicorn's
    start-up; and forked worker processes cannot race to it. Each server process repeats
    both at start-up and finds them done (milliseconds). The engines are disposed so no
    connection crosses a fork.
    """
    from forgeline.core import lifecycle
    from forgeline.core.auth import keys
    from forgeline.core.db import dispose_engines, session_scope

    lifecycle.prepare_database(settings)
    if bootstrap:
        with session_scope() as session:
            keys.ensure_bootstrap_credentials(session, settings, lifecycle.server_key(settings))
    dispose_engines()


def serve_process(
    apps: list[str],
    settings: Any,
    http_socket: socket.socket,
    https: tuple[socket.socket, Any] | None,
) -> None:
    """One server process: the HTTP API and, if enabled, HTTPS, on one event loop."""
    import uvicorn

    from forgeline.core.server import create_app

    app = create_app(apps, settings)
    http = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            timeout_graceful_shutdown=10,
            access_log=False,
        )
    )
    https_server = None
    if https is not None:
        sock, files = https
        https_server = (_https_uvicorn(app, settings, files, sock.getsockname()[1]), sock)
    with asyncio.Runner(loop_factory=http.config.get_loop_factory()) as runner:
        runner.run(_serve_together(http, http_socket, https_server))


def serve_workers(
    count: int,
    apps: list[str],
    settings: Any,
    http_socket: socket.socket,
    https: tuple[socket.socket, Any] | None,
) -> None:
    """Fork COUNT server processes that accept on the same sockets; stop them all together.

    The kernel spreads connections over the processes. If one exits, the others are
    stopped too, so a supervisor sees the server fail instead of running short-handed.
    """
    import signal

    children: list[int] = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                serve_process(apps, settings, http_socket, https)
                code = 0
            finally:
                os._exit(code)
        children.append(pid)

    def stop(_signum: int, _frame: Any) -> None:
        # Always SIGTERM: a second SIGINT (Ctrl-C reaches the children too) would make
        # uvicorn skip its graceful shutdown.
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    while children:
        pid, status = os.wait()
        if pid not in children:
            continue
        children.remove(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            failed = True
        stop(signal.SIGTERM, None)
    if failed:
        sys.exit(1)


def _https_uvicorn(app: Any, settings: Any, files: Any, port: int) -> Any:
    """The same app on the HTTPS port; the HTTP server alone runs its startup and shutdown."""
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=port,
            ssl_certfile=str(files.cert_file),
            ssl_keyfile=str(files.key_file),
            lifespan="off",
            log_config=None,
            timeout_graceful_shutdown=10,
            access_log=False,
        )
    )


async def _serve_together(
    http: Any, http_socket: socket.socket, https: tuple[Any, socket.socket] | None
) -> None:
    """Run the HTTP server and, once it has started, the HTTPS one; stop both together."""
    tasks = [asyncio.create_task(http.serve(sockets=[http_socket]))]
    if https is not None:
        while not http.started and not tasks[0].done():
            await asyncio.sleep(0.01)
        server, sock = https
        tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
    watcher = asyncio.create_task(_announce_stopping([http] + ([https[0]] if https else [])))
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    http.should_exit = True
    if https is not None:
        https[0].should_exit = True
    await asyncio.gather(*tasks)
    watcher.cancel()


async def _announce_stopping(servers: list[Any]) -> None:
    """Once a server is told to stop, tell the services (their manifests'
    on_server_stopping), so requests that wait (long polls) answer instead of holding the
    shutdown for its whole grace period."""
    from forgeline.core.manifest import run_server_stopping_hooks

    while not any(server.should_exit for server in servers):
        await asyncio.sleep(0.1)
    await asyncio.to_thread(run_server_stopping_hooks)
