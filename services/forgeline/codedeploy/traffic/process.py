"""The HAProxy process: start, adopt, reload, stop.

HAProxy runs in master-worker mode (`-W`), its master CLI on `master.sock` (`-S`). It is
started in a session of its own and outlives the Forgeline process that started it: traffic
must keep flowing while Forgeline restarts, and the next Forgeline adopts the running
proxy through its pid file and master socket.

A reload (`reload` on the master CLI) re-reads haproxy.cfg: the master starts a new worker,
which takes the listening sockets over from the old one (`expose-fd listeners`), so no
connection is refused; the old worker finishes its requests and leaves. The reload is done
when the new worker answers; if the master reports it failed (a port already taken, say),
the old worker keeps serving and the caller gets HAProxy's reason from haproxy.log.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from forgeline.codedeploy.traffic.errors import HaproxyNotInstalled, ProxyStartFailed
from forgeline.codedeploy.traffic.layout import ProxyLayout
from forgeline.codedeploy.traffic.runtime import ProxyUnreachable, send_command

MINIMUM_VERSION = (2, 6)  # dynamic servers (`add server`, `del server`) without experimental mode
INSTALL_HINT = "install Debian's package: `apt-get install -y haproxy` (version 2.6 or newer)"
# Debian installs HAProxy in /usr/sbin, which is not on every user's PATH.
_USUAL_PLACES = ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
_VERSION = re.compile(r"HA-?Proxy version (\d+)\.(\d+)")
_POLL_SECONDS = 0.05


def find_haproxy(explicit: str | None = None) -> str:
    """The haproxy binary to run, checked to be recent enough, or a clear error."""
    if explicit is not None:
        candidates: list[str] = [explicit]
    else:
        found = shutil.which("haproxy")
        candidates = [found] if found else []
        candidates += [place for place in _USUAL_PLACES if os.access(place, os.X_OK)]
    if not candidates:
        raise HaproxyNotInstalled(f"HAProxy is not installed: {INSTALL_HINT}")
    binary = candidates[0]
    try:
        answer = subprocess.run(
            [binary, "-v"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError as error:
        raise HaproxyNotInstalled(f"cannot run {binary} ({error}): {INSTALL_HINT}") from None
    match = _VERSION.search(answer.stdout + answer.stderr)
    if match is None:
        raise HaproxyNotInstalled(f"{binary} does not say which HAProxy it is: {INSTALL_HINT}")
    version = (int(match.group(1)), int(match.group(2)))
    if version < MINIMUM_VERSION:
        raise HaproxyNotInstalled(
            f"{binary} is HAProxy {version[0]}.{version[1]}, older than "
            f"{MINIMUM_VERSION[0]}.{MINIMUM_VERSION[1]}: {INSTALL_HINT}"
        )
    return binary


@dataclass(frozen=True)
class ProcessTable:
    """The master CLI's `show proc`."""

    master_pid: int
    reloads: int
    failed_reloads: int
    workers: tuple[int, ...]  # serving the current configuration
    old_workers: tuple[int, ...]  # finishing requests from before a reload


_MASTER_LINE = re.compile(r"(\d+)\s+master\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?")


def parse_show_proc(text: str) -> ProcessTable:
    master_pid = reloads = failed = 0
    sections: dict[str, list[int]] = {"workers": [], "old workers": []}
    current: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            name = stripped.lstrip("# ").lower()
            current = name if name in sections else None
            continue
        master = _MASTER_LINE.match(stripped)
        if master:
            master_pid, reloads = int(master.group(1)), int(master.group(2))
            failed = int(master.group(3) or 0)
            continue
        fields = stripped.split()
        if current and len(fields) >= 2 and fields[0].isdigit() and fields[1] == "worker":
            sections[current].append(int(fields[0]))
    if not master_pid:
        raise ProxyStartFailed(f"the master CLI answered no process table: {text.strip()!r}")
    return ProcessTable(
        master_pid=master_pid,
        reloads=reloads,
        failed_reloads=failed,
        workers=tuple(sections["workers"]),
        old_workers=tuple(sections["old workers"]),
    )


