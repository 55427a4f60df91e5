"""CodeDeploy in-place deployments through real agents, each figure against a baseline
measured in the same run.

1. A no-op revision (an appspec with no files and no hooks) to N agents (default 10) with
   CodeDeployDefault.AllAtOnce: CreateDeployment -> Succeeded seen by GetDeployment (polled
   every 25 ms). Target: <= 3 s. Baseline: `forgeline deploy-local` of the same bundle on
   one host, no server (a process start and the seven lifecycle events).
2. CodeDeployDefault.OneAtATime over H agents (default 5), with a revision whose one hook
   sleeps a known time (0.5 s; the hook records its own start and end): overhead per host =
   (wall time - the hooks' own run time) / hosts. Target: <= 0.5 s per host. The same with
   the no-op revision. Baseline: `forgeline deploy-local` of the same bundle minus its hook.
3. Command delivery: from a command being queued to the waiting agent getting it, read from
   the server's own rows (deploy_host_commands: handed_out_at - created_at) for every
   command of the runs above that was queued while its agent was idle in a long poll (its
   host had finished its previous command well before). Target: p95 <= 200 ms. Baseline:
   a bare boto3 GetDeployment round trip. Commands queued by their host's own completion
   (the agent is not polling yet) are shown apart: that figure includes the agent's turn.

The server is the embedded default (SQLite, in-process worker); `--backend postgres` runs
the same server on a fresh database of the local Postgres. A breakdown of where a
command's time goes (from the same rows) follows the table.

    .venv/bin/python bench/deploy.py [--agents 10] [--hosts 5] [--runs 3] [--backend postgres]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_fleet import (  # noqa: E402
    FORGELINE,
    STAMPS_VARIABLE,
    BenchServer,
    FleetAgent,
    fleet,
    noop_bundle,
    read_stamps,
    running_server,
    sleeping_hook_bundle,
)

APP = "bench"
ALL, ONE = "AllAtOnce", "OneAtATime"
BUCKET = "bench-releases"
ROLE = "arn:aws:iam::123456789012:role/CodeDeployBench"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
POLL_SECONDS = 0.025
# A host's first command of a deployment counts as queued "while the agent waited" when
# the host's previous command finished at least this long before: the agent is back in its
# long poll by then.
IDLE_GAP_SECONDS = 0.25
# The pause before each measured deployment (not part of its time).
SETTLE_SECONDS = 0.5

TARGET_NOOP_SECONDS = 3.0
TARGET_OVERHEAD_PER_HOST = 0.5
TARGET_DELIVERY_P95 = 0.200


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# -- baselines -------------------------------------------------------------------------------
def deploy_local(folder: Path, bundle: bytes, runs: int) -> list[tuple[float, float]]:
    """(wall seconds, the hook's own seconds) of `forgeline deploy-local` runs of `bundle`."""
    bundle_file = folder / f"{uuid.uuid4().hex[:8]}.zip"
    bundle_file.write_bytes(bundle)
    stamps = folder / "local-stamps.txt"
    env = {**os.environ, STAMPS_VARIABLE: str(stamps)}
    results = []
    for _ in range(runs):
        stamps.unlink(missing_ok=True)
        started = time.perf_counter()
        subprocess.run(
            [
                *FORGELINE,
                "deploy-local",
                "--bundle-location",
                str(bundle_file),
                "--application-folder",
                str(folder / "local-root"),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - started
        hooks = sum(sum(times) for times in read_stamps(stamps).values())
        results.append((wall, hooks))
    return results


def get_deployment_round_trip(codedeploy: Any, deployment_id: str, calls: int = 40) -> float:
    codedeploy.get_deployment(deploymentId=deployment_id)  # warm the connection
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        codedeploy.get_deployment(deploymentId=deployment_id)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# -- deployments -----------------------------------------------------------------------------
class Releases:
    """Uploads bundles to the server's S3 and deploys them, timing each deployment."""

    def __init__(self, server: BenchServer) -> None:
        self.codedeploy = server.client("codedeploy")
        self.s3 = server.client("s3")
        self.s3.create_bucket(Bucket=BUCKET)
        self.codedeploy.create_application(applicationName=APP, computePlatform="Server")
        # The round trips of the GetDeployment polls made while deployments ran.
        self.busy_round_trips: list[float] = []

    def group(self, name: str, config: str, tag: tuple[str, str]) -> str:
        self.codedeploy.create_deployment_group(
            applicationName=APP,
            deploymentGroupName=name,
            serviceRoleArn=ROLE,
            deploymentConfigName=config,
            onPremisesInstanceTagFilters=[
                {"Key": tag[0], "Value": tag[1], "Type": "KEY_AND_VALUE"}
            ],
        )
        return name

    def upload(self, bundle: bytes) -> dict[str, Any]:
        key = f"revisions/{uuid.uuid4().hex}.zip"
        etag = self.s3.put_object(Bucket=BUCKET, Key=key, Body=bundle)["ETag"]
        return {
            "revisionType": "S3",
            "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "zip", "eTag": etag},
        }

    def deploy(self, group: str, bundle: bytes, timeout: float = 300) -> tuple[str, float]:
        """(deployment id, seconds from CreateDeployment to Succeeded seen)."""
        revision = self.upload(bundle)
        started = time.perf_counter()
        deployment_id = self.codedeploy.create_deployment(
            applicationName=APP, deploymentGroupName=group, revision=revision
        )["deploymentId"]
        while True:
            asked = time.perf_counter()
            info = self.codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            self.busy_round_trips.append(time.perf_counter() - asked)
            status = info["status"]
            if status == "Succeeded":
                return deployment_id, time.perf_counter() - started
            if status in ("Failed", "Stopped"):
                raise RuntimeError(
                    f"deployment {deployment_id} {status}: {info.get('errorInformation')}"
                )
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"deployment {deployment_id} still {status} after {timeout} s")
            time.sleep(POLL_SECONDS)


def hook_seconds(agents: Iterable[FleetAgent], deployment_id: str) -> float:
    return sum(sum(read_stamps(agent.stamps).get(deployment_id, [])) for agent in agents)


# -- the server's record of its commands -----------------------------------------------------
def _when(value: Any) -> dt.datetime | None:
    """A timestamp column as either backend returns it to a plain query."""
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def command_rows(server: BenchServer) -> list[dict[str, Any]]:
    engine = server.database()
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT id, deployment_id, host_identifier, command_name, status, "
                    "created_at, handed_out_at, acknowledged_at, completed_at "
                    "FROM deploy_host_commands"
                )
            ).mappings()
            found = []
            for row in rows:
                record = dict(row)
                for column in ("created_at", "handed_out_at", "acknowledged_at", "completed_at"):
                    record[column] = _when(record[column])
                found.append(record)
            return found
    finally:
        engine.dispose()


