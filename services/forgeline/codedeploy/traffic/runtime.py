"""HAProxy's runtime API over its admin unix socket: live changes with no reload.

One command per connection: connect, send the line, close our side, read the answer to end
of file. The
answer is free text, so each operation checks it for the exact success HAProxy prints and
raises `RuntimeCommandFailed` with HAProxy's own words otherwise. Parsing of the two
tables read here (`show servers state`, `show stat`) is pure and separate from the I/O.
"""

from __future__ import annotations

import csv
import io
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from forgeline.codedeploy.traffic.errors import RuntimeCommandFailed
from forgeline.codedeploy.traffic.model import DRAIN, MAINT, READY

DEFAULT_TIMEOUT = 10.0

# srv_admin_state bits (HAProxy's management guide, "show servers state").
_ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20  # forced, inherited, configured, resolution
_ADMIN_DRAIN = 0x08 | 0x10  # forced, inherited

# srv_op_state values.
_HEALTH = {0: "down", 1: "starting", 2: "up", 3: "stopping"}


class ProxyUnreachable(RuntimeCommandFailed):
    """Nothing answers on the socket: HAProxy is not running (or not yet, or no longer)."""


def send_command(path: Path, command: str, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """Send one command line to an HAProxy CLI socket and return its whole answer."""
    if "\n" in command or ";" in command:
        # A newline or ';' would make HAProxy run a second command.
        raise ValueError(f"one command only, without newlines or ';': {command!r}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        try:
            conn.connect(str(path))
        except OSError as error:
            raise ProxyUnreachable(command, f"nothing answers on {path} ({error})") from None
        try:
            conn.sendall(command.encode() + b"\n")
            # The master CLI reads commands until end of input: say there are no more.
            conn.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except OSError as error:
            raise ProxyUnreachable(command, f"connection to {path} failed ({error})") from None
    return b"".join(chunks).decode(errors="replace")


@dataclass(frozen=True)
class ServerState:
    """One row of `show servers state`."""

    backend: str
    name: str
    host: str
    port: int
    operational_state: int
    admin_flags: int
    weight: int  # the weight in force (set by configuration or `set server … weight`)
    initial_weight: int
    check_enabled: bool

    @property
    def admin_state(self) -> str:
        if self.admin_flags & _ADMIN_MAINT:
            return MAINT
        if self.admin_flags & _ADMIN_DRAIN:
            return DRAIN
        return READY

    @property
    def health(self) -> str:
        """up, down, starting or stopping, as HAProxy's checks (or their absence) see it."""
        return _HEALTH.get(self.operational_state, "unknown")


@dataclass(frozen=True)
class ServerStat:
    """The traffic counters of one server (a row of `show stat`)."""

    backend: str
    name: str
    current_sessions: int
    queued: int
    total_sessions: int
    status: str

    @property
    def in_flight(self) -> int:
        return self.current_sessions + self.queued


@dataclass(frozen=True)
class DrainResult:
    drained: bool  # no request left on the member before the time ran out
    remaining: int  # requests still on it (or queued for it) when the wait ended
    waited_seconds: float


def _int(text: str, default: int = 0) -> int:
    try:
        return int(text)
    except ValueError:
        return default


def parse_servers_state(text: str) -> list[ServerState]:
    """Rows of `show servers state`: a version line, a '#' header naming the columns, then
    one space-separated row per server. Columns are found by name, not position."""
    columns: list[str] = []
    rows: list[ServerState] = []
    for line in text.splitlines():
        if line.startswith("#"):
            if not columns:
                columns = line.lstrip("# ").split()
            continue
        fields = line.split()
        if not columns or len(fields) < len(columns):
            continue  # the version line, blank lines
        row = dict(zip(columns, fields, strict=False))
        rows.append(
            ServerState(
                backend=row["be_name"],
                name=row["srv_name"],
                host=row["srv_addr"],
                port=_int(row.get("srv_port", "0")),
                operational_state=_int(row["srv_op_state"]),
                admin_flags=_int(row["srv_admin_state"]),
                weight=_int(row["srv_uweight"]),
                initial_weight=_int(row["srv_iweight"]),
                # CHK_ST_ENABLED (0x4) in srv_check_state: checks configured and running.
                check_enabled=bool(_int(row.get("srv_check_state", "0")) & 0x4),
            )
        )
    return rows


def parse_stat(text: str) -> list[ServerStat]:
    """The server rows of `show stat` (CSV with a '# ' header); proxies' own rows
    (FRONTEND, BACKEND) are left out."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#"):
        return []
    header = lines[0].lstrip("# ")
    reader = csv.DictReader(io.StringIO("\n".join([header, *lines[1:]])))
    stats = []
    for row in reader:
        name = row.get("svname") or ""
        if not name or name in ("FRONTEND", "BACKEND"):
            continue
        stats.append(
            ServerStat(
                backend=row.get("pxname") or "",
                name=name,
                current_sessions=_int(row.get("scur") or "0"),
                queued=_int(row.get("qcur") or "0"),
                total_sessions=_int(row.get("stot") or "0"),
                status=row.get("status") or "",
            )
        )
    return stats


def parse_backends(text: str) -> list[str]:
    """Names from `show backend` (a '# name' header, then one name a line)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


class RuntimeClient:
    """The admin-level runtime API of the running worker."""

    def __init__(self, socket_path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def command(self, command: str) -> str:
        return send_command(self.socket_path, command, timeout=self.timeout)

    def _expect(self, command: str, accepted: Callable[[str], bool]) -> str:
        answer = self.command(command)
        if not accepted(answer.strip()):
            raise RuntimeCommandFailed(command, answer)
        return answer

    def _silent(self, command: str) -> None:
        """Commands that answer nothing when they succeed."""
        self._expect(command, lambda answer: answer == "")

    # Reading.

    def backends(self) -> list[str]:
        return parse_backends(self.command("show backend"))

    def servers(self, backend: str | None = None) -> list[ServerState]:
        command = "show servers state" if backend is None else f"show servers state {backend}"
        answer = self.command(command)
        if answer.strip() and not answer.lstrip().startswith(("1", "#")):
            raise RuntimeCommandFailed(command, answer)  # e.g. "Can't find backend."
        return parse_servers_state(answer)

    def servers_state_dump(self) -> str:
        """`show servers state` as HAProxy writes it, for the server-state file."""
        answer = self.command("show servers state")
        if not answer.startswith("1"):
            raise RuntimeCommandFailed("show servers state", answer)
        return answer

    def stats(self, backend: str) -> list[ServerStat]:
        # Every proxy (-1), servers only (type 4), every server (-1): HAProxy 2.6 filters
        # proxies by numeric id only, so the backend is picked here.
        command = "show stat -1 4 -1"
        answer = self.command(command)
        if answer.strip() and not answer.startswith("#"):
            raise RuntimeCommandFailed(command, answer)
        return [stat for stat in parse_stat(answer) if stat.backend == backend]

    def server_stat(self, backend: str, server: str) -> ServerStat | None:
        for stat in self.stats(backend):
            if stat.name == server:
                return stat
        return None

    # Changing.

    def add_server(self, backend: str, server: str, arguments: Sequence[str]) -> None:
        """A new server, in maintenance until `set_state(…, READY)` (HAProxy's rule)."""
        command = " ".join(["add server", f"{backend}/{server}", *arguments])
        self._expect(command, lambda answer: answer == "New server registered.")

    def delete_server(self, backend: str, server: str) -> None:
        """Remove a server; it must be in maintenance, with no connection left."""
        self._expect(f"del server {backend}/{server}", lambda a: a == "Server deleted.")

    def set_weight(self, backend: str, server: str, weight: int) -> None:
        self._silent(f"set server {backend}/{server} weight {weight}")

    def set_state(self, backend: str, server: str, state: str) -> None:
        if state not in (READY, DRAIN, MAINT):
            raise ValueError(f"unknown server state {state!r}")
        self._silent(f"set server {backend}/{server} state {state}")

    def set_address(self, backend: str, server: str, host: str, port: int) -> None:
        # HAProxy says what it changed ("IP changed from …", "no need to change the addr,
        # port changed from …"); its refusals never say "changed".
        self._expect(
            f"set server {backend}/{server} addr {host} port {port}",
            lambda answer: "changed" in answer.lower() or "no need to change" in answer.lower(),
        )

    def enable_health(self, backend: str, server: str) -> None:
        self._silent(f"enable health {backend}/{server}")

    def shutdown_sessions(self, backend: str, server: str) -> None:
        self._silent(f"shutdown sessions server {backend}/{server}")

    def wait_until_drained(
        self,
        backend: str,
        server: str,
        timeout: float,
        *,
        poll_interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> DrainResult:
        """Wait until no request is on the server or queued for it, or `timeout` seconds."""
        started = clock()
        while True:
            stat = self.server_stat(backend, server)
            remaining = 0 if stat is None else stat.in_flight
            waited = clock() - started
            if remaining == 0:
                return DrainResult(True, 0, waited)
            if waited >= timeout:
                return DrainResult(False, remaining, waited)
            sleep(min(poll_interval, max(0.0, timeout - waited)))
