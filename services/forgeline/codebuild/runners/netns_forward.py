"""Forward chosen TCP ports from inside a container's network namespace to the host.

Why this exists: a build container on network `host` shares the host's loopback, and with it
Postgres, Redis and every admin endpoint. An engine without bridge networking (dockerd
--bridge=none) offers one other mode only, `none`: a namespace with nothing but its own
loopback, and no route anywhere.
This module gives such a container exactly one way out, to Forgeline alone: it opens a
listening socket inside the container's namespace, on the very loopback address and port the
build's URLs name (say 127.0.0.1:4750), and relays each connection accepted there to the
real server on the host. Nothing else is reachable, and the build's URLs are the same in
both modes. Relayed connections can be made from an address of their own (`upstream_source`,
e.g. 127.0.0.2), so the server knows them from its other loopback clients.

How: setns(2) moves only the calling thread, and a socket belongs for good to the network
namespace it was created in. A short-lived thread enters the container's namespace, creates,
binds and listens the sockets, and ends; no other thread ever changes namespace. One
event-loop thread, in the host's namespace, then accepts on those sockets (accepted
connections belong to the container's namespace too) and connects each to its upstream on
the host.

Needs: root (CAP_SYS_ADMIN to enter another network namespace, and the right to open
/proc/<pid>/ns/net of another user's process), and this process in the host's PID namespace,
since the pid is the one the engine reports (`State.Pid`), which names the container's process
only as seen from the host. Otherwise `forward_into` raises `NamespaceUnavailable`.

A listening socket keeps the container's namespace alive after the container exits: close
the `Forwarder` when the build's container goes.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

log = logging.getLogger("forgeline.build.network")

_CLONE_NEWNET = 0x40000000  # linux/sched.h
_LISTEN_BACKLOG = 128
# A peer's unsent data above this pauses reading from the other side (asyncio's default of
# 64 KiB makes large transfers stall often for little memory saved).
_WRITE_BUFFER_HIGH = 1 << 20
DEFAULT_MAX_CONNECTIONS = 256
DEFAULT_CONNECT_TIMEOUT = 10.0
# What a container's side may send before its upstream connection is made (see _Accepted).
_EARLY_BYTES_LIMIT = 1024 * 1024


class NetnsForwardError(RuntimeError):
    """Forwarding into a container's network namespace could not be set up."""


class NamespaceUnavailable(NetnsForwardError):
    """The process's network namespace cannot be entered from here."""


class ListenFailed(NetnsForwardError):
    """A listening socket could not be opened inside the container's namespace."""


class PortForward(NamedTuple):
    """Listen on `listen_host:listen_port` in the container; relay to the host's upstream."""

    listen_host: str
    listen_port: int
    upstream_host: str
    upstream_port: int


@dataclass(frozen=True)
class _Route:
    listen: tuple[str, int]
    upstream: tuple[str, int]
    # The local address upstream connections are made from (None: the kernel's choice).
    source: str | None = None


