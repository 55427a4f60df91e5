"""Host runner: the build's commands run as plain processes of this machine, no container.

For hosts without Docker and for the fastest possible start. Every `run()` starts its
command in a new session (so its whole process group can be signalled) with exactly the
build's environment plus FORGELINE_BUILD_MARKER=<build id>. The marker is how cleanup
finds processes that left the group (setsid, double fork): it kills every process whose
initial environment carries it. A process that clears its own environment before exec
(`env -i ...`) while also leaving the group is the one thing this cannot find.

Not isolated: cpus, memory_bytes, network and privileged are not enforced here, and
extra mounts are used where they are on the host (see `mount_paths`). `not_enforced`
says so in words, for every build's log: the build timeout and the build directory's
disk cap are the engine's, and hold on this runner too.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from forgeline.codebuild.runners.base import (
    BUILD_MARKER_VARIABLE,
    OutputSink,
    RunInterrupted,
    RunnerError,
    RunSpec,
)

_CHUNK = 64 * 1024
# After the command exits, output its background children wrote is read for at most this
# much before run() returns (the rest is read in the background).
_DRAIN_LIMIT = 4 * 1024 * 1024
_STOP_GRACE_SECONDS = 2.0
_POLL_SECONDS = 0.05


class HostRunner:
    name = "host"
    uses_image = False
    # What a build here is not held to, as its log says at PROVISIONING.
    not_enforced: tuple[str, ...] = (
        "network isolation (the build reaches all this machine reaches, Forgeline's "
        "database and broker included)",
        "filesystem isolation",
        "the process (PID) limit",
        "the memory limit",
        "the CPU limit",
        "privileged mode (every build has the rights of the user Forgeline runs as)",
    )

    def available(self) -> bool:
        return os.name == "posix"

    def prepare(self, spec: RunSpec) -> HostSession:
        if not spec.root.is_dir():
            raise RunnerError(f"The build directory {spec.root} does not exist.")
        return HostSession(spec)

    def remove_build_container(self, build_id: str) -> int:
        """There is no container: kill the processes a lost worker left of BUILD_ID."""
        return kill_build_processes(build_id)

    def container_build_ids(self) -> set[str]:
        """No containers: a build's processes are found by their marker instead."""
        return set()


