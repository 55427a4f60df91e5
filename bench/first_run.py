"""A new user's first wait: fresh clone → `./scripts/run` → first answer from the server.

Target (new-user issue): ≤ 15 s, with progress shown. Baseline, measured in the same run:
the same first run with the installer forced to venv + pip (`FORGELINE_INSTALLER=pip`),
which is what the first run used to do. Each run clones this repository's HEAD into a
new folder; uv's download cache is left as it is (a user's second project has it too),
so `--cold-cache` points uv at an empty cache for the first-ever figure.

    python bench/first_run.py [--runs 1] [--cold-cache]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def first_answer(installer: str, cold_cache: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="forgeline-first-run-") as folder:
        clone = Path(folder) / "forgeline"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("FORGELINE_", "VIRTUAL_ENV"))
        }
        env["FORGELINE_INSTALLER"] = installer
        if cold_cache:
            env["UV_CACHE_DIR"] = str(Path(folder) / "uv-cache")
        port = free_port()
        started = time.perf_counter()
        process = subprocess.Popen(
            ["./scripts/run", "--port", str(port)],
            cwd=clone,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = started + 300
            while time.perf_counter() < deadline:
                if process.poll() is not None:
                    raise SystemExit(f"./scripts/run exited {process.returncode} ({installer})")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            raise SystemExit(f"no answer within 300 s ({installer})")
        finally:
            os.killpg(process.pid, 15)
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--cold-cache", action="store_true", help="uv starts with an empty cache")
    args = parser.parse_args()
    for run in range(1, args.runs + 1):
        pip = first_answer("pip", args.cold_cache)
        uv = first_answer("uv", args.cold_cache)
        print(
            f"run {run}: fresh clone -> first answer: uv {uv:.1f} s, venv+pip {pip:.1f} s "
            f"(baseline); uv takes {uv / pip:.2f}x the pip first run (target <= 15 s)",
            flush=True,
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
