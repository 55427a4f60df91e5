"""Running one lifecycle event's scripts, with AWS's environment, timeouts and error codes.

Each script runs in its own process group with the agent's environment plus the
deployment's variables (spec.hook_environment). Its output goes line by line, prefixed
`[stdout]`/`[stderr]`, to the deployment's logs/scripts.log and to a 2 KiB tail that is
sent back with a failure. The first script that fails ends the event:

    1 ScriptMissing        the location is not in the revision
    2 ScriptNotExecutable  it cannot be made executable, or is not a file
    3 ScriptTimedOut       still running at its timeout: its process group is ended
    4 ScriptFailed         it exited non-zero (or was killed)
    5 UnknownError         e.g. `runas` a user that does not exist here
    6 OutputsLeftOpen      it exited, but something it started still holds its output
                           open when the timeout runs out

`runas` switches user only when the agent runs as root (in the child, no sudo needed);
otherwise it must name the agent's own user.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import os
import pwd
import selectors
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from forgeline.codedeploy.agent.appspec import MAX_EVENT_TIMEOUT, HookScript
from forgeline.codedeploy.agent.results import CommandResult, ErrorCode, LogTail, succeeded

# After the timeout's SIGTERM, how long a script's group gets before SIGKILL.
KILL_GRACE_SECONDS = 5.0
_READ_CHUNK = 65536


@dataclasses.dataclass(frozen=True)
class HookRun:
    event: str
    archive_dir: Path  # the revision whose scripts run
    environment: dict[str, str]  # added to the agent's own
    log_file: Path


class _ScriptError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def run_scripts(run: HookRun, scripts: tuple[HookScript, ...]) -> CommandResult:
    """Run `scripts` in order; the first failure is the event's result."""
    if not scripts:
        return succeeded()
    tail = LogTail()
    run.log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(run.log_file, "a", encoding="utf-8") as log_file:
        sink = _LogSink(log_file, tail)
        sink.write(f"LifecycleEvent - {run.event}\n")
        event_deadline = time.monotonic() + MAX_EVENT_TIMEOUT
        for script in scripts:
            left = max(1, int(event_deadline - time.monotonic()))
            timeout = min(script.timeout, left) if script.timeout else left
            try:
                _run_one(run, script, timeout, sink)
            except _ScriptError as exc:
                return CommandResult(exc.code, script.location, str(exc), tail.text())
    return succeeded()


class _LogSink:
    """Lines to the scripts.log file (timestamped) and to the tail sent back."""

    def __init__(self, log_file: IO[str], tail: LogTail) -> None:
        self.log_file = log_file
        self.tail = tail

    def write(self, line: str) -> None:
        self.tail.append(line)
        stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        self.log_file.write(f"{stamp} {line}")
        self.log_file.flush()


def _run_one(run: HookRun, script: HookScript, timeout: int, sink: _LogSink) -> None:
    path = run.archive_dir / script.location
    _check_runnable(path, script.location)
    identity = _identity(script)
    sink.write(f"Script - {script.location}\n")
    process = _start(path, script, run.environment, identity)
    _Supervisor(process, script, timeout, sink).wait()


def _check_runnable(path: Path, location: str) -> None:
    if not os.path.lexists(path):
        raise _ScriptError(
            ErrorCode.SCRIPT_MISSING, f"Script does not exist at specified location: {location}"
        )
    if not path.is_file():
        raise _ScriptError(
            ErrorCode.SCRIPT_NOT_EXECUTABLE,
            f"Script at specified location: {location} is not a file",
        )
    mode = path.stat().st_mode
    if not mode & 0o111:
        # AWS's agent makes a script executable rather than failing on a lost mode bit.
        try:
            os.chmod(path, stat.S_IMODE(mode) | 0o111)
        except OSError:
            raise _ScriptError(
                ErrorCode.SCRIPT_NOT_EXECUTABLE,
                f"Unable to set script at specified location: {location} as executable",
            ) from None


