"""What bench/deploy.py runs against: a Forgeline server with its HTTPS port, a fleet of
real `forgeline agent` processes on this machine, and revision bundles.

The server is the embedded default (SQLite, in-process worker) or, with a Postgres admin
URL, the same process on a fresh Postgres database (still the in-process worker). Each
agent is registered with `forgeline agent register` (its own root and destination root)
and runs as `forgeline agent run`, as an operator would start them.
"""

from __future__ import annotations

import configparser
import contextlib
import dataclasses
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import sqlalchemy as sa
from botocore.config import Config

FORGELINE = [sys.executable, "-m", "forgeline.cli"]
REGION = "us-east-1"
# Where a hook script of a bench bundle appends "<deployment> <start> <end>" (epoch seconds).
STAMPS_VARIABLE = "BENCH_HOOK_STAMPS"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the server -----------------------------------------------------------------------------
class BenchServer:
    """`forgeline serve` (one process) with the HTTPS endpoint agents need."""

    def __init__(self, folder: Path, *, pg_admin_url: str | None = None) -> None:
        self.data_dir = folder / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.https_url = f"https://127.0.0.1:{self.tls_port}"
        self.log_path = folder / "server.log"
        self._pg_admin_url = pg_admin_url
        self.database_url = (
            _create_pg_database(pg_admin_url)
            if pg_admin_url
            else f"sqlite:///{self.data_dir / 'forgeline.db'}"
        )
        self.env = {
            **os.environ,
            "FORGELINE_DATA_DIR": str(self.data_dir),
            "FORGELINE_DATABASE_URL": self.database_url,
            "FORGELINE_AUTH": "enforce",
            "FORGELINE_LOG_LEVEL": "WARNING",
            "FORGELINE_WORKERS": "1",
            "FORGELINE_PORT": str(self.port),
            "FORGELINE_TLS_PORT": str(self.tls_port),
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def backend(self) -> str:
        return "postgres" if self._pg_admin_url else "sqlite"

    def start(self, timeout: float = 60.0) -> BenchServer:
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [*FORGELINE, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"forgeline serve exited; see {self.log_path}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(f"{self.url}/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return self
            time.sleep(0.05)
        raise RuntimeError(f"forgeline serve not ready in {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._pg_admin_url:
            _drop_pg_database(self._pg_admin_url, self.database_url)

    def admin_credentials(self) -> tuple[str, str]:
        parser = configparser.ConfigParser()
        parser.read(self.data_dir / "credentials")
        section = parser["forgeline"]
        return section["aws_access_key_id"], section["aws_secret_access_key"]

    def client(self, service: str) -> Any:
        key, secret = self.admin_credentials()
        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def database(self) -> sa.Engine:
        """An engine on the server's own database (read what it recorded)."""
        return sa.create_engine(self.database_url)


def _create_pg_database(admin_url: str) -> str:
    name = f"forgeline_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def _drop_pg_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@contextlib.contextmanager
def running_server(folder: Path, *, pg_admin_url: str | None = None) -> Iterator[BenchServer]:
    server = BenchServer(folder, pg_admin_url=pg_admin_url)
    try:
        yield server.start()
    finally:
        server.stop()


# -- the agents -----------------------------------------------------------------------------
@dataclasses.dataclass
class FleetAgent:
    name: str
    workdir: Path
    config: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def stamps(self) -> Path:
        """The file this host's bench hooks append their run times to."""
        return self.workdir / "hook-stamps.txt"

    def start(self) -> None:
        env = {**os.environ, "FORGELINE_LOG_LEVEL": "INFO", STAMPS_VARIABLE: str(self.stamps)}
        with open(self.workdir / "agent.log", "ab") as log:
            self.process = subprocess.Popen(
                [*FORGELINE, "agent", "run", "--config", str(self.config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def register(server: BenchServer, workdir: Path, name: str, tags: Mapping[str, str]) -> FleetAgent:
    """`forgeline agent register` for one host: the instance, its key and its config."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "agent.yml"
    key, secret = server.admin_credentials()
    tag_args = [arg for tag, value in tags.items() for arg in ("--tags", f"{tag}={value}")]
    result = subprocess.run(
        [
            *FORGELINE,
            "agent",
            "register",
            "--name",
            name,
            *tag_args,
            "--endpoint",
            server.https_url,
            "--config",
            str(config),
            "--root-dir",
            str(workdir / "root"),
            "--destination-root",
            str(workdir / "host"),
        ],
        env={
            **server.env,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": REGION,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"registering {name} failed: {result.stderr.strip()}")
    return FleetAgent(name=name, workdir=workdir, config=config)


@contextlib.contextmanager
def fleet(
    server: BenchServer, root: Path, hosts: Sequence[tuple[str, Mapping[str, str]]]
) -> Iterator[list[FleetAgent]]:
    """Registered and running agents, one per (name, tags); stopped on the way out."""
    agents = [register(server, root / name, name, tags) for name, tags in hosts]
    try:
        for agent in agents:
            agent.start()
        yield agents
    finally:
        for agent in agents:
            agent.stop()


# -- bundles ----------------------------------------------------------------------------------
NOOP_APPSPEC = "version: 0.0\nos: linux\n"


def noop_bundle(marker: str) -> bytes:
    """An appspec with no files and no hooks; `marker` makes each revision a new one."""
    return _zip({"appspec.yml": NOOP_APPSPEC, "REVISION": marker + "\n"}, executable=())


def sleeping_hook_bundle(marker: str, seconds: float, event: str = "BeforeInstall") -> bytes:
    """One hook (`event`) that sleeps `seconds` and appends its own start and end to the
    file named by BENCH_HOOK_STAMPS, so the hook's run time is known exactly."""
    appspec = f"version: 0.0\nos: linux\nhooks:\n  {event}:\n    - location: hook.sh\n"
    script = (
        "#!/bin/sh\n"
        "start=$(date +%s.%N)\n"
        f"sleep {seconds}\n"
        f'echo "$DEPLOYMENT_ID $start $(date +%s.%N)" >> "${STAMPS_VARIABLE}"\n'
    )
    return _zip(
        {"appspec.yml": appspec, "hook.sh": script, "REVISION": marker + "\n"},
        executable=("hook.sh",),
    )


def _zip(files: Mapping[str, str], executable: tuple[str, ...]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # unix: the mode below is kept
            mode = 0o755 if name in executable else 0o644
            info.external_attr = (mode | 0o100000) << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def read_stamps(path: Path) -> dict[str, list[float]]:
    """Per deployment id, the run times (seconds) of the bench hooks recorded in `path`."""
    times: dict[str, list[float]] = {}
    if not path.exists():
        return times
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            times.setdefault(parts[0], []).append(float(parts[2]) - float(parts[1]))
    return times
