"""Run s3rver, a real S3-compatible server, on loopback for tests.

scripts/install-s3rver.sh installs it into <repo>/.cache/npm; FORGELINE_S3RVER_BIN
points elsewhere. Tests that need it call `require_s3rver()` (a clear skip when it is not
installed) and then use `running_s3rver(directory)`.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / ".cache" / "npm" / "node_modules" / ".bin" / "s3rver"
ACCESS_KEY_ID = "S3RVER"
SECRET_ACCESS_KEY = "S3RVER"
REGION = "us-east-1"
STARTUP_TIMEOUT = 20.0

_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class S3rver:
    endpoint_url: str
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY
    region: str = REGION


def s3rver_bin() -> Path:
    return Path(os.environ.get("FORGELINE_S3RVER_BIN", DEFAULT_BIN))


def require_s3rver() -> Path:
    """The s3rver executable, or skip the calling test when it is not installed."""
    path = s3rver_bin()
    if not os.access(path, os.X_OK):
        pytest.skip(f"s3rver is not installed at {path}; run scripts/install-s3rver.sh")
    return path


@contextlib.contextmanager
def running_s3rver(directory: Path) -> Iterator[S3rver]:
    """Start s3rver over `directory` on a free loopback port; stop it on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    data_dir = directory / "data"
    log_path = directory / "s3rver.log"
    with open(log_path, "wb") as log:
        # Port 0 lets the OS pick a free port; s3rver prints the one it got. Output goes
        # to a file so a chatty server can never block on a full pipe.
        process = subprocess.Popen(
            [str(require_s3rver()), "-d", str(data_dir), "-a", "127.0.0.1", "-p", "0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        port = _wait_for_port(process, log_path)
        endpoint_url = f"http://127.0.0.1:{port}"
        _wait_until_answering(process, endpoint_url, log_path)
        yield S3rver(endpoint_url=endpoint_url)
    finally:
        _stop(process)


def _wait_for_port(process: subprocess.Popen, log_path: Path) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_path.read_bytes())
        if match:
            return int(match.group(1))
        _fail_if_exited(process, log_path)
        time.sleep(0.05)
    raise RuntimeError(f"s3rver did not report its port in time; log:\n{_tail(log_path)}")


def _wait_until_answering(process: subprocess.Popen, endpoint_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(endpoint_url + "/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer, even an auth error, means it is serving
        except OSError:
            _fail_if_exited(process, log_path)
            time.sleep(0.05)
    raise RuntimeError(f"s3rver at {endpoint_url} did not answer in time; log:\n{_tail(log_path)}")


def _fail_if_exited(process: subprocess.Popen, log_path: Path) -> None:
    if process.poll() is not None:
        raise RuntimeError(
            f"s3rver exited with status {process.returncode}; log:\n{_tail(log_path)}"
        )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _tail(log_path: Path, limit: int = 4000) -> str:
    return log_path.read_bytes()[-limit:].decode("utf-8", "replace")
