"""The code before a restructure against the code now: the same workload, one run, ratios.

Two servers run side by side: "before" from a detached git worktree of --before, with a
virtualenv of its own holding the same packages at the same versions as this one (both
made in a temporary folder, removed at the end), and "after" from this checkout's working
tree and virtualenv; each is started with its own Python, from its own tree. Both get the same
settings: one server process, the Docker build runner, production output checking, the
same backend (SQLite by default; with --backend postgres, a fresh database each, Redis as
broker and a separate worker process, the way tests/support/server.py starts them). The
client side -- wrk, boto3, git -- is the very same code for both; only the server differs.

Figures, each measured alternately on the two servers (which one goes first alternates
too), so that drift in machine load hits both alike; each is the median of its samples:

1. GetRepository: requests per second at --connections connections (wrk replaying one
   SigV4-signed request for --seconds), with p50 and p99 latency.
2. Build start: StartBuild -> the first buildspec command's output line (its log event's
   timestamp), Docker runner, image forgeline/tiny:latest; --builds builds per round.
3. git over smart HTTP, a generated history of --commits commits and about --megabytes MB:
   `git push` of the whole history into a new repository, and `git clone --bare` of it.

The table gives after/before for each figure: below 1 means faster now, except for
throughput, where above 1 does.

    .venv/bin/python bench/restructure.py [--before 7c0b0bb] [--rounds 5] [--seconds 10]
        [--connections 16] [--builds 3] [--commits 3000] [--megabytes 10]
        [--backend sqlite|postgres] [--skip-build]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.api_get_repository import request_for, wrk  # noqa: E402
from bench.build import ONE_COMMAND, first_line_time, project  # noqa: E402
from bench.git_clone_push import GIT_HOME, git, make_source  # noqa: E402
from forgeline.core.auth import sigv4  # noqa: E402
from tests.support.server import ForgelineServer  # noqa: E402

BUILD_TIMEOUT = 120.0  # seconds; a one-command build takes about one
API_REPOSITORY = "bench-repo"  # the name the signed GetRepository asks for
SERVER_SETTINGS = {
    "FORGELINE_LOG_LEVEL": "WARNING",
    "FORGELINE_STRICT_OUTPUT": "0",  # the production default; tests turn it on
    "FORGELINE_TLS_PORT": "0",
    "FORGELINE_BUILD_RUNNER": "docker",
    "FORGELINE_WORKERS": "1",
}
# Variables that would point a server at another tree's code or environment.
FOREIGN_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


@dataclass(frozen=True)
class Tree:
    """One version of the code: where it is, the Python that runs it, its command module."""

    label: str
    root: Path
    python: Path

    @property
    def command_module(self) -> str:
        if (self.root / "services" / "forgeline" / "cli" / "__main__.py").exists():
            return "forgeline.cli"
        return "services.core.cli"  # the layout before the package moved

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in base.items() if k not in FOREIGN_VARIABLES}
        venv_bin = self.python.parent
        others = [p for p in env.get("PATH", "").split(os.pathsep) if not _is_venv_bin(p)]
        env["PATH"] = os.pathsep.join([str(venv_bin), *others])
        env["VIRTUAL_ENV"] = str(venv_bin.parent)
        return env


def _is_venv_bin(path: str) -> bool:
    return bool(path) and (Path(path).parent / "pyvenv.cfg").exists()


class TreeServer(ForgelineServer):
    """A ForgelineServer run by one tree's own Python, from that tree's directory."""

    def __init__(self, tree: Tree, data_dir: Path) -> None:
        super().__init__(data_dir, extra_env=SERVER_SETTINGS)
        self.tree = tree
        self.env = tree.environment(self.env)

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process
        process = subprocess.Popen(
            [str(self.tree.python), "-m", self.tree.command_module, *args],
            env=self.env,
            cwd=self.tree.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process


# -- the "before" tree ---------------------------------------------------------------------


def uv() -> str | None:
    bundled = ROOT / ".venv" / ".uv" / "bin" / "uv"
    return str(bundled) if bundled.exists() else shutil.which("uv")


@contextmanager
def before_tree(ref: str, work: Path) -> Iterator[Tree]:
    """A detached worktree of `ref` with a virtualenv of its own, removed afterwards."""
    root = work / "before"
    subprocess.run(
        ["git", "worktree", "add", "--quiet", "--detach", str(root), ref],
        cwd=ROOT,
        check=True,
    )
    try:
        yield Tree(f"before ({ref})", root, make_virtualenv(root, work / "before-venv"))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(root)], cwd=ROOT, check=False)


def make_virtualenv(tree: Path, venv: Path) -> Path:
    """`venv` with every package of this virtualenv, at the same versions, and the tree
    installed editable: the two servers differ in their own code only."""
    started = time.perf_counter()
    python = venv / "bin" / "python"
    tool = uv()
    if tool:
        freeze = [tool, "pip", "freeze", "--exclude-editable", "--python", sys.executable]
        create = [tool, "venv", "-q", "--python", sys.executable, str(venv)]
        install = [tool, "pip", "install", "-q", "--python", str(python)]
    else:
        freeze = [sys.executable, "-m", "pip", "freeze", "--exclude-editable"]
        create = [sys.executable, "-m", "venv", str(venv)]
        install = [str(python), "-m", "pip", "install", "-q"]
    packages = venv.parent / "packages.txt"
    packages.write_text(subprocess.run(freeze, capture_output=True, text=True, check=True).stdout)
    subprocess.run(create, check=True)
    # -c as well as -r: what the tree itself requires resolves to the same versions too.
    subprocess.run(
        [*install, "-r", str(packages), "-c", str(packages), "-e", str(tree)], check=True
    )
    print(f"virtualenv for {tree.name} ready in {time.perf_counter() - started:.0f} s")
    return python


# -- measuring -----------------------------------------------------------------------------


Samples = dict[str, list[float]]


def alternating(
    servers: list[TreeServer], times: int, measure: Callable[[TreeServer], None]
) -> None:
    """Run `measure` on every server `times` times, swapping which goes first each time."""
    for index in range(times):
        order = servers if index % 2 == 0 else list(reversed(servers))
        for server in order:
            measure(server)


def api_figures(servers: list[TreeServer], args: argparse.Namespace) -> dict[str, Samples]:
    figures: dict[str, Samples] = {"rps": {}, "p50": {}, "p99": {}}
    for server in servers:
        server.client("codecommit").create_repository(repositoryName=API_REPOSITORY)
        for samples in figures.values():
            samples[server.tree.label] = []

    def run_wrk(server: TreeServer, seconds: int) -> dict[str, float]:
        # Signed afresh each run: a signature is only good for a quarter of an hour.
        headers, body = request_for(server.url, server.admin_credentials())
        return wrk(server.url, headers, body, seconds, args.connections)

    def measure(server: TreeServer) -> None:
        result = run_wrk(server, args.seconds)
        if result["errors"]:
            raise RuntimeError(f"{server.tree.label}: {result['errors']} non-2xx answers")
        label = server.tree.label
        figures["rps"][label].append(result["rps"])
        figures["p50"][label].append(result["p50_ms"])
        figures["p99"][label].append(result["p99_ms"])
        print(
            f"  GetRepository {label:24s} {result['rps']:8.0f} req/s  "
            f"p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms"
        )

    alternating(servers, 1, lambda server: run_wrk(server, 2))  # warm-up
    alternating(servers, args.rounds, measure)
    return figures


def finished_build(server: TreeServer, codebuild: Any, build_id: str) -> dict[str, Any]:
    """The build once complete; an error, with the server's log, if it never gets there."""
    deadline = time.monotonic() + BUILD_TIMEOUT
    while time.monotonic() < deadline:
        build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        if build["buildComplete"]:
            return build
        if any(process.poll() is not None for process in server.processes):
            break
        time.sleep(0.005)
    raise RuntimeError(f"{server.tree.label}: build {build_id} did not finish:\n{server.log()}")


