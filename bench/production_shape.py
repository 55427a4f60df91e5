"""The production shape's front door: GetRepository direct to the repo service and through
HAProxy with deploy/haproxy.cfg (the compose stack's gateway), side by side, same run.

Runs on this machine what docker-compose.yml runs: a fresh Postgres database, a Redis
database, `forgeline db upgrade`, the four `forgeline serve --service X` processes with
the compose environment (external worker, enforced auth), and HAProxy with the compose
file's configuration pointed at loopback. With --python-gateway it also measures the
Python gateway (`forgeline serve` with FORGELINE_SERVICE_URLS), the front door before
HAProxy.

Target (issue 10, item 18): the front door costs at most 10% of the throughput and 2 ms of
p99. Load comes from wrk, bounded in connections and seconds, against loopback only.

    python bench/production_shape.py [--seconds 10] [--connections 16] [--rounds 1]
                                     [--python-gateway]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from api_get_repository import REPO, request_for, wrk  # noqa: E402

from tests.support import databases  # noqa: E402
from tests.support.server import free_port  # noqa: E402

HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"
FORGELINE = Path(sys.executable).with_name("forgeline")
SERVICES = ("repo", "build", "deploy", "pipeline")
BENCH_REDIS_DB = 7


class Shape:
    """The compose stack's processes on loopback; every process is stopped on exit."""

    def __init__(self, scratch: Path, python_gateway: bool) -> None:
        self.scratch = scratch
        self.database_url = databases.create_database(scratch)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FORGELINE_")},
            "FORGELINE_DATABASE_URL": self.database_url,
            "FORGELINE_BROKER_URL": databases.broker_url(BENCH_REDIS_DB),
            "FORGELINE_WORKER": "external",
            "FORGELINE_MIGRATE_ON_START": "false",
            "FORGELINE_DATA_DIR": str(scratch / "data"),
            "FORGELINE_AUTH": "enforce",
            "FORGELINE_LOG_LEVEL": "WARNING",
            "FORGELINE_TLS_PORT": "0",
        }
        self.ports = {name: free_port() for name in SERVICES}
        self.front_port = free_port()
        self.python_gateway_port = free_port() if python_gateway else None
        self.processes: list[subprocess.Popen[bytes]] = []

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    def start(self) -> dict[str, str]:
        subprocess.run([str(FORGELINE), "db", "upgrade"], env=self.env, check=True)
        account = subprocess.run(
            [str(FORGELINE), "accounts", "create", "--name", "bench"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for name, port in self.ports.items():
            self.spawn(
                [
                    str(FORGELINE),
                    "serve",
                    "--service",
                    name,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ]
            )
        if self.python_gateway_port:
            urls = ",".join(f"{name}={self.url(port)}" for name, port in self.ports.items())
            self.spawn(
                [
                    str(FORGELINE),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.python_gateway_port),
                ],
                FORGELINE_SERVICE_URLS=urls,
            )
        self.spawn(
            ["haproxy", "-db", "-f", str(HAPROXY_CONFIG)],
            FORGELINE_HTTP_BIND=f"127.0.0.1:{self.front_port}",
            FORGELINE_HTTPS_BIND=f"127.0.0.1:{free_port()}",
            FORGELINE_REPO_HTTPS_ADDR=f"127.0.0.1:{free_port()}",
            **{
                f"FORGELINE_{name.upper()}_ADDR": f"127.0.0.1:{port}"
                for name, port in self.ports.items()
            },
        )
        for port in [*self.ports.values(), self.python_gateway_port, self.front_port]:
            if port:
                self.wait_ready(self.url(port))
        return json.loads(account)

    def spawn(self, command: list[str], **extra_env: str) -> None:
        log = open(self.scratch / f"process-{len(self.processes)}.log", "wb")  # noqa: SIM115
        self.processes.append(
            subprocess.Popen(command, env={**self.env, **extra_env}, stdout=log, stderr=log)
        )

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/ready", timeout=2).status_code == 200:
                    return
            if any(process.poll() is not None for process in self.processes):
                raise RuntimeError(f"a process exited; logs in {self.scratch}")
            time.sleep(0.1)
        raise RuntimeError(f"{url} not ready in 60 s; logs in {self.scratch}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        databases.drop_database(self.database_url)


@contextlib.contextmanager
def running_shape(python_gateway: bool) -> Iterator[tuple[Shape, dict[str, str]]]:
    scratch = Path(tempfile.mkdtemp(prefix="forgeline-shape-"))
    shape = Shape(scratch, python_gateway)
    try:
        yield shape, shape.start()
    finally:
        shape.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="Measurements of each door.")
    parser.add_argument("--python-gateway", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 120 or not 1 <= args.connections <= 256:
        parser.error("keep the load bounded: 1-120 seconds, 1-256 connections")
    for tool in ("wrk", "haproxy"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (Debian: apt-get install -y {tool})")
    os.environ.setdefault("FORGELINE_TEST_BACKEND", "postgres")

    with running_shape(args.python_gateway) as (shape, account):
        credentials = (account["accessKeyId"], account["secretAccessKey"])
        boto3.client(
            "codecommit",
            endpoint_url=shape.url(shape.front_port),
            region_name="us-east-1",
            aws_access_key_id=credentials[0],
            aws_secret_access_key=credentials[1],
        ).create_repository(repositoryName=REPO)
        doors = {"direct": shape.ports["repo"], "haproxy": shape.front_port}
        if shape.python_gateway_port:
            doors["python-gateway"] = shape.python_gateway_port
        results: dict[str, list[dict[str, float]]] = {name: [] for name in doors}
        for _round in range(args.rounds):
            # Interleaved, so machine noise falls on every door alike.
            for name, port in doors.items():
                url = shape.url(port)
                headers, body = request_for(url, credentials)
                wrk(url, headers, body, 2, args.connections)  # warm-up
                results[name].append(wrk(url, headers, body, args.seconds, args.connections))
        report(results, args)


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    def mean(name: str, key: str) -> float:
        return sum(run[key] for run in results[name]) / len(results[name])

    direct_rps, direct_p99 = mean("direct", "rps"), mean("direct", "p99_ms")
    print(
        f"GetRepository, {args.connections} connections, {args.seconds} s x {args.rounds}, "
        f"{os.environ['FORGELINE_TEST_BACKEND']}:"
    )
    for name in results:
        rps, p99 = mean(name, "rps"), mean(name, "p99_ms")
        errors = sum(run["errors"] for run in results[name])
        print(
            f"  {name:15s} {rps:8.0f} req/s  p50 {mean(name, 'p50_ms'):6.2f} ms  "
            f"p99 {p99:6.2f} ms  non-2xx {errors:.0f}  "
            f"throughput {rps / direct_rps:5.2f}x direct  p99 {p99 - direct_p99:+6.2f} ms"
        )
    print("target: the front door keeps >= 0.90x direct throughput and adds <= 2 ms p99")


if __name__ == "__main__":
    main()
