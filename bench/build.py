"""CodeBuild figures, each against a baseline measured in the same run.

1. StartBuild -> the first buildspec command running:
   Docker runner, against a bare `docker run --rm forgeline/tiny:latest true`
   (target: median at most 1.2x, with builds isolated); host-process runner (target: median at most 150 ms).
2. StartBuild -> SUCCEEDED visible in BatchGetBuilds, one-command build on the busybox
   image, against the same bare `docker run` (target: median at most 3x).
3. A line printed by a build -> readable through GetLogEvents (target: p95 at most 500 ms).
4. 50 builds started at once on 2 build slots: all succeed, and the scheduling overhead
   -- wall time beyond (sum of the builds' own run times / slots), relative to it -- is at
   most 10%.

"The first command running" is the moment the build's shell starts the command: the
`[Container] <UTC time with microseconds> Running command echo go` line, whose time the
shell inside the build container writes just before it runs the command. (A log event's
own timestamp is when its batch was stored, up to a tenth of a second later.)

    python bench/build.py [--runs 10] [--builds 50] [--skip-host]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import ForgelineServer  # noqa: E402

IMAGE = "forgeline/tiny:latest"
ONE_COMMAND = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo go\n"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def bare_docker_run() -> float:
    started = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "--network", "none", IMAGE, "true"], check=True)
    return time.perf_counter() - started


@contextmanager
def server(runner: str, **env: str) -> Iterator[ForgelineServer]:
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-build-") as folder:
        extra = {"FORGELINE_BUILD_RUNNER": runner, "FORGELINE_LOG_LEVEL": "WARNING", **env}
        instance = ForgelineServer(Path(folder), extra_env=extra)
        try:
            yield instance.start()
        finally:
            instance.stop()


def project(codebuild: Any, name: str, buildspec: str, **extra: Any) -> str:
    codebuild.create_project(
        name=name,
        source={"type": "NO_SOURCE", "buildspec": buildspec},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": IMAGE,
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole="arn:aws:iam::000000000000:role/bench",
        **extra,
    )
    return name


def wait_complete(codebuild: Any, build_id: str, poll: float = 0.005) -> dict[str, Any]:
    while True:
        build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        if build["buildComplete"]:
            return build
        time.sleep(poll)


def command_start_time(logs: Any, build: dict[str, Any], command: str) -> float:
    """Epoch seconds at which the build's shell started COMMAND (its Running command line)."""
    events = logs.get_log_events(
        logGroupName=build["logs"]["groupName"],
        logStreamName=build["logs"]["streamName"],
        startFromHead=True,
    )["events"]
    suffix = f" Running command {command}"
    for event in events:
        message = event["message"]
        if message.startswith("[Container] ") and message.endswith(suffix):
            stamp = message[len("[Container] ") : -len(suffix)]
            when = dt.datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f")
            return when.replace(tzinfo=dt.UTC).timestamp()
    raise RuntimeError(f"no Running command {command!r} in the log of {build['id']}")


def wait_engine_idle(timeout: float = 30.0) -> None:
    """Wait until the last build's container is gone and the worker's prepared network
    namespaces are back: a start is then measured on an idle engine, as the bare
    `docker run` baseline is."""
    import docker

    from forgeline.codebuild.runners.base import BUILD_ID_LABEL
    from forgeline.codebuild.runners.netns_pool import DEFAULT_POOL_SIZE, HOLDER_LABEL

    api = docker.from_env().api
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        builds = api.containers(all=True, filters={"label": BUILD_ID_LABEL})
        holders = api.containers(filters={"label": HOLDER_LABEL, "status": "running"})
        if not builds and len(holders) >= DEFAULT_POOL_SIZE:
            time.sleep(0.1)
            return
        time.sleep(0.05)
    raise RuntimeError("the engine did not settle after the last build")


def start_to_first_command(
    forgeline: ForgelineServer, runs: int, *, idle: bool
) -> tuple[list[float], list[float]]:
    """(StartBuild -> first command, StartBuild -> SUCCEEDED visible), in seconds; IDLE:
    each build starts once the previous one is torn down, else right after it is visible
    as done (its container is still being removed then)."""
    codebuild = forgeline.client("codebuild")
    logs = forgeline.client("logs")
    name = project(codebuild, f"bench-{time.time_ns()}", ONE_COMMAND)
    wait_complete(codebuild, codebuild.start_build(projectName=name)["build"]["id"])  # warm
    to_first, to_done = [], []
    for _ in range(runs):
        if idle:
            wait_engine_idle()
        asked = time.time()
        started = time.perf_counter()
        build_id = codebuild.start_build(projectName=name)["build"]["id"]
        build = wait_complete(codebuild, build_id)
        to_done.append(time.perf_counter() - started)
        assert build["buildStatus"] == "SUCCEEDED", build["phases"]
        to_first.append(command_start_time(logs, build, "echo go") - asked)
    return to_first, to_done