def build_start(servers: list[TreeServer], args: argparse.Namespace) -> Samples:
    samples: Samples = {server.tree.label: [] for server in servers}
    projects = {}
    for server in servers:
        codebuild = server.client("codebuild")
        projects[server.tree.label] = project(codebuild, "bench-restructure", ONE_COMMAND)

    def run_build(server: TreeServer) -> float:
        codebuild, logs = server.client("codebuild"), server.client("logs")
        asked = time.time()
        build_id = codebuild.start_build(projectName=projects[server.tree.label])["build"]["id"]
        build = finished_build(server, codebuild, build_id)
        if build["buildStatus"] != "SUCCEEDED":
            raise RuntimeError(f"{server.tree.label}: build {build_id} {build['buildStatus']}")
        return first_line_time(logs, build, "go") - asked

    def measure(server: TreeServer) -> None:
        seconds = run_build(server)
        samples[server.tree.label].append(seconds * 1000)
        print(f"  build start   {server.tree.label:24s} {seconds * 1000:8.0f} ms")

    alternating(servers, 1, run_build)  # warm-up: the image's layers, the first imports
    alternating(servers, args.rounds * args.builds, measure)
    return samples


def git_figures(
    servers: list[TreeServer], args: argparse.Namespace, work: Path
) -> tuple[str, dict[str, Samples]]:
    source = work / "source.git"
    pack_bytes = make_source(source, args.commits, args.megabytes)
    count = int(git("rev-list", "--count", "main", cwd=source).stdout)
    described = f"{count} commits, {pack_bytes / 1e6:.0f} MB pack"
    figures: dict[str, Samples] = {"push": {}, "clone": {}}
    for samples in figures.values():
        for server in servers:
            samples[server.tree.label] = []
    pushes = {server.tree.label: 0 for server in servers}

    def url(server: TreeServer, name: str) -> str:
        key, secret = server.admin_credentials()
        host = f"127.0.0.1:{server.port}"
        password = sigv4.git_password(secret, f"/v1/repos/{name}", host, "us-east-1")
        return f"http://{key}:{password}@{host}/v1/repos/{name}"

    def push(server: TreeServer) -> float:
        pushes[server.tree.label] += 1
        name = f"bench-push-{pushes[server.tree.label]}"
        server.client("codecommit").create_repository(repositoryName=name)
        target = url(server, name)
        started = time.perf_counter()
        git("push", "-q", target, "main", cwd=source)
        return time.perf_counter() - started

    def clone(server: TreeServer) -> float:
        target = Path(tempfile.mkdtemp(prefix="clone-", dir=work)) / "clone.git"
        started = time.perf_counter()
        git("clone", "-q", "--bare", url(server, "bench-push-1"), str(target))
        elapsed = time.perf_counter() - started
        shutil.rmtree(target.parent)
        return elapsed

    def measure(server: TreeServer) -> None:
        label = server.tree.label
        figures["push"][label].append(push(server))
        figures["clone"][label].append(clone(server))
        print(
            f"  git           {label:24s} push {figures['push'][label][-1]:6.2f} s  "
            f"clone {figures['clone'][label][-1]:6.2f} s"
        )

    alternating(servers, 1, lambda server: (push(server), clone(server)))  # warm-up
    alternating(servers, args.rounds, measure)
    return described, figures