def deployment_rows(server: BenchServer) -> dict[str, dict[str, Any]]:
    engine = server.database()
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, create_time, start_time, complete_time FROM deploy_deployments")
            ).mappings()
            return {
                row["id"]: {column: _when(row[column]) for column in row if column != "id"}
                for row in rows
            }
    finally:
        engine.dispose()


def delivery_latencies(
    commands: list[dict[str, Any]], deployment_ids: set[str]
) -> tuple[list[float], list[float]]:
    """Seconds from queued to handed out of these deployments' commands:
    (queued while the agent waited in a poll, queued by the host's own completion).

    A host's later commands in a deployment are queued by its own completion of the one
    before, before the agent polls again. Its first one was queued by something else (the
    start, another host finishing): the agent was waiting if its previous command, of an
    earlier deployment, had finished well before."""
    finished_by_host: dict[str, list[dt.datetime]] = {}
    first_of_host: dict[tuple[str, str], dict[str, Any]] = {}
    for command in sorted(commands, key=lambda c: c["created_at"]):
        if command["completed_at"] is not None:
            finished_by_host.setdefault(command["host_identifier"], []).append(
                command["completed_at"]
            )
        first_of_host.setdefault((command["deployment_id"], command["host_identifier"]), command)
    waiting: list[float] = []
    chained: list[float] = []
    for command in commands:
        if command["deployment_id"] not in deployment_ids or command["handed_out_at"] is None:
            continue
        created = command["created_at"]
        latency = (command["handed_out_at"] - created).total_seconds()
        if first_of_host[(command["deployment_id"], command["host_identifier"])] is not command:
            chained.append(latency)
            continue
        before = [t for t in finished_by_host.get(command["host_identifier"], []) if t <= created]
        if not before or (created - max(before)).total_seconds() >= IDLE_GAP_SECONDS:
            waiting.append(latency)

    return waiting, chained


