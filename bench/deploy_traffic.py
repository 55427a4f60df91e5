"""CodeDeploy traffic control: an in-place rollout WITH_TRAFFIC_CONTROL behind Forgeline's
traffic proxy (HAProxy), under a loopback load, each figure against a baseline measured in
the same run.

Each of H hosts (default 3) is a real `forgeline agent` plus an HTTP backend run by this
script that answers with the host's name; the proxy's target group (deregistration delay D,
default 1 s) has them all as members. A load thread sends GETs through the proxy, one after
another, for the whole rollout (CodeDeployDefault.OneAtATime, a no-op revision).

1. Failed requests during the rollout. Target: 0.
2. BlockTraffic's duration: new requests stop at once, the ones in flight get up to D to
   finish (the step ends as soon as they have), then the member is removed. Target:
   <= D + 1 s.
3. AllowTraffic -> the host's first answer through the proxy (from the event's start).
   Target: <= 1 s.
5. Blue/green switch under the same load: H replacement hosts (their backends answer their
   own names) take over from the H original ones (CONTINUE_DEPLOYMENT, KEEP_ALIVE; the
   next run switches back). Switch time = from the first AllowTraffic on Green (the
   reroute's start) to the last request the original set answered. Target: 0 failed
   requests, switch time <= D + 1 s.
4. Cost of traffic control per host: (rollout time with it - the same rollout without it,
   measured in the same run) / H: two server steps and four more hook commands per host.
   Baseline: the rollout without traffic control.

    .venv/bin/python bench/deploy_traffic.py [--hosts 3] [--drain 1] [--runs 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_fleet import (  # noqa: E402
    FORGELINE,
    BenchServer,
    fleet,
    free_port,
    noop_bundle,
    running_server,
)

APP = "bench-traffic"
BUCKET = "bench-traffic"
TARGET_GROUP = "bench-tg"
ROLE = "arn:aws:iam::000000000000:role/bench"


class Backend:
    """An HTTP service for one host: answers its name."""

    def __init__(self, name: str) -> None:
        answer = name.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Load:
    """GETs through the proxy, one after another: (wall time, answer or None)."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.requests: list[tuple[float, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.time()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as reply:
                    self.requests.append((started, reply.read().decode()))
            except Exception:
                self.requests.append((started, None))

    @contextmanager
    def running(self) -> Iterator[Load]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)

    def failures(self) -> int:
        return sum(answer is None for _, answer in self.requests)

    def first_answer(self, host: str, after: float) -> float | None:
        return next((t for t, a in self.requests if a == host and t >= after), None)


def make_target_group(server: BenchServer, port: int, drain: float) -> None:
    subprocess.run(
        [*FORGELINE, "traffic", "target-group", "create", "--name", TARGET_GROUP, "--port",
         str(port), "--deregistration-delay", str(drain)],
        env=server.env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def stop_proxy(server: BenchServer) -> None:
    subprocess.run([*FORGELINE, "traffic", "stop"], env=server.env, check=False, timeout=60)


def deployment_group(codedeploy: Any, name: str, *, traffic: bool) -> None:
    codedeploy.create_deployment_group(
        applicationName=APP,
        deploymentGroupName=name,
        serviceRoleArn=ROLE,
        deploymentConfigName="CodeDeployDefault.OneAtATime",
        onPremisesInstanceTagFilters=[
            {"Key": "Bench", "Value": "traffic", "Type": "KEY_AND_VALUE"}
        ],
        deploymentStyle={
            "deploymentType": "IN_PLACE",
            "deploymentOption": "WITH_TRAFFIC_CONTROL" if traffic else "WITHOUT_TRAFFIC_CONTROL",
        },
        loadBalancerInfo={"targetGroupInfoList": [{"name": TARGET_GROUP}]},
    )


def rollout(server: BenchServer, codedeploy: Any, group: str) -> tuple[str, float]:
    """Deploy a fresh no-op revision to GROUP: (deployment id, seconds to Succeeded)."""
    key = f"r-{time.time_ns()}.zip"
    etag = server.client("s3").put_object(Bucket=BUCKET, Key=key, Body=noop_bundle(key))["ETag"]
    started = time.perf_counter()
    deployment_id = codedeploy.create_deployment(
        applicationName=APP,
        deploymentGroupName=group,
        revision={
            "revisionType": "S3",
            "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "zip", "eTag": etag},
        },
    )["deploymentId"]
    while True:
        status = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]["status"]
        if status in ("Succeeded", "Failed", "Stopped"):
            break
        time.sleep(0.05)
    if status != "Succeeded":
        raise RuntimeError(f"deployment {deployment_id} ended {status}")
    return deployment_id, time.perf_counter() - started