# -- report --------------------------------------------------------------------------------


def table(rows: list[tuple[str, Samples, int]], before: str, after: str) -> None:
    """One line per figure: its median before and after, and the ratio after/before."""
    width = max(len(name) for name, _, _ in rows)
    print(f"\n{'figure':{width}s}  {'before':>9s}  {'after':>9s}  after/before")
    for name, samples, decimals in rows:
        old, new = statistics.median(samples[before]), statistics.median(samples[after])
        print(f"{name:{width}s}  {old:9.{decimals}f}  {new:9.{decimals}f}  {new / old:11.2f}x")


def ensure_tools(skip_build: bool) -> None:
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    if not skip_build:
        from forgeline.codebuild import images

        images.ensure_image("tiny")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", default="7c0b0bb", help="git ref of the code before")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--builds", type=int, default=3, help="builds per round and server")
    parser.add_argument("--commits", type=int, default=3000)
    parser.add_argument("--megabytes", type=int, default=10)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--skip-build", action="store_true", help="no build figure (no Docker)")
    args = parser.parse_args()
    # A plain `kill` (or `timeout`) still stops the servers and removes the worktree.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.environ["FORGELINE_TEST_BACKEND"] = args.backend
    ensure_tools(args.skip_build)

    work = Path(tempfile.mkdtemp(prefix="forgeline-bench-restructure-"))
    try:
        with ExitStack() as stack:
            before = stack.enter_context(before_tree(args.before, work))
            after = Tree("after (working tree)", ROOT, Path(sys.executable))
            servers = []
            for tree, folder in ((before, "before-data"), (after, "after-data")):
                (work / folder).mkdir()
                server = TreeServer(tree, work / folder)
                stack.callback(server.stop)
                servers.append(server.start())
            print(f"servers up ({args.backend}): " + ", ".join(s.tree.label for s in servers))

            rows: list[tuple[str, Samples, int]] = []
            api = api_figures(servers, args)
            rows += [
                (f"GetRepository, {args.connections} connections (req/s)", api["rps"], 0),
                ("GetRepository p50 latency (ms)", api["p50"], 2),
                ("GetRepository p99 latency (ms)", api["p99"], 2),
            ]
            if not args.skip_build:
                build = build_start(servers, args)
                rows.append(("StartBuild -> first command output (ms)", build, 0))
            described, gits = git_figures(servers, args, work)
            rows += [
                (f"git push, {described} (s)", gits["push"], 2),
                (f"git clone --bare, {described} (s)", gits["clone"], 2),
            ]
            print(
                f"\nmedians of {args.rounds} rounds (build start: {args.rounds * args.builds} "
                f"builds) per server, {args.backend}, one server process each"
            )
            table(rows, before.label, after.label)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(GIT_HOME, ignore_errors=True)


if __name__ == "__main__":
    main()
