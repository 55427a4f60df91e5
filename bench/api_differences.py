"""GetDifferences latency: the first page between two commits 1,000 changed files apart.

Target (CodeCommit issue): the first page answers in at most 200 ms, over boto3 and HTTP
against a real server, median of the runs.

The two commits are built through the API (CreateCommit, at most 100 files each): a base
of 1,000 files in 50 folders, then 400 of them modified, 300 deleted and 300 added, so
the two tips are 1,000 changed files apart. Usage:

    python bench/api_differences.py [--runs 30] [--page-size 100] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import ForgelineServer  # noqa: E402

BUDGET_MS = 200.0
REPO = "bench-differences"
FOLDERS = 50
BASE_FILES = 1000
BATCH = 100  # CreateCommit's limit on file entries


def base_path(n: int) -> str:
    return f"src/pkg{n % FOLDERS:02d}/module_{n:04d}.py"


def content(n: int, version: int) -> bytes:
    return (f"# module {n}, version {version}\n" + f"VALUE_{n} = {version}\n" * 20).encode()


def commit_in_batches(cc, branch: str, parent: str | None, changes: list[dict]) -> str:
    for start in range(0, len(changes), BATCH):
        chunk = changes[start : start + BATCH]
        puts = [c for c in chunk if "fileContent" in c]
        deletes = [{"filePath": c["filePath"]} for c in chunk if "fileContent" not in c]
        extra = {"parentCommitId": parent} if parent else {}
        parent = cc.create_commit(
            repositoryName=REPO,
            branchName=branch,
            putFiles=puts,
            deleteFiles=deletes,
            commitMessage=f"batch {start // BATCH}",
            **extra,
        )["commitId"]
    assert parent is not None
    return parent


def build(cc) -> tuple[str, str]:
    cc.create_repository(repositoryName=REPO)
    base = commit_in_batches(
        cc,
        "main",
        None,
        [{"filePath": base_path(n), "fileContent": content(n, 1)} for n in range(BASE_FILES)],
    )
    changes = [{"filePath": base_path(n), "fileContent": content(n, 2)} for n in range(400)]
    changes += [{"filePath": base_path(n)} for n in range(400, 700)]
    changes += [
        {"filePath": f"added/dir{n % 10}/new_{n:04d}.py", "fileContent": content(n, 1)}
        for n in range(300)
    ]
    after = commit_in_batches(cc, "main", base, changes)
    return base, after


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--page-size", type=int, default=None, help="MaxResults (default: the server's)"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--check", action="store_true", help="exit 1 when over budget")
    args = parser.parse_args()
    os.environ["FORGELINE_TEST_BACKEND"] = args.backend

    data_dir = Path(tempfile.mkdtemp(prefix="forgeline-bench-"))
    server = ForgelineServer(data_dir, extra_env={"FORGELINE_LOG_LEVEL": "WARNING"}, redis_db=6)
    try:
        server.start()
        cc = server.client("codecommit")
        base, after = build(cc)
        request = {
            "repositoryName": REPO,
            "beforeCommitSpecifier": base,
            "afterCommitSpecifier": after,
        }
        if args.page_size:
            request["MaxResults"] = args.page_size

        total = sum(
            len(page["differences"])
            for page in cc.get_paginator("get_differences").paginate(**request)
        )
        assert total == 1000, f"expected 1000 differences, got {total}"
        for _ in range(3):  # warm-up: connection, caches
            cc.get_differences(**request)
        timings = []
        for _ in range(args.runs):
            started = time.perf_counter()
            page = cc.get_differences(**request)
            timings.append((time.perf_counter() - started) * 1000)
        median = statistics.median(timings)
        worst = max(timings)
        print(
            f"GetDifferences first page ({len(page['differences'])} of {total} differences, "
            f"{args.backend}, {args.runs} runs): median {median:.1f} ms, "
            f"min {min(timings):.1f} ms, max {worst:.1f} ms"
        )
        print(
            f"ratio to the {BUDGET_MS:.0f} ms budget: {median / BUDGET_MS:.3f} "
            f"({'within' if median <= BUDGET_MS else 'OVER'} budget)"
        )
        if args.check and median > BUDGET_MS:
            sys.exit(1)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
