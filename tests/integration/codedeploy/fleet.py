"""A fleet of real `forgeline agent` processes on this machine for deployment tests.

Each agent is its own on-premises instance (registered with `forgeline agent register`),
with its own root directory, its own destination root (the example service installs to
/opt/hello-service under it) and its own port for the service (HELLO_PORT, read by the
example's scripts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import signal
import subprocess
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.support.paths import REPO_ROOT
from tests.support.server import FORGELINE, ForgelineServer, free_port

REGION = "us-east-1"
EXAMPLE = REPO_ROOT / "examples" / "hello-service"
# The lifecycle events of an in-place deployment, in AWS's order.
LIFECYCLE = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
]


def https_url(server: ForgelineServer) -> str:
    return f"https://127.0.0.1:{server.env['FORGELINE_TLS_PORT']}"


@dataclasses.dataclass
class FleetAgent:
    name: str
    workdir: Path
    port: int
    config: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def destination_root(self) -> Path:
        return self.workdir / "host"

    @property
    def log(self) -> Path:
        return self.workdir / "agent.log"

    def start(self) -> None:
        env = {
            **os.environ,
            "FORGELINE_LOG_LEVEL": "INFO",
            "HELLO_PORT": str(self.port),
            "HELLO_ROOT": str(self.destination_root),
        }
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [*FORGELINE, "agent", "run", "--config", str(self.config)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stop_service(self) -> None:
        pid_file = self.destination_root / "opt" / "hello-service.pid"
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)

    def answer(self) -> str | None:
        """What the hello service on this host answers, or None when nothing listens."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2) as reply:
                return reply.read().decode().strip()
        except OSError:
            return None


def register(server: ForgelineServer, workdir: Path, name: str, tags: dict[str, str]) -> FleetAgent:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "agent.yml"
    key, secret = server.admin_credentials()
    result = subprocess.run(
        [
            *FORGELINE,
            "agent",
            "register",
            "--name",
            name,
            *[arg for key_, value in tags.items() for arg in ("--tags", f"{key_}={value}")],
            "--endpoint",
            https_url(server),
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
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # Back to a restarted server within a second, well inside the tests' silence limit.
    settings = yaml.safe_load(config.read_text())
    settings["poll"]["backoff_max_seconds"] = 1.0
    config.write_text(yaml.safe_dump(settings))
    return FleetAgent(name=name, workdir=workdir, port=free_port(), config=config)


@contextlib.contextmanager
def fleet(
    server: ForgelineServer, root: Path, prefix: str, size: int, tags: dict[str, str]
) -> Iterator[list[FleetAgent]]:
    agents = [register(server, root / f"{prefix}{n}", f"{prefix}{n}", tags) for n in range(size)]
    for agent in agents:
        agent.start()
    try:
        yield agents
    finally:
        for agent in agents:
            agent.kill()
            agent.stop_service()


def hello_bundle(
    version: str,
    *,
    validate_exit: int | None = None,
    slow_hook: float = 0,
    after_allow_exit: int | None = None,
) -> bytes:
    """The example service as a zip bundle, answering `version`; optionally with a
    ValidateService that fails with `validate_exit`, a BeforeInstall that takes
    `slow_hook` seconds, or an AfterAllowTraffic hook that exits `after_allow_exit`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(EXAMPLE.rglob("*")):
            if path.is_dir() or path.name == "README.md":
                continue
            relative = path.relative_to(EXAMPLE).as_posix()
            data = path.read_bytes()
            if relative == "app/VERSION":
                data = f"{version}\n".encode()
            if relative == "scripts/validate.sh" and validate_exit is not None:
                data = f"#!/bin/sh\necho 'validation refused'\nexit {validate_exit}\n".encode()
            if relative == "scripts/before_install.sh" and slow_hook:
                data += f"sleep {slow_hook}\n".encode()
            if relative == "appspec.yml" and after_allow_exit is not None:
                data += b"  AfterAllowTraffic:\n    - location: scripts/after_allow.sh\n"
            _add(archive, relative, data, path.stat().st_mode)
        if after_allow_exit is not None:
            script = f"#!/bin/sh\necho 'after allow traffic'\nexit {after_allow_exit}\n"
            _add(archive, "scripts/after_allow.sh", script.encode(), 0o755)
    return buffer.getvalue()


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (mode & 0o777 | 0o100000) << 16
    archive.writestr(info, data)


def wait_until(
    check: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(interval)


def upload_release(
    server: ForgelineServer, bucket: str, version: str, **options: Any
) -> dict[str, Any]:
    """The example service answering VERSION, uploaded to BUCKET: an S3 revision."""
    key = f"hello/{version}-{uuid.uuid4().hex[:6]}.zip"
    etag = server.client("s3").put_object(
        Bucket=bucket, Key=key, Body=hello_bundle(version, **options)
    )["ETag"]
    return {
        "revisionType": "S3",
        "s3Location": {"bucket": bucket, "key": key, "bundleType": "zip", "eTag": etag},
    }


def finished(codedeploy: Any, deployment_id: str, timeout: float = 120) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        return info if info["status"] in ("Succeeded", "Failed", "Stopped") else None

    return wait_until(done, timeout, what=f"deployment {deployment_id} to finish")


def targets(codedeploy: Any, deployment_id: str) -> dict[str, dict[str, Any]]:
    ids = codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    if not ids:
        return {}  # not started yet
    found = codedeploy.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)
    return {
        t["instanceTarget"]["targetId"]: t["instanceTarget"] for t in found["deploymentTargets"]
    }