def _seconds(later: dt.datetime | None, earlier: dt.datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


def breakdown(
    commands: list[dict[str, Any]],
    deployments: dict[str, dict[str, Any]],
    measured: set[str],
    seen: dict[str, float],
) -> list[tuple[str, list[float]]]:
    """Where a deployment's time goes, per command and per deployment (seconds)."""
    phases: dict[str, list[float]] = {
        "CreateDeployment -> first command queued (start job)": [],
        "handed out -> acknowledged (spec fetch + ack)": [],
        "acknowledged -> completed (run + report)": [],
        "last command completed -> deployment complete": [],
        "deployment complete -> Succeeded seen by the client": [],
    }
    by_deployment: dict[str, list[dict[str, Any]]] = {}
    for command in commands:
        if command["deployment_id"] in measured:
            by_deployment.setdefault(command["deployment_id"], []).append(command)
    for deployment_id, own in by_deployment.items():
        info = deployments[deployment_id]
        first = _seconds(min(c["created_at"] for c in own), info["create_time"])
        last_done = max((c["completed_at"] for c in own if c["completed_at"]), default=None)
        finishing = _seconds(info["complete_time"], last_done)
        for name, value in (
            ("CreateDeployment -> first command queued (start job)", first),
            ("last command completed -> deployment complete", finishing),
        ):
            if value is not None:
                phases[name].append(value)
        if info["complete_time"] is not None and deployment_id in seen:
            phases["deployment complete -> Succeeded seen by the client"].append(
                seen[deployment_id] - info["complete_time"].timestamp()
            )
        for command in own:
            for name, later, earlier in (
                (
                    "handed out -> acknowledged (spec fetch + ack)",
                    "acknowledged_at",
                    "handed_out_at",
                ),
                ("acknowledged -> completed (run + report)", "completed_at", "acknowledged_at"),
            ):
                value = _seconds(command[later], command[earlier])
                if value is not None:
                    phases[name].append(value)
    return list(phases.items())


# -- the report ------------------------------------------------------------------------------
class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(
        self,
        figure: str,
        target: str,
        measured: str,
        baseline: str = "",
        ratio: str = "",
        passed: bool | None = None,
    ) -> None:
        verdict = "" if passed is None else ("pass" if passed else "FAIL")
        self.rows.append((figure, target, measured, baseline, ratio, verdict))

    def print(self) -> None:
        header = ("figure", "target", "measured", "baseline", "ratio", "")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(len(header))]
        for row in [header, tuple("-" * w for w in widths), *self.rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@dataclasses.dataclass
class LocalFigures:
    noop_wall: float  # seconds, `forgeline deploy-local` of the no-op bundle
    hook_overhead: float  # seconds, of the hook bundle, minus the hook's own run time


@dataclasses.dataclass
class FleetFigures:
    noop_all: list[float] = dataclasses.field(default_factory=list)  # wall seconds
    hook_overheads: list[float] = dataclasses.field(default_factory=list)  # per host
    noop_overheads: list[float] = dataclasses.field(default_factory=list)  # per host
    round_trip: float = 0.0  # an idle GetDeployment
    busy_round_trip: float = 0.0  # GetDeployment while deployments ran
    # Measured deployment id -> its rollout (AllAtOnce / OneAtATime).
    measured: dict[str, str] = dataclasses.field(default_factory=dict)
    # Measured deployment id -> epoch seconds at which the client saw it Succeeded.
    seen: dict[str, float] = dataclasses.field(default_factory=dict)
    commands: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    deployments: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def of(self, rollout: str) -> set[str]:
        return {d for d, kind in self.measured.items() if kind == rollout}


def measure_local(args: argparse.Namespace, folder: Path) -> LocalFigures:
    print("baseline: forgeline deploy-local (one host, no server) ...", flush=True)
    noop = deploy_local(folder, noop_bundle("local"), args.runs)
    hook = deploy_local(folder, sleeping_hook_bundle("local", args.hook_seconds), args.runs)
    return LocalFigures(
        noop_wall=statistics.median(wall for wall, _ in noop),
        hook_overhead=statistics.median(wall - own for wall, own in hook),
    )


def measure_fleet(args: argparse.Namespace, folder: Path) -> FleetFigures:
    figures = FleetFigures()
    pg = args.pg_admin_url if args.backend == "postgres" else None
    with running_server(folder / "server", pg_admin_url=pg) as server:
        releases = Releases(server)
        everyone = releases.group("all", "CodeDeployDefault.AllAtOnce", ("Role", "bench"))
        some = releases.group("some", "CodeDeployDefault.OneAtATime", ("OneAtATime", "yes"))
        hosts = [
            (f"bench-{n}", {"Role": "bench", **({"OneAtATime": "yes"} if n < args.hosts else {})})
            for n in range(args.agents)
        ]
        print(f"registering and starting {args.agents} agents ...", flush=True)
        with fleet(server, folder / "fleet", hosts) as agents:

            def timed(group: str, rollout: str, bundle: bytes) -> tuple[str, float]:
                # Every agent idle in its long poll first: the first command of each host
                # is then delivered to a waiting agent (figure 3).
                time.sleep(SETTLE_SECONDS)
                deployment_id, seconds = releases.deploy(group, bundle)
                figures.measured[deployment_id] = rollout
                figures.seen[deployment_id] = time.time()
                return deployment_id, seconds

            # The first deployment of a group has no previous revision (ApplicationStop is
            # skipped) and finds the agents just started: a warm-up, not measured.
            print("warm-up deployments ...", flush=True)
            warm_id, _ = releases.deploy(everyone, noop_bundle("warm-all"))
            releases.deploy(some, noop_bundle("warm-some"))
            figures.round_trip = get_deployment_round_trip(releases.codedeploy, warm_id)
            releases.busy_round_trips.clear()

            print(f"1. no-op, AllAtOnce, {args.agents} agents x {args.runs} ...", flush=True)
            for n in range(args.runs):
                figures.noop_all.append(timed(everyone, ALL, noop_bundle(f"all-{n}"))[1])

            hook = args.hook_seconds
            print(f"2. OneAtATime, {args.hosts} agents, {hook} s hook, then no-op ...", flush=True)
            for n in range(args.one_at_a_time_runs):
                bundle = sleeping_hook_bundle(f"one-{n}", hook)
                deployment_id, seconds = timed(some, ONE, bundle)
                own = hook_seconds(agents, deployment_id)
                figures.hook_overheads.append((seconds - own) / args.hosts)
            for n in range(args.one_at_a_time_runs):
                seconds = timed(some, ONE, noop_bundle(f"one-noop-{n}"))[1]
                figures.noop_overheads.append(seconds / args.hosts)
            figures.busy_round_trip = statistics.median(releases.busy_round_trips)

        figures.commands = command_rows(server)
        figures.deployments = deployment_rows(server)
    return figures


def figures_table(args: argparse.Namespace, local: LocalFigures, results: FleetFigures) -> Table:
    table = Table()
    noop = statistics.median(results.noop_all)
    table.add(
        f"1. no-op AllAtOnce to {args.agents} agents, median of {len(results.noop_all)}",
        f"<= {TARGET_NOOP_SECONDS:.0f} s",
        f"{noop:.2f} s (best {min(results.noop_all):.2f})",
        f"deploy-local {local.noop_wall:.2f} s",
        f"{noop / local.noop_wall:.1f}x",
        noop <= TARGET_NOOP_SECONDS,
    )
    hooked = statistics.median(results.hook_overheads)
    table.add(
        f"2. OneAtATime {args.hosts} hosts, {args.hook_seconds} s hook: overhead/host",
        f"<= {ms(TARGET_OVERHEAD_PER_HOST)}",
        f"{ms(hooked)} (best {ms(min(results.hook_overheads))})",
        f"deploy-local {ms(local.hook_overhead)}",
        f"{hooked / local.hook_overhead:.1f}x",
        hooked <= TARGET_OVERHEAD_PER_HOST,
    )
    bare = statistics.median(results.noop_overheads)
    table.add(
        f"   OneAtATime {args.hosts} hosts, no-op: overhead/host",
        f"<= {ms(TARGET_OVERHEAD_PER_HOST)}",
        f"{ms(bare)} (best {ms(min(results.noop_overheads))})",
        f"deploy-local {ms(local.noop_wall)}",
        f"{bare / local.noop_wall:.1f}x",
        bare <= TARGET_OVERHEAD_PER_HOST,
    )
    waiting, chained = delivery_latencies(results.commands, set(results.measured))
    baseline = f"GetDeployment {ms(results.round_trip)}"
    if waiting:
        p95 = percentile(waiting, 0.95)
        table.add(
            f"3. delivery to a waiting agent, p95 of {len(waiting)}",
            f"<= {ms(TARGET_DELIVERY_P95)}",
            f"{ms(p95)} (median {ms(statistics.median(waiting))}, max {ms(max(waiting))})",
            baseline,
            f"{p95 / results.round_trip:.1f}x",
            p95 <= TARGET_DELIVERY_P95,
        )
    if chained:
        p95 = percentile(chained, 0.95)
        table.add(
            f"   queued by its host's own completion, p95 of {len(chained)}",
            "(agent's turn)",
            f"{ms(p95)} (median {ms(statistics.median(chained))}, max {ms(max(chained))})",
            baseline,
            f"{p95 / results.round_trip:.1f}x",
        )
    return table


def where_the_time_goes(args: argparse.Namespace, results: FleetFigures) -> None:
    print("where the time goes (median / p95 / max over the measured deployments):")
    phases = breakdown(results.commands, results.deployments, set(results.measured), results.seen)
    for rollout, woken in ((ALL, f"{args.agents} agents at once"), (ONE, "one agent")):
        waiting, _ = delivery_latencies(results.commands, results.of(rollout))
        phases.append((f"queued -> handed out to a waiting agent, {woken}", waiting))
    for name, values in phases:
        if values:
            print(
                f"  {name:<60} {ms(statistics.median(values)):>8} "
                f"{ms(percentile(values, 0.95)):>8} {ms(max(values)):>8}  (n={len(values)})"
            )


def run(args: argparse.Namespace, folder: Path) -> None:
    local = measure_local(args, folder)
    results = measure_fleet(args, folder)
    print()
    print(
        f"backend: {args.backend}; {os.cpu_count()} cores; GetDeployment polled every "
        f"{ms(POLL_SECONDS)}; its round trip: {ms(results.round_trip)} idle (the latency "
        f"baseline), {ms(results.busy_round_trip)} median while deployments ran"
    )
    figures_table(args, local, results).print()
    print()
    where_the_time_goes(args, results)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=10, help="agents for the AllAtOnce runs")
    parser.add_argument("--hosts", type=int, default=5, help="agents for the OneAtATime runs")
    parser.add_argument("--runs", type=int, default=3, help="no-op AllAtOnce repetitions")
    parser.add_argument("--one-at-a-time-runs", type=int, default=2)
    parser.add_argument("--hook-seconds", type=float, default=0.5)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, db)")
    args = parser.parse_args()
    if not 0 < args.hosts <= args.agents:
        parser.error("--hosts must be between 1 and --agents")
    folder = Path(tempfile.mkdtemp(prefix="forgeline-bench-deploy-"))
    try:
        run(args, folder)
    finally:
        if args.keep:
            print(f"work folder kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