class HostSession:
    def __init__(self, spec: RunSpec) -> None:
        self.root_in_runner = str(spec.root)
        self.mount_paths: Mapping[str, str] = {
            inside: str(host) for host, inside, _ in spec.extra_mounts
        }
        self.notes: Sequence[str] = ()
        self._build_id = spec.build_id
        self._env = {str(key): str(value) for key, value in spec.env.items()}
        self._env[BUILD_MARKER_VARIABLE] = spec.build_id
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._groups: list[int] = []
        self._stopped = False
        self._cleaned = False
        # Output goes to the sink of the run() in progress, one chunk at a time; output
        # of background processes between runs has no reader and is dropped.
        self._sink: OutputSink | None = None
        self._sink_lock = threading.Lock()
        self._closed = threading.Event()
        self._drainers: list[threading.Thread] = []

    # --- running ---------------------------------------------------------------------------

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        on_output: OutputSink,
        user: str | None = None,
    ) -> int:
        if self._stopped:
            raise RunInterrupted()
        try:
            identity = _identity(user)
        except _CannotStart as exc:
            on_output(f"{exc}\n".encode())
            return 126
        if not os.path.isdir(cwd):
            on_output(f"unable to start the command: no directory {cwd}\n".encode())
            return 126
        read_fd, write_fd = os.pipe()
        try:
            process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
                **identity,
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv or env
            os.close(read_fd)
            on_output(f"unable to start {argv[0] if argv else '(nothing)'}: {exc}\n".encode())
            return 127 if isinstance(exc, FileNotFoundError) else 126
        finally:
            os.close(write_fd)
        with self._lock:
            self._process = process
            self._groups.append(process.pid)
            stopped = self._stopped
        if stopped:  # stop() came between the check above and the start
            _signal_group(process.pid, signal.SIGKILL)
        with self._sink_lock:
            self._sink = on_output
        try:
            self._pump(process, read_fd)
            status = process.wait()
        finally:
            with self._sink_lock:
                self._sink = None
            with self._lock:
                self._process = None
        if self._stopped:
            raise RunInterrupted()
        # A signal death reads as the shell reports it: 128 + the signal number.
        return status if status >= 0 else 128 - status

    def _pump(self, process: subprocess.Popen[bytes], fd: int) -> None:
        """Stream FD to the sink until the command has exited and its output is read.

        Background processes the command started keep the pipe open after it exits, so
        end-of-file alone would wait for them: the command's exit ends the wait instead.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                if selector.select(timeout=_POLL_SECONDS):
                    chunk = os.read(fd, _CHUNK)
                    if not chunk:
                        os.close(fd)
                        return
                    self._emit(chunk)
                if process.poll() is not None:
                    break
        # Everything the command wrote is in the pipe by now; what follows belongs to
        # the processes it left running.
        if self._drain_available(fd):
            os.close(fd)
            return
        drainer = threading.Thread(
            target=self._drain_until_closed, args=(fd,), name="host-runner-drain", daemon=True
        )
        self._drainers.append(drainer)
        drainer.start()

    def _drain_available(self, fd: int) -> bool:
        """Read what the pipe holds now; True when it reached end-of-file."""
        os.set_blocking(fd, False)
        read = 0
        while read < _DRAIN_LIMIT:
            try:
                chunk = os.read(fd, _CHUNK)
            except BlockingIOError:
                return False
            if not chunk:
                return True
            read += len(chunk)
            self._emit(chunk)
        return False

    def _drain_until_closed(self, fd: int) -> None:
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(fd, selectors.EVENT_READ)
                while not self._closed.is_set():
                    if not selector.select(timeout=0.2):
                        continue
                    try:
                        chunk = os.read(fd, _CHUNK)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        break
                    with contextlib.suppress(Exception):
                        self._emit(chunk)
        finally:
            os.close(fd)

    def _emit(self, chunk: bytes) -> None:
        with self._sink_lock:
            if self._sink is not None:
                self._sink(chunk)

    # --- stopping ----------------------------------------------------------------------------

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            process = self._process
            groups = list(self._groups)
        for group in groups:
            _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        while process is not None and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        for group in groups:
            _signal_group(group, signal.SIGKILL)
        kill_build_processes(self._build_id)

    def cleanup(self) -> None:
        with self._lock:
            if self._cleaned:
                return
            self._cleaned = True
            self._stopped = True
            groups = list(self._groups)
        for group in groups:
            _signal_group(group, signal.SIGKILL)
        kill_build_processes(self._build_id)
        self._closed.set()
        for drainer in self._drainers:
            drainer.join(timeout=1)


class _CannotStart(Exception):
    pass


def _identity(user: str | None) -> dict[str, Any]:
    """Popen arguments that run the command as USER (buildspec run-as)."""
    if not user:
        return {}
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, OverflowError):
        raise _CannotStart(f"unable to run as user {user}: no such user on this host") from None
    if entry.pw_uid == os.geteuid():
        return {}
    if os.geteuid() != 0:
        raise _CannotStart(
            f"unable to run as user {user}: the host runner runs as uid {os.geteuid()} and "
            "only root can switch users"
        )
    return {
        "user": entry.pw_uid,
        "group": entry.pw_gid,
        "extra_groups": os.getgrouplist(entry.pw_name, entry.pw_gid),
    }


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def kill_build_processes(build_id: str, proc: Path = Path("/proc")) -> int:
    """SIGKILL every process whose environment carries BUILD_ID's marker; returns how many.

    Sweeps until one pass finds none, so children forked during a pass are caught next.
    """
    needle = f"{BUILD_MARKER_VARIABLE}={build_id}".encode()
    own = os.getpid()
    killed: set[int] = set()
    for _ in range(20):
        found = 0
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid == own or pid in killed:
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue  # gone, or not ours to read
            if needle in environ.split(b"\0"):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                    found += 1
        if not found:
            break
        time.sleep(0.01)
    return len(killed)