@dataclasses.dataclass(frozen=True)
class _Identity:
    """Who a script runs as when that is not the agent itself."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str


def _identity(script: HookScript) -> _Identity | None:
    if script.runas is None:
        return None
    me = pwd.getpwuid(os.geteuid())
    if script.runas == me.pw_name:
        return None
    if os.geteuid() != 0:
        raise _ScriptError(
            ErrorCode.UNKNOWN_ERROR,
            f"Script at specified location: {script.location} asks to run as user "
            f"{script.runas}, but the agent runs as {me.pw_name}, not root",
        )
    try:
        user = pwd.getpwnam(script.runas)
    except KeyError:
        raise _ScriptError(
            ErrorCode.UNKNOWN_ERROR,
            f"Script at specified location: {script.location} asks to run as user "
            f"{script.runas}, who does not exist on this host",
        ) from None
    return _Identity(
        name=user.pw_name,
        uid=user.pw_uid,
        gid=user.pw_gid,
        groups=tuple(os.getgrouplist(user.pw_name, user.pw_gid)),
        home=user.pw_dir,
        shell=user.pw_shell,
    )


def _start(
    path: Path, script: HookScript, environment: dict[str, str], identity: _Identity | None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **environment}
    options: dict[str, Any] = {}
    if identity is not None:
        env.update(
            HOME=identity.home, USER=identity.name, LOGNAME=identity.name, SHELL=identity.shell
        )
        options = {
            "user": identity.uid,
            "group": identity.gid,
            "extra_groups": list(identity.groups),
        }
    for argv in ([str(path)], ["/bin/sh", str(path)]):
        try:
            return subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, ended as a whole on timeout
                **options,
            )
        except OSError as exc:
            if exc.errno == errno.ENOEXEC:
                continue  # no #! line: run it with sh, as execvp (and AWS's agent) would
            who = f" as user {identity.name}" if identity else ""
            raise _ScriptError(
                ErrorCode.SCRIPT_NOT_EXECUTABLE,
                f"Script at specified location: {script.location} cannot be run{who}: "
                f"{exc.strerror}",
            ) from None
    raise AssertionError("unreachable: /bin/sh runs any file")


class _Supervisor:
    """Reads a script's output until it closes, within the script's timeout."""

    def __init__(
        self, process: subprocess.Popen[bytes], script: HookScript, timeout: int, sink: _LogSink
    ):
        self.process = process
        self.script = script
        self.timeout = timeout
        self.sink = sink
        self.deadline = time.monotonic() + timeout
        self.selector = selectors.DefaultSelector()
        self.partial: dict[str, bytes] = {}
        for name, stream in (("stdout", process.stdout), ("stderr", process.stderr)):
            assert stream is not None
            self.selector.register(stream, selectors.EVENT_READ, name)
            self.partial[name] = b""

    def wait(self) -> None:
        try:
            self._pump_until(self.deadline)
            if self.process.poll() is None:
                self._end_group()
                raise _ScriptError(
                    ErrorCode.SCRIPT_TIMED_OUT,
                    f"Script at specified location: {self.script.location} failed to "
                    f"complete in {self.timeout} seconds",
                )
            open_streams = sorted(key.data.upper() for key in self.selector.get_map().values())
            if open_streams:
                raise _ScriptError(
                    ErrorCode.OUTPUTS_LEFT_OPEN,
                    f"Script at specified location: {self.script.location} failed to close "
                    f"{' and '.join(open_streams)}: something it started still holds it open",
                )
            self._check_exit(self.process.returncode)
        finally:
            self._close()

    def _pump_until(self, deadline: float) -> None:
        while self.selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # Short waits while the script runs, so its exit is seen even if a child
            # keeps the pipes open; after it exits, only the outputs are waited for.
            wait = remaining if self.process.poll() is not None else min(remaining, 0.2)
            for key, _ in self.selector.select(wait):
                self._read(key)
        # Both outputs closed: the script has exited or is about to.
        remaining = deadline - time.monotonic()
        if remaining > 0:
            try:
                self.process.wait(remaining)
            except subprocess.TimeoutExpired:
                pass

    def _read(self, key: selectors.SelectorKey) -> None:
        stream = key.fileobj
        data = os.read(stream.fileno(), _READ_CHUNK)  # type: ignore[union-attr]
        name = key.data
        if not data:
            self.selector.unregister(stream)
            if self.partial[name]:
                self._emit(name, self.partial[name] + b"\n")
                self.partial[name] = b""
            return
        lines = (self.partial[name] + data).split(b"\n")
        self.partial[name] = lines.pop()
        for line in lines:
            self._emit(name, line + b"\n")

    def _emit(self, name: str, line: bytes) -> None:
        self.sink.write(f"[{name}]{line.decode('utf-8', errors='replace')}")

    def _end_group(self) -> None:
        """SIGTERM to the script's process group, SIGKILL if it is still there later."""
        for sig, grace in ((signal.SIGTERM, KILL_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # Whatever the group printed while stopping, briefly.
        self._pump_until(time.monotonic() + 0.5)

    def _check_exit(self, returncode: int) -> None:
        if returncode == 0:
            return
        who = f" run as user {self.script.runas}" if self.script.runas else ""
        if returncode < 0:
            outcome = f"was killed by signal {signal.Signals(-returncode).name}"
        else:
            outcome = f"failed with exit code {returncode}"
        raise _ScriptError(
            ErrorCode.SCRIPT_FAILED,
            f"Script at specified location: {self.script.location}{who} {outcome}",
        )

    def _close(self) -> None:
        for name in list(self.partial):
            if self.partial[name]:
                self._emit(name, self.partial[name] + b"\n")
                self.partial[name] = b""
        self.selector.close()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