def _alive(pid: int) -> bool:
    """A live HAProxy process (not a zombie, and not another program that took the pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[0:1]
    return state != ["Z"] and b"haproxy" in command


class HaproxyProcess:
    def __init__(self, layout: ProxyLayout, *, binary: str | None = None) -> None:
        self.layout = layout
        self._binary = binary
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def binary(self) -> str:
        if self._binary is None:
            self._binary = find_haproxy()
        return self._binary

    # Looking.

    def master_pid(self) -> int | None:
        self._reap()
        try:
            pid = int(self.layout.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    def master_command(self, command: str, *, timeout: float = 10.0) -> str:
        return send_command(self.layout.master_socket, command, timeout=timeout)

    def processes(self) -> ProcessTable:
        return parse_show_proc(self.master_command("show proc"))

    def is_running(self) -> bool:
        if self.master_pid() is None:
            return False
        try:
            self.processes()
        except (ProxyUnreachable, ProxyStartFailed):
            return False
        return True

    def _worker_answers(self, pid: int) -> bool:
        try:
            return "Pid:" in self.master_command(f"@!{pid} show info", timeout=2.0)
        except ProxyUnreachable:
            return False

    def _log_since(self, offset: int) -> str:
        try:
            with self.layout.log_file.open("rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        problems = [line for line in text.splitlines() if "[ALERT]" in line or "[WARNING]" in line]
        return "\n".join(problems[-10:]) or text.strip()[-2000:]

    def _log_size(self) -> int:
        try:
            return self.layout.log_file.stat().st_size
        except OSError:
            return 0

    # Checking a configuration.

    def check_config(self, path: Path) -> None:
        """`haproxy -c`: refuse a configuration before it reaches the running process."""
        result = subprocess.run(
            [self.binary, "-c", "-f", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stderr + result.stdout).splitlines()
            alerts = [line for line in output if "[ALERT]" in line] or output
            raise ProxyStartFailed(
                f"HAProxy rejects the configuration {path}: " + " ".join(alerts).strip()
            )

    # Starting, reloading, stopping.

    def start(self, *, timeout: float = 15.0) -> None:
        """Start HAProxy on haproxy.cfg and wait until its worker serves."""
        if self.is_running():
            return
        offset = self._log_size()
        command = [
            self.binary,
            "-W",
            "-f",
            str(self.layout.config_file),
            "-p",
            str(self.layout.pid_file),
            "-S",
            f"{self.layout.master_socket},mode,600",
        ]
        with self.layout.log_file.open("ab") as log:
            self._child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.layout.directory,
                # Its own session: a signal to Forgeline's process group (Ctrl-C, a
                # service manager stopping Forgeline) leaves traffic flowing.
                start_new_session=True,
            )
        child = self._child
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.poll() is not None:
                self._child = None
                raise ProxyStartFailed(
                    f"HAProxy exited at start (status {child.returncode}): "
                    f"{self._log_since(offset)}"
                )
            with contextlib.suppress(ProxyUnreachable, ProxyStartFailed):
                table = self.processes()
                if table.workers and self._worker_answers(table.workers[0]):
                    return
            time.sleep(_POLL_SECONDS)
        self.stop()
        raise ProxyStartFailed(
            f"HAProxy did not start serving within {timeout:g}s: {self._log_since(offset)}"
        )

    def reload(self, *, timeout: float = 15.0) -> None:
        """Make the running HAProxy take haproxy.cfg, without refusing a connection."""
        before = self.processes()
        offset = self._log_size()
        with contextlib.suppress(ProxyUnreachable):
            # The master closes the connection as it re-executes itself.
            self.master_command("reload")
        known = set(before.workers) | set(before.old_workers)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            try:
                table = self.processes()
            except (ProxyUnreachable, ProxyStartFailed):
                continue  # the master is re-executing
            if table.failed_reloads > before.failed_reloads:
                raise ProxyStartFailed(
                    "HAProxy could not load the new configuration (the previous one keeps "
                    f"serving): {self._log_since(offset)}"
                )
            fresh = [pid for pid in table.workers if pid not in known]
            if fresh and self._worker_answers(fresh[0]):
                return
        raise ProxyStartFailed(
            f"HAProxy did not finish reloading within {timeout:g}s: {self._log_since(offset)}"
        )

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGUSR1: finish requests in flight), then by force."""
        pid = self.master_pid()
        if pid is not None:
            for signum, grace in (
                (signal.SIGUSR1, timeout),
                (signal.SIGTERM, 2.0),
                (signal.SIGKILL, 2.0),
            ):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
                if self._wait_gone(pid, grace):
                    break
        self._reap()
        for path in (self.layout.pid_file, self.layout.master_socket, self.layout.runtime_socket):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._reap()
            if not _alive(pid):
                return True
            time.sleep(_POLL_SECONDS)
        return False

    def _reap(self) -> None:
        """Collect our own child once it has exited, so it leaves no zombie."""
        if self._child is not None and self._child.poll() is not None:
            self._child = None
