"""A real Forgeline server for tests: `forgeline serve` in a subprocess, over HTTP.

On the postgres backend it runs on a fresh Postgres database with Redis as the broker
and a separate `forgeline worker` process (the production shape); on the sqlite backend
it is the embedded default (SQLite, in-process worker).
"""

from __future__ import annotations

import configparser
import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from forgeline.core.protocol.catalog import new_botocore_session
from tests.support import databases

FORGELINE = [sys.executable, "-m", "forgeline.cli"]


@functools.cache
def botocore_services() -> frozenset[str]:
    return frozenset(boto3.session.Session().get_available_services())


@functools.cache
def own_models_session() -> boto3.session.Session:
    """A session that also knows the models botocore lacks (CodeDeploy's agent commands)."""
    return boto3.session.Session(botocore_session=new_botocore_session())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ForgelineServer:
    def __init__(
        self,
        data_dir: Path,
        *,
        auth: str = "enforce",
        extra_env: dict[str, str] | None = None,
        redis_db: int = 2,
        cwd: Path | None = None,
    ) -> None:
        """With `cwd`, the server runs there on its default data directory (`.forgeline`,
        relative, as `./scripts/run` starts it): `data_dir` must be `cwd / ".forgeline"`,
        and on SQLite the database is the default one inside it."""
        self.data_dir = data_dir
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = databases.create_database(data_dir)
        self.backend = databases.backend()
        self.env = dict(os.environ)
        self.env.update(
            FORGELINE_DATA_DIR=str(data_dir),
            FORGELINE_DATABASE_URL=self.database_url,
            FORGELINE_AUTH=auth,
            FORGELINE_ALLOW_RESET="1",
            FORGELINE_STRICT_OUTPUT="1",
            FORGELINE_LOG_LEVEL="WARNING",
            # The worker process too must know the server's port: it relays that port into
            # isolated builds, whose clone URLs name it.
            FORGELINE_PORT=str(self.port),
        )
        if self.backend == "postgres":
            broker = databases.broker_url(redis_db)
            self.env.update(
                FORGELINE_BROKER_URL=broker,
                FORGELINE_WORKER="external",
                # One queue per server: a worker must never take another server's doorbells.
                FORGELINE_BROKER_QUEUE=f"forgeline-{self.port}",
            )
        if cwd is None:
            # One server process unless a test asks for more: the suite starts many servers
            # on few cores. The default layout below keeps the default (one per core).
            self.env["FORGELINE_WORKERS"] = "1"
            # Nor namespaces made ahead of builds (two containers per server, one more per
            # build, minutes over the suite): the sandbox and pool tests ask for them, and
            # the default layout keeps them.
            self.env["FORGELINE_BUILD_PREPARED_NAMESPACES"] = "0"
        else:
            assert data_dir == cwd / ".forgeline", "the default data directory is cwd/.forgeline"
            del self.env["FORGELINE_DATA_DIR"]
            if self.backend == "sqlite":
                del self.env["FORGELINE_DATABASE_URL"]
        self.env.update(extra_env or {})
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log_path = (cwd or data_dir) / "server.log"

    # -- processes -------------------------------------------------------------------
    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        process = subprocess.Popen(
            [*FORGELINE, *args],
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def start(self, timeout: float = 30.0) -> ForgelineServer:
        if self.backend == "postgres":
            import redis

            # This server's own queue only: other servers may share the Redis database.
            redis.Redis.from_url(self.env["FORGELINE_BROKER_URL"]).delete(
                self.env["FORGELINE_BROKER_QUEUE"]
            )
        self._spawn("serve", "--host", "127.0.0.1", "--port", str(self.port))
        self.wait_ready(timeout)
        if self.env.get("FORGELINE_WORKER") == "external":
            self._spawn("worker")
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"server exited:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def stop(self) -> None:
        self.end_processes()
        databases.drop_database(self.database_url)

    def end_processes(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """End the server's processes (SIGKILL: as a crash would); its state stays."""
        for process in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.processes.clear()

    # -- clients ---------------------------------------------------------------------
    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "credentials"

    def admin_credentials(self) -> tuple[str, str]:
        parser = configparser.ConfigParser()
        parser.read(self.credentials_file)
        section = parser["forgeline"]
        return section["aws_access_key_id"], section["aws_secret_access_key"]

    def client(
        self,
        service: str,
        credentials: tuple[str, str] | None = None,
        region: str = "us-east-1",
        **config: Any,
    ) -> Any:
        key, secret = credentials or self.admin_credentials()
        # boto3's default session for botocore's own services: one session, so one class
        # per error (`client.exceptions.X` of any client matches what another raises).
        session = boto3 if service in botocore_services() else own_models_session()
        return session.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `forgeline <args>` against this server's state."""
        return subprocess.run(
            [*FORGELINE, *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def reset(self) -> None:
        response = httpx.post(f"{self.url}/_forgeline/reset", timeout=30)
        response.raise_for_status()


@contextlib.contextmanager
def running_server(data_dir: Path, **kwargs: Any) -> Iterator[ForgelineServer]:
    server = ForgelineServer(data_dir, **kwargs)
    try:
        yield server.start()
    finally:
        server.stop()
