"""git clone and push through Forgeline's smart HTTP against git's own local transport.

Target (CodeCommit issue): on a repository of at least 20 000 commits and 50 MB,
  * clone over Forgeline's smart HTTP takes at most 1.3x `git clone --no-local` of the
    same bare repository on disk, and
  * pushing the whole history to Forgeline takes at most 1.3x pushing it to a local
    bare repository.
Each figure is the median of --runs runs, measured in the same process run.

The history comes from one `git fast-import` stream: every commit rewrites one of 400
files (in 40 directories) with random bytes, so the pack cannot compress below the
requested size. Clients authenticate the way git-remote-codecommit does (a SigV4-derived
password in the URL). Clones are bare, so both sides measure the transport, not checkout.

    python bench/git_clone_push.py [--commits 20000] [--megabytes 52] [--runs 5] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from forgeline.core.auth import sigv4  # noqa: E402
from tests.support.server import ForgelineServer  # noqa: E402

FILES = 400
DIRECTORIES = 40
TARGET_RATIO = 1.3


# git runs without the user's or the system's configuration, so both sides run alike.
GIT_HOME = Path(tempfile.mkdtemp(prefix="forgeline-git-bench-home-"))


def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", HOME=str(GIT_HOME))
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def fast_import_stream(commits: int, blob_size: int, seed: int = 7) -> Iterator[bytes]:
    rng = random.Random(seed)
    when = 1_600_000_000
    for index in range(commits):
        path = f"d{index % DIRECTORIES:02d}/f{index % FILES:03d}.bin"
        data = rng.randbytes(blob_size)
        message = f"commit {index}\n".encode()
        yield (
            b"commit refs/heads/main\n"
            + f"committer Bench <bench@example.com> {when + index * 60} +0000\n".encode()
            + f"data {len(message)}\n".encode()
            + message
            + f"M 100644 inline {path}\n".encode()
            + f"data {len(data)}\n".encode()
            + data
            + b"\n"
        )


def make_source(path: Path, commits: int, megabytes: int) -> int:
    """A bare repository with the generated history, fully packed; returns its pack size."""
    git("init", "-q", "--bare", "-b", "main", str(path))
    blob_size = max(1, megabytes * 1024 * 1024 // commits)
    importer = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, stdin=subprocess.PIPE)
    assert importer.stdin is not None
    for chunk in fast_import_stream(commits, blob_size):
        importer.stdin.write(chunk)
    importer.stdin.close()
    if importer.wait() != 0:
        raise RuntimeError("git fast-import failed")
    git("repack", "-adq", cwd=path)
    return sum(p.stat().st_size for p in (path / "objects" / "pack").glob("*.pack"))


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


Prepare = Callable[[int], Callable[[], object]]


def interleaved(runs: int, ours: Prepare, baseline: Prepare) -> tuple[list[float], list[float]]:
    """Alternate the two sides run by run, so a change in machine load hits both alike."""
    ours_samples, base_samples = [], []
    for run in range(runs):
        ours_samples.append(timed(ours(run)))
        base_samples.append(timed(baseline(run)))
    return ours_samples, base_samples


class Forgeline:
    def __init__(self, server: ForgelineServer) -> None:
        self.server = server
        self.client = server.client("codecommit")
        self.key, self.secret = server.admin_credentials()
        self.host = f"127.0.0.1:{server.port}"

    def new_repository(self, name: str) -> tuple[str, Path]:
        meta = self.client.create_repository(repositoryName=name)["repositoryMetadata"]
        return self.url(name), self.server.data_dir / "repositories" / f"{meta['repositoryId']}.git"

    def url(self, name: str) -> str:
        password = sigv4.git_password(self.secret, f"/v1/repos/{name}", self.host, "us-east-1")
        return f"http://{self.key}:{password}@{self.host}/v1/repos/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--megabytes", type=int, default=52)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    os.environ["FORGELINE_TEST_BACKEND"] = args.backend

    work = Path(tempfile.mkdtemp(prefix="forgeline-git-bench-"))
    (work / "server").mkdir()
    server = ForgelineServer(
        work / "server",
        extra_env={
            "FORGELINE_LOG_LEVEL": "WARNING",
            "FORGELINE_STRICT_OUTPUT": "0",
            "FORGELINE_TLS_PORT": "0",
        },
    )
    try:
        started = time.perf_counter()
        source = work / "source.git"
        pack_bytes = make_source(source, args.commits, args.megabytes)
        count = int(git("rev-list", "--count", "main", cwd=source).stdout)
        print(
            f"source: {count} commits, pack {pack_bytes / 1e6:.1f} MB "
            f"(generated in {time.perf_counter() - started:.1f} s)"
        )
        server.start()
        forgeline = Forgeline(server)

        # Push: the whole history into an empty repository, each run a new one.
        def push_forgeline(run: int) -> Callable[[], object]:
            url, _ = forgeline.new_repository(f"bench-push-{run + 1}")
            return lambda: git("push", "-q", url, "main", cwd=source)

        def push_local(run: int) -> Callable[[], object]:
            target = work / f"local-push-{run}.git"
            git("init", "-q", "--bare", str(target))
            return lambda: git("push", "-q", f"file://{target}", "main", cwd=source)

        # One unmeasured round first: page cache, the server's first-request imports.
        interleaved(1, lambda _: push_forgeline(-1), lambda _: push_local(-1))
        push_fl_runs, push_git_runs = interleaved(args.runs, push_forgeline, push_local)

        # Clone: one repository served by Forgeline, and the very same directory on disk.
        url, served_path = forgeline.new_repository("bench-clone")
        git("push", "-q", url, "main", cwd=source)
        git("repack", "-adq", cwd=served_path)

        def clone_forgeline(run: int) -> Callable[[], object]:
            target = work / f"clone-fl-{run}.git"
            fresh_url = forgeline.url("bench-clone")
            return lambda: git("clone", "-q", "--bare", fresh_url, str(target))

        def clone_local(run: int) -> Callable[[], object]:
            target = work / f"clone-local-{run}.git"
            return lambda: git("clone", "-q", "--bare", "--no-local", str(served_path), str(target))

        interleaved(1, lambda _: clone_forgeline(-1), lambda _: clone_local(-1))
        clone_fl_runs, clone_git_runs = interleaved(args.runs, clone_forgeline, clone_local)

        rows = [
            ("clone", clone_fl_runs, clone_git_runs, "git clone --no-local"),
            ("push", push_fl_runs, push_git_runs, "git push file://"),
        ]
        print(f"\nmedian of {args.runs} runs ({args.backend}):")
        verdicts = []
        for name, ours_runs, base_runs, baseline in rows:
            ours, base = statistics.median(ours_runs), statistics.median(base_runs)
            ratio = ours / base
            verdicts.append(ratio <= TARGET_RATIO)
            print(
                f"  {name:5s} forgeline {ours:6.2f} s {_fmt(ours_runs)}  vs  {baseline} "
                f"{base:6.2f} s {_fmt(base_runs)}  ->  {ratio:.2f}x "
                f"(target <= {TARGET_RATIO}x: {'ok' if ratio <= TARGET_RATIO else 'MISSED'})"
            )
        sys.exit(0 if all(verdicts) else 1)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(GIT_HOME, ignore_errors=True)


def _fmt(samples: list[float]) -> str:
    return "[" + ", ".join(f"{s:.2f}" for s in samples) + "]"


if __name__ == "__main__":
    main()
