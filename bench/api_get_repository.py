"""GetRepository throughput and latency: Forgeline against moto's server, same machine, same run.

Target (CodeCommit issue): at 16 concurrent connections, Forgeline answers at least 6x the
requests per second of moto[server], with p99 at most 20 ms.

Load comes from wrk (Debian package `wrk`) replaying one SigV4-signed request; moto is
installed into .cache/bench-moto on first use. Forgeline is measured once per entry of
`--workers` (server processes; 0 is the default, one per core); moto_server is its usual
single process. Usage:

    python bench/api_get_repository.py [--seconds 10] [--connections 16] [--workers 1,0]
                                       [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import ForgelineServer, free_port  # noqa: E402
from tests.support.signing import signed_headers  # noqa: E402

MOTO_VENV = ROOT / ".cache" / "bench-moto"
REPO = "bench-repo"


def ensure_tools() -> None:
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    if not (MOTO_VENV / "bin" / "moto_server").exists():
        subprocess.run([sys.executable, "-m", "venv", str(MOTO_VENV)], check=True)
        subprocess.run(
            [str(MOTO_VENV / "bin" / "pip"), "install", "-q", "moto[server]"], check=True
        )


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [str(MOTO_VENV / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("moto_server did not start")


def wrk(
    url: str, headers: dict[str, str], body: bytes, seconds: int, connections: int
) -> dict[str, float]:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
    lines += [
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}"
        for k, v in headers.items()
        if k.lower() != "host"
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(2, connections)),
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            script.name,
            url + "/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def _latency(out: str, label: str) -> float:
    value, unit = re.search(rf"{re.escape(label)}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def request_for(url: str, credentials: tuple[str, str]) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"repositoryName": REPO}).encode()
    headers = signed_headers(
        url,
        body,
        target="CodeCommit_20150413.GetRepository",
        signing_name="codecommit",
        credentials=credentials,
    )
    return headers, body


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--workers",
        default="1,0",
        help="comma-separated server process counts to measure; 0 = the default (one per core)",
    )
    args = parser.parse_args()
    os.environ["FORGELINE_TEST_BACKEND"] = args.backend
    ensure_tools()

    moto, moto_url = start_moto()
    try:
        creds = ("testing", "testing")
        boto3.client(
            "codecommit",
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id=creds[0],
            aws_secret_access_key=creds[1],
        ).create_repository(repositoryName=REPO)
        moto_result = measure("moto", moto_url, creds, args)
        for workers in (int(value) for value in args.workers.split(",")):
            label = f"{workers} process(es)" if workers else "default processes"
            result = measure_forgeline(workers, label, args)
            print(
                f"GetRepository, {args.connections} connections, {args.backend}, forgeline "
                f"{label}: throughput ratio forgeline/moto = "
                f"{result['rps'] / moto_result['rps']:.2f}x (target >= 6x); "
                f"p99 = {result['p99_ms']:.1f} ms (target <= 20 ms)"
            )
    finally:
        moto.terminate()
        moto.wait(timeout=10)


def measure(name: str, url: str, credentials: tuple[str, str], args) -> dict[str, float]:
    headers, body = request_for(url, credentials)
    wrk(url, headers, body, 2, args.connections)  # warm-up
    result = wrk(url, headers, body, args.seconds, args.connections)
    print(
        f"{name:22s} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
        f"p99 {result['p99_ms']:6.2f} ms  non-2xx {result['errors']}"
    )
    return result


def measure_forgeline(workers: int, label: str, args) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="forgeline-bench-"))
    server = ForgelineServer(
        data_dir, extra_env={"FORGELINE_LOG_LEVEL": "WARNING", "FORGELINE_STRICT_OUTPUT": "0"}
    )
    server.env["FORGELINE_WORKERS"] = str(workers)
    try:
        server.start()
        server.client("codecommit").create_repository(repositoryName=REPO)
        return measure(f"forgeline {label}", server.url, server.admin_credentials(), args)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
