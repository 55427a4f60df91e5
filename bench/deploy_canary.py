"""CodeDeploy Lambda canary: the share of traffic a canary deployment really gives the new
version, measured at Forgeline's traffic proxy, against a baseline measured in the same run.

A function's alias is a target group of the proxy; two HTTP backends run by this script
stand for versions 1 and 2 (each answers its version). A load thread sends GETs through
the proxy, one after another.

1. Canary share: a Lambda deployment with a TimeBasedCanary 10% config (a minute lasting
   --minute seconds) moves the alias from one version to the other; the canary window runs
   from the new version's first answer to the old version's last. Observed share of the new
   version in that window, and its error against 10%. Target: error <= 3 percentage points
   over >= 1,000 requests, and no failed request through the whole deployment.
2. Baseline: the same proxy with the weights set by hand to 90/10 (no deployment), over
   the same number of requests. The canary's error is reported next to the baseline's:
   what the deployment adds to HAProxy's own weighting.
3. Canary duration against the configured interval (one minute = --minute seconds).

Each run deploys in the other direction (1 -> 2, then 2 -> 1, ...).

    .venv/bin/python bench/deploy_canary.py [--minute 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_fleet import FORGELINE, BenchServer, free_port  # noqa: E402
from deploy_traffic import Backend, Load, stop_proxy  # noqa: E402

APP = "bench-canary"
FUNCTION, ALIAS = "bench-fn", "live"
ALIAS_GROUP = f"{FUNCTION}:{ALIAS}"
CONFIG = "BenchCanary10Percent1Minute"
ROLE = "arn:aws:iam::000000000000:role/bench"
SHARE = 0.10


def forgeline(server: BenchServer, *args: str) -> None:
    subprocess.run([*FORGELINE, *args], env=server.env, check=True, capture_output=True, timeout=60)


def register(server: BenchServer, version: str, address: str, weight: int) -> None:
    forgeline(server, "traffic", "member", "register", "--target-group", ALIAS_GROUP,
              "--name", version, "--address", address, "--weight", str(weight))  # fmt: skip


def prepare(codedeploy: Any) -> None:
    codedeploy.create_application(applicationName=APP, computePlatform="Lambda")
    codedeploy.create_deployment_config(
        deploymentConfigName=CONFIG,
        computePlatform="Lambda",
        trafficRoutingConfig={
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 1},
        },
    )
    codedeploy.create_deployment_group(
        applicationName=APP,
        deploymentGroupName="live",
        serviceRoleArn=ROLE,
        deploymentConfigName=CONFIG,
    )


def appspec(current: str, target: str) -> str:
    return (
        "version: 0.0\nResources:\n  - fn:\n      Type: AWS::Lambda::Function\n"
        f"      Properties:\n        Name: {FUNCTION}\n        Alias: {ALIAS}\n"
        f'        CurrentVersion: "{current}"\n        TargetVersion: "{target}"\n'
    )


def canary(codedeploy: Any, port: int, current: str, target: str) -> dict[str, float]:
    load = Load(port)
    with load.running():
        time.sleep(0.5)
        deployment_id = codedeploy.create_deployment(
            applicationName=APP,
            deploymentGroupName="live",
            revision={
                "revisionType": "AppSpecContent",
                "appSpecContent": {"content": appspec(current, target)},
            },
        )["deploymentId"]
        while True:
            info = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
            if info["status"] in ("Succeeded", "Failed", "Stopped"):
                break
            time.sleep(0.2)
        time.sleep(0.5)
    if info["status"] != "Succeeded":
        raise SystemExit(f"deployment {deployment_id} ended {info['status']}: {info}")
    new, old = f"v{target}", f"v{current}"
    answers = load.requests
    first_new = next(i for i, (_, a) in enumerate(answers) if a == new)
    last_old = max(i for i, (_, a) in enumerate(answers) if a == old)
    window = [a for _, a in answers[first_new : last_old + 1]]
    return {
        "requests": len(window),
        "share": window.count(new) / len(window),
        "failed": load.failures(),
        "seconds": answers[last_old][0] - answers[first_new][0],
    }


def baseline(server: BenchServer, port: int, backends: dict[str, Backend], count: int) -> float:
    """The new version's share with the weights set by hand to 90/10."""
    register(server, "1", backends["1"].address, 90)
    register(server, "2", backends["2"].address, 10)
    seen = []
    load = Load(port)
    with load.running():
        while len(load.requests) < count:
            time.sleep(0.05)
    seen = [a for _, a in load.requests[:count]]
    return seen.count("v2") / len(seen)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minute", type=float, default=10.0, help="seconds a minute lasts")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    backends = {"1": Backend("v1"), "2": Backend("v2")}
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-canary-") as folder:
        server = BenchServer(Path(folder))
        server.env["FORGELINE_CODEDEPLOY_MINUTE_SECONDS"] = str(args.minute)
        server.start()
        try:
            port = free_port()
            forgeline(server, "traffic", "target-group", "create", "--name", ALIAS_GROUP,
                      "--port", str(port), "--deregistration-delay", "1")  # fmt: skip
            codedeploy = server.client("codedeploy")
            prepare(codedeploy)
            canaries, baselines = [], []
            for run in range(args.runs):
                current, target = ("1", "2") if run % 2 == 0 else ("2", "1")
                register(server, current, backends[current].address, 100)
                register(server, target, backends[target].address, 0)
                canaries.append(canary(codedeploy, port, current, target))
                baselines.append(baseline(server, port, backends, int(canaries[-1]["requests"])))
        finally:
            server.stop()
            stop_proxy(server)
    for backend in backends.values():
        backend.close()
    report(args, canaries, baselines)


def report(
    args: argparse.Namespace, canaries: list[dict[str, float]], baselines: list[float]
) -> None:
    print(f"Lambda canary 10% for one minute ({args.minute:g} s), {args.runs} runs")
    for number, (run, base) in enumerate(zip(canaries, baselines, strict=True), 1):
        print(
            f"  run {number}: {run['requests']:.0f} requests in the canary window, "
            f"share {run['share']:.2%} (error {abs(run['share'] - SHARE) * 100:.2f} pp); "
            f"baseline 90/10 by hand {base:.2%} (error {abs(base - SHARE) * 100:.2f} pp); "
            f"window {run['seconds']:.2f} s; failed {run['failed']:.0f}"
        )
    errors = [abs(run["share"] - SHARE) * 100 for run in canaries]
    base_errors = [abs(base - SHARE) * 100 for base in baselines]
    windows = [run["seconds"] for run in canaries]
    print(
        f"median canary share error {statistics.median(errors):.2f} pp "
        f"(target <= 3 pp over >= 1,000 requests; fewest requests "
        f"{min(run['requests'] for run in canaries):.0f}); "
        f"baseline error {statistics.median(base_errors):.2f} pp"
    )
    print(
        f"failed requests {sum(run['failed'] for run in canaries):.0f} (target 0); "
        f"canary window / configured minute: {statistics.median(windows) / args.minute:.2f}x"
    )


if __name__ == "__main__":
    main()