def events_of(codedeploy: Any, deployment_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Per instance, its lifecycle events by name."""
    ids = codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    found = codedeploy.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)
    return {
        t["instanceTarget"]["targetId"]: {
            e["lifecycleEventName"]: e for e in t["instanceTarget"]["lifecycleEvents"]
        }
        for t in found["deploymentTargets"]
    }


def seconds(event: dict[str, Any]) -> float:
    start: dt.datetime = event["startTime"]
    end: dt.datetime = event["endTime"]
    return (end - start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--drain", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="forgeline-bench-traffic-") as folder:
        root = Path(folder)
        with running_server(root / "server") as server:
            proxy_port = free_port()
            make_target_group(server, proxy_port, args.drain)
            codedeploy = server.client("codedeploy")
            codedeploy.create_application(applicationName=APP, computePlatform="Server")
            server.client("s3").create_bucket(Bucket=BUCKET)
            names = [f"host-{n}" for n in range(args.hosts)]
            spares = [f"spare-{n}" for n in range(args.hosts)]
            backends = {name: Backend(name) for name in (*names, *spares)}
            hosts = [(n, {"Bench": "traffic"}) for n in names]
            hosts += [(n, {"Bench": "spare"}) for n in spares]
            try:
                with fleet(server, root / "fleet", hosts):
                    for name, backend in backends.items():
                        codedeploy.add_tags_to_on_premises_instances(
                            instanceNames=[name],
                            tags=[{"Key": "forgeline:address", "Value": backend.address}],
                        )
                    deployment_group(codedeploy, "with", traffic=True)
                    deployment_group(codedeploy, "without", traffic=False)
                    rollout(server, codedeploy, "with")  # registers every host
                    rollout(server, codedeploy, "without")  # warm
                    report(args, server, codedeploy, proxy_port)
                    switch_report(args, server, codedeploy, proxy_port, names, spares)
            finally:
                for backend in backends.values():
                    backend.close()
                stop_proxy(server)


def blue_green_group(codedeploy: Any, name: str, original: str) -> None:
    codedeploy.create_deployment_group(
        applicationName=APP,
        deploymentGroupName=name,
        serviceRoleArn=ROLE,
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
        onPremisesInstanceTagFilters=[{"Key": "Bench", "Value": original, "Type": "KEY_AND_VALUE"}],
        deploymentStyle={
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        loadBalancerInfo={"targetGroupInfoList": [{"name": TARGET_GROUP}]},
        blueGreenDeploymentConfiguration={
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
            "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "KEEP_ALIVE"},
        },
    )


def switch(
    server: BenchServer, codedeploy: Any, group: str, replacement: str, port: int
) -> tuple[Load, str]:
    key = f"bg-{time.time_ns()}.zip"
    etag = server.client("s3").put_object(Bucket=BUCKET, Key=key, Body=noop_bundle(key))["ETag"]
    load = Load(port)
    with load.running():
        time.sleep(0.3)
        deployment_id = codedeploy.create_deployment(
            applicationName=APP,
            deploymentGroupName=group,
            revision={
                "revisionType": "S3",
                "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "zip", "eTag": etag},
            },
            targetInstances={
                "tagFilters": [{"Key": "Bench", "Value": replacement, "Type": "KEY_AND_VALUE"}]
            },
        )["deploymentId"]
        while True:
            info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            if info["status"] in ("Succeeded", "Failed", "Stopped"):
                break
            time.sleep(0.05)
        time.sleep(0.3)
    if info["status"] != "Succeeded":
        raise RuntimeError(f"blue/green deployment {deployment_id} ended {info['status']}")
    return load, deployment_id


def switch_report(
    args: argparse.Namespace,
    server: BenchServer,
    codedeploy: Any,
    port: int,
    names: list[str],
    spares: list[str],
) -> None:
    blue_green_group(codedeploy, "to-spare", "traffic")
    blue_green_group(codedeploy, "to-main", "spare")
    switch_times: list[float] = []
    failed = total = 0
    for run in range(args.runs * 2):
        group, replacement = ("to-spare", "spare") if run % 2 == 0 else ("to-main", "traffic")
        old = set(names if run % 2 == 0 else spares)
        load, deployment_id = switch(server, codedeploy, group, replacement, port)
        failed += load.failures()
        total += len(load.requests)
        events = events_of(codedeploy, deployment_id)
        reroute = min(
            e["AllowTraffic"]["startTime"].timestamp()
            for e in events.values()
            if "AllowTraffic" in e
        )
        last_old = max((t for t, a in load.requests if a in old), default=reroute)
        switch_times.append(last_old - reroute)
    print(
        f"blue/green switch, {args.hosts} -> {args.hosts} hosts, {len(switch_times)} switches: "
        f"failed requests {failed} of {total} (target 0); reroute -> last answer from the "
        f"original set: median {statistics.median(switch_times) * 1000:.0f} ms, max "
        f"{max(switch_times) * 1000:.0f} ms (target <= {(args.drain + 1) * 1000:.0f} ms)"
    )


def report(args: argparse.Namespace, server: BenchServer, codedeploy: Any, port: int) -> None:
    with_times, without_times, block_times, allow_first = [], [], [], []
    failed = total = 0
    for _ in range(args.runs):
        _, plain = rollout(server, codedeploy, "without")
        without_times.append(plain)
        load = Load(port)
        with load.running():
            time.sleep(0.3)
            deployment_id, controlled = rollout(server, codedeploy, "with")
            time.sleep(0.3)
        with_times.append(controlled)
        failed += load.failures()
        total += len(load.requests)
        for host, events in events_of(codedeploy, deployment_id).items():
            block_times.append(seconds(events["BlockTraffic"]))
            allowed = events["AllowTraffic"]["startTime"].timestamp()
            first = load.first_answer(host, allowed)
            if first is not None:
                allow_first.append(first - allowed)
    cost = (statistics.median(with_times) - statistics.median(without_times)) / args.hosts
    print(f"{args.hosts} hosts, OneAtATime, drain {args.drain:g} s, {args.runs} runs")
    print(f"failed requests during the rollouts: {failed} of {total} (target 0)")
    print(
        f"BlockTraffic (drain ends when in-flight requests do, at most {args.drain:g} s): median "
        f"{statistics.median(block_times) * 1000:.0f} ms, max {max(block_times) * 1000:.0f} ms "
        f"(target <= {(args.drain + 1) * 1000:.0f} ms)"
    )
    if allow_first:
        print(
            "AllowTraffic -> first answer through the proxy: median "
            f"{statistics.median(allow_first) * 1000:.0f} ms, max "
            f"{max(allow_first) * 1000:.0f} ms (target <= 1000 ms)"
        )
    print(
        f"rollout: {statistics.median(with_times):.2f} s with traffic control vs "
        f"{statistics.median(without_times):.2f} s without ({statistics.median(with_times) / statistics.median(without_times):.2f}x); "
        f"cost per host: {cost * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