def log_latency(forgeline: ForgelineServer, lines: int = 40) -> list[float]:
    """Seconds from a line's log timestamp to its first sighting through GetLogEvents."""
    codebuild = forgeline.client("codebuild")
    logs = forgeline.client("logs")
    spec = (
        "version: 0.2\nphases:\n  build:\n    commands:\n"
        f"      - i=0; while [ $i -lt {lines} ]; do echo line-$i; sleep 0.1; i=$((i+1)); done\n"
    )
    name = project(codebuild, f"bench-logs-{time.time_ns()}", spec)
    build = codebuild.start_build(projectName=name)["build"]
    group = f"/aws/codebuild/{name}"
    stream = build["id"].split(":", 1)[1]
    seen: dict[str, float] = {}
    stamps: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while len(seen) < lines and time.monotonic() < deadline:
        try:
            events = logs.get_log_events(
                logGroupName=group, logStreamName=stream, startFromHead=True
            )["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        now = time.time()
        for event in events:
            message = event["message"]
            if message.startswith("line-") and message not in seen:
                seen[message] = now
                stamps[message] = event["timestamp"] / 1000.0
        time.sleep(0.01)
    wait_complete(codebuild, build["id"])
    return [seen[m] - stamps[m] for m in seen]


def many_builds(forgeline: ForgelineServer, count: int, slots: int) -> dict[str, float]:
    codebuild = forgeline.client("codebuild")
    name = project(
        codebuild,
        f"bench-many-{time.time_ns()}",
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 1\n",
    )
    ids: list[str] = []
    lock = threading.Lock()

    def start() -> None:
        build_id = codebuild.start_build(projectName=name)["build"]["id"]
        with lock:
            ids.append(build_id)

    began = time.perf_counter()
    threads = [threading.Thread(target=start) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    builds = [wait_complete(codebuild, build_id, poll=0.05) for build_id in ids]
    last_end = max(b["endTime"] for b in builds)
    first_start = min(b["startTime"] for b in builds)
    wall = (last_end - first_start).total_seconds()
    elapsed = time.perf_counter() - began
    own = 0.0
    for build in builds:
        phases = {p["phaseType"]: p for p in build["phases"]}
        own += (
            phases["FINALIZING"]["endTime"] - phases["PROVISIONING"]["startTime"]
        ).total_seconds()
    ideal = own / slots
    return {
        "succeeded": sum(b["buildStatus"] == "SUCCEEDED" for b in builds),
        "wall": wall,
        "elapsed": elapsed,
        "ideal": ideal,
        "overhead": (wall - ideal) / ideal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--builds", type=int, default=50)
    parser.add_argument("--skip-host", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("FORGELINE_TEST_BACKEND", "sqlite")

    from forgeline.codebuild import images

    images.ensure_image("tiny")
    bare_docker_run()  # warm the image's layers
    bare = statistics.median(bare_docker_run() for _ in range(args.runs))
    print(f"bare `docker run --rm {IMAGE} true`: {bare * 1000:.0f} ms (median of {args.runs})")

    with server("docker") as forgeline:
        to_first, to_done = start_to_first_command(forgeline, args.runs, idle=True)
        first = statistics.median(to_first)
        done = statistics.median(to_done)
        print(
            f"docker runner, isolated: StartBuild -> first command {first * 1000:.0f} ms "
            f"median = {first / bare:.2f}x bare docker run (target <= 1.2x)"
        )
        back_to_back, _ = start_to_first_command(forgeline, args.runs, idle=False)
        print(
            "docker runner, isolated, back to back (the last build's container still being "
            f"removed): StartBuild -> first command {statistics.median(back_to_back) * 1000:.0f}"
            f" ms median = {statistics.median(back_to_back) / bare:.2f}x bare docker run"
        )
        print(
            f"docker runner: StartBuild -> SUCCEEDED visible {done * 1000:.0f} ms median "
            f"= {done / bare:.2f}x bare docker run (target <= 3x)"
        )
        latencies = log_latency(forgeline)
        print(
            f"log line -> readable via GetLogEvents: p50 {percentile(latencies, 0.5) * 1000:.0f}"
            f" ms, p95 {percentile(latencies, 0.95) * 1000:.0f} ms over {len(latencies)} lines "
            "(target p95 <= 500 ms)"
        )

    with server("docker", FORGELINE_BUILD_SLOTS="2") as forgeline:
        figures = many_builds(forgeline, args.builds, slots=2)
        print(
            f"{args.builds} builds on 2 slots: {figures['succeeded']:.0f} succeeded; wall "
            f"{figures['wall']:.1f} s vs own run time / slots {figures['ideal']:.1f} s -> "
            f"scheduling overhead {figures['overhead'] * 100:.1f}% (target <= 10%)"
        )

    if not args.skip_host:
        with server("host") as forgeline:
            to_first, _ = start_to_first_command(forgeline, args.runs, idle=False)
            first = statistics.median(to_first)
            print(
                f"host runner: StartBuild -> first command {first * 1000:.0f} ms median "
                "(target <= 150 ms)"
            )


if __name__ == "__main__":
    main()