def forward_into(
    pid: int,
    forwards: Iterable[tuple[str, int, str, int]],
    *,
    container_id: str | None = None,
    upstream_source: str | None = None,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> Forwarder:
    """Listen inside the network namespace of process `pid` and relay to the host.

    `forwards` holds (listen_host, listen_port, upstream_host, upstream_port) tuples; listen
    hosts are numeric addresses (the namespace's loopback, usually). `container_id`, when
    given, must appear in the process's cgroup path: a guard against a pid read in another PID
    namespace. `upstream_source`, a numeric address of this host (say 127.0.0.2), is where
    every upstream connection comes from, so the upstream server can tell relayed clients
    from its other ones; each upstream must then be of the same address family. Raises
    NamespaceUnavailable or ListenFailed; nothing is left open then.
    """
    routes = [_route(PortForward(*forward), upstream_source) for forward in forwards]
    if not routes:
        raise ValueError("forward_into needs at least one port to forward")
    listeners = _listen_in_namespace(pid, [route.listen for route in routes], container_id)
    try:
        return Forwarder(
            pid, list(zip(listeners, routes, strict=True)), max_connections, connect_timeout
        )
    except BaseException:
        for listener in listeners:
            listener.close()
        raise


def _route(forward: PortForward, source: str | None = None) -> _Route:
    try:
        address = ipaddress.ip_address(forward.listen_host)
    except ValueError:
        raise ValueError(
            f"listen address {forward.listen_host!r} must be a numeric IP address"
        ) from None
    try:
        source_address = None if source is None else ipaddress.ip_address(source)
    except ValueError:
        raise ValueError(f"upstream source {source!r} must be a numeric IP address") from None
    # Resolved now, so the event loop never needs a resolver thread.
    try:
        infos = socket.getaddrinfo(
            forward.upstream_host, forward.upstream_port, type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise ValueError(f"upstream {forward.upstream_host!r} does not resolve: {exc}") from None
    if source_address is not None:
        # Only an upstream address of the source's family can be reached from it.
        family = socket.AF_INET6 if source_address.version == 6 else socket.AF_INET
        infos = [info for info in infos if info[0] == family]
        if not infos:
            raise ValueError(
                f"upstream {forward.upstream_host!r} has no address of the family of the "
                f"upstream source {source!r}"
            )
    upstream_ip = str(infos[0][4][0])
    return _Route(
        (str(address), forward.listen_port),
        (upstream_ip, forward.upstream_port),
        None if source_address is None else str(source_address),
    )


# --- entering the namespace -------------------------------------------------------------


def _setns(fd: int, nstype: int) -> None:
    """setns(2) for the calling thread (Python 3.11 has no os.setns)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.setns.restype = ctypes.c_int
    if libc.setns(fd, nstype) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _open_namespace(pid: int, container_id: str | None) -> int:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise NamespaceUnavailable(
            f"no process id to forward into: {pid!r} (container not running?)"
        )
    path = f"/proc/{pid}/ns/net"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceUnavailable(
            f"no process {pid} here ({path} is missing): the container has exited, or this "
            "process does not run in the host's PID namespace, where the engine's pid is valid"
        ) from None
    except PermissionError:
        raise NamespaceUnavailable(
            f"cannot open {path}: entering a container's network namespace needs root"
        ) from None
    try:
        ours = os.stat("/proc/thread-self/ns/net")
        theirs = os.fstat(fd)
        if (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino):
            raise NamespaceUnavailable(
                f"process {pid} shares this process's network namespace (a host-network "
                "container, or a pid from another PID namespace): refusing to listen there"
            )
        if container_id is not None:
            _check_container(pid, container_id)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_container(pid: int, container_id: str) -> None:
    try:
        with open(f"/proc/{pid}/cgroup") as cgroups:
            membership = cgroups.read()
    except OSError as exc:
        raise NamespaceUnavailable(f"cannot read the cgroups of process {pid}: {exc}") from None
    if container_id not in membership:
        raise NamespaceUnavailable(
            f"process {pid} is not in container {container_id[:12]}: this process must run "
            "in the host's PID namespace, where the engine's pid is valid"
        )


def _listen_in_namespace(
    pid: int, addresses: Sequence[tuple[str, int]], container_id: str | None
) -> list[socket.socket]:
    """Listening sockets created inside `pid`'s network namespace, by a thread of their own."""
    namespace_fd = _open_namespace(pid, container_id)
    made: list[socket.socket] = []
    failure: list[BaseException] = []

    def enter_and_listen() -> None:
        # This thread ends right after; nothing else ever runs in the container's namespace.
        try:
            try:
                _setns(namespace_fd, _CLONE_NEWNET)
            except OSError as exc:
                hint = " (needs root: CAP_SYS_ADMIN)" if exc.errno == errno.EPERM else ""
                raise NamespaceUnavailable(
                    f"cannot enter the network namespace of process {pid}: {exc}{hint}"
                ) from None
            for host, port in addresses:
                made.append(_listening_socket(host, port))
        except BaseException as exc:
            failure.append(exc)
            for sock in made:
                sock.close()
            made.clear()

    thread = threading.Thread(target=enter_and_listen, name=f"netns-listen-{pid}", daemon=True)
    try:
        thread.start()
        thread.join()
    finally:
        os.close(namespace_fd)
    if failure:
        raise failure[0]
    return made


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(_LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        hint = ""
        if exc.errno == errno.EADDRNOTAVAIL:
            hint = " (no such address in the container: is its loopback interface up?)"
        elif exc.errno == errno.EADDRINUSE:
            hint = " (something in the container already listens there)"
        raise ListenFailed(
            f"cannot listen on {host}:{port} in the container: {exc}{hint}"
        ) from None
    try:
        _connect_once(sock, host, port)
    except OSError as exc:
        sock.close()
        raise ListenFailed(
            f"{host}:{port} does not answer inside the container: {exc} "
            "(is its loopback interface up?)"
        ) from None
    return sock


def _connect_once(listener: socket.socket, host: str, port: int) -> None:
    """Connect to the new listener from inside the namespace, as the build will: binding
    succeeds even on a loopback interface that is down, where nothing can connect."""
    with socket.create_connection((host, port), timeout=2):
        listener.settimeout(2)
        try:
            accepted, _ = listener.accept()
            accepted.close()
        finally:
            listener.settimeout(None)


# --- relaying -----------------------------------------------------------------------------


class _Side(asyncio.Protocol):
    """One socket of a relayed connection; whatever it receives is written to its peer.

    Flow control is crosswise: when this side's unsent data grows too large, the peer stops
    reading until it drains. An EOF is passed on as a half-close (shutdown of writing), and
    the connection closes once both directions have ended.
    """

    def __init__(self, relay: _Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.got_eof = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=_WRITE_BUFFER_HIGH)
        self.relay.live.add(self)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.got_eof = True
        peer = self.peer
        if peer is None or peer.transport is None:
            return False
        if peer.got_eof:
            self._close_both()
        elif peer.transport.can_write_eof():
            peer.transport.write_eof()
        return True  # keep the other direction flowing

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.relay.live.discard(self)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()  # flushes what it still has to send first

    def _close_both(self) -> None:
        for side in (self, self.peer):
            if side is not None and side.transport is not None:
                side.transport.close()


class _Relay:
    """Accepts on one listening socket and relays each connection to one upstream."""

    def __init__(self, forwarder: Forwarder, route: _Route) -> None:
        self.forwarder = forwarder
        self.route = route
        self.live: set[_Side] = set()

    def accepted(self) -> _Side:
        return _Accepted(self)


class _Accepted(_Side):
    """The container's side: held paused until its upstream connection is made.

    Some Pythons (Debian's 3.11.2 among them) start reading a new transport even when its
    protocol paused it in connection_made, so bytes can arrive before the upstream is
    there: they are kept (up to _EARLY_BYTES_LIMIT) and sent first once it is, and an early
    EOF is passed on then too. Dropping them lost the request and hung the client.
    """

    def __init__(self, relay: _Relay) -> None:
        super().__init__(relay)
        self.early: list[bytes] = []
        self.early_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            super().data_received(data)
            return
        self.early.append(data)
        self.early_bytes += len(data)
        if self.early_bytes > _EARLY_BYTES_LIMIT and self.transport is not None:
            log.warning(
                "forwarder for pid %s: more than %d bytes before the upstream connected; "
                "dropping the connection",
                self.relay.forwarder.pid,
                _EARLY_BYTES_LIMIT,
            )
            self.transport.abort()

    def eof_received(self) -> bool:
        if self.peer is None:
            self.got_eof = True
            return True  # passed on once the upstream is connected
        return super().eof_received()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        forwarder = self.relay.forwarder
        forwarder.active_connections += 1
        if forwarder.active_connections > forwarder.max_connections:
            log.warning(
                "forwarder for pid %s: more than %d connections, refusing one",
                forwarder.pid,
                forwarder.max_connections,
            )
            self.transport.abort()
            return
        forwarder.accepted_connections += 1
        self.transport.pause_reading()
        forwarder.start_task(self._connect_upstream())

    def connection_lost(self, exc: Exception | None) -> None:
        self.relay.forwarder.active_connections -= 1
        super().connection_lost(exc)

    async def _connect_upstream(self) -> None:
        loop = asyncio.get_running_loop()
        upstream = _Side(self.relay)
        upstream.peer = self
        host, port = self.relay.route.upstream
        source = self.relay.route.source
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: upstream,
                    host,
                    port,
                    local_addr=None if source is None else (source, 0),
                ),
                self.relay.forwarder.connect_timeout,
            )
        except OSError as exc:  # TimeoutError included
            log.warning(
                "forwarder for pid %s: upstream %s:%s unreachable: %s",
                self.relay.forwarder.pid,
                host,
                port,
                str(exc) or "timed out",
            )
            if self.transport is not None:
                self.transport.close()
            return
        assert upstream.transport is not None
        if self.lost:  # the container's side went away while connecting
            upstream.transport.close()
            return
        self.peer = upstream
        for chunk in self.early:
            upstream.transport.write(chunk)
        self.early.clear()
        if self.got_eof and upstream.transport.can_write_eof():
            upstream.transport.write_eof()
        assert self.transport is not None
        self.transport.resume_reading()


class Forwarder:
    """Relays connections accepted inside a container to upstreams on the host.

    Made by `forward_into`. Runs one event-loop thread; `close()` stops accepting, drops
    every connection and joins it. Closing twice, or after the container has exited, is fine.
    """

    def __init__(
        self,
        pid: int,
        listeners: list[tuple[socket.socket, _Route]],
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        self.pid = pid
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        # Counted by the event-loop thread: connections accepted in the container and relayed
        # (over the whole life), and those not yet closed.
        self.accepted_connections = 0
        self.active_connections = 0
        self.listening = [route.listen for _, route in listeners]
        self._listeners = listeners
        self._relays = [_Relay(self, route) for _, route in listeners]
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"netns-forward-{pid}", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error

    def start_task(self, coroutine: Coroutine[object, object, None]) -> None:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Stop accepting, close every connection and listening socket, join the thread."""
        if self._closed:
            return
        self._closed = True
        stop = self._stop
        if stop is not None and self._thread.is_alive():
            try:
                self._loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop has already closed
                pass
        self._thread.join()

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # The event-loop thread.

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._started.set()  # never leave the constructor waiting
            for listener, _ in self._listeners:
                listener.close()
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        servers: list[asyncio.Server] = []
        try:
            for (listener, _), relay in zip(self._listeners, self._relays, strict=True):
                servers.append(
                    await self._loop.create_server(
                        relay.accepted, sock=listener, backlog=_LISTEN_BACKLOG
                    )
                )
        except BaseException as exc:
            self._start_error = exc
        self._started.set()
        try:
            if self._start_error is None:
                await self._stop.wait()
        finally:
            for server in servers:
                server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            for relay in self._relays:
                for side in list(relay.live):
                    if side.transport is not None:
                        side.transport.abort()
            # Let the aborted transports deliver connection_lost and drop their sockets.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
