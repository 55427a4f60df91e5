"""Time from `forgeline serve` to a ready server answering a signed API call.

Target (platform issue): the embedded default is ready in under 3 s. Baseline, measured
in the same run: starting a bare Python interpreter that imports nothing (`python -c pass`),
so machine noise shows up in both numbers.

    python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import ForgelineServer  # noqa: E402


def time_python() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


def time_forgeline(workers: int) -> float:
    with tempfile.TemporaryDirectory(prefix="forgeline-start-") as folder:
        server = ForgelineServer(Path(folder), extra_env={"FORGELINE_LOG_LEVEL": "WARNING"})
        server.env["FORGELINE_WORKERS"] = str(workers)  # 0: the default, one per core
        started = time.perf_counter()
        try:
            server.start()
            server.client("codecommit").list_repositories()
            return time.perf_counter() - started
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("FORGELINE_TEST_BACKEND", "sqlite")
    baseline = statistics.median(time_python() for _ in range(args.runs))
    print(f"bare python start: {baseline * 1000:.0f} ms (median of {args.runs})")
    for workers, label in ((1, "one process"), (0, "default processes (one per core)")):
        ready = statistics.median(time_forgeline(workers) for _ in range(args.runs))
        print(
            f"forgeline serve, {label} -> first signed API answer: {ready * 1000:.0f} ms "
            f"(median of {args.runs}; target < 3000 ms; {ready / baseline:.1f}x a bare "
            "interpreter)"
        )


if __name__ == "__main__":
    main()
