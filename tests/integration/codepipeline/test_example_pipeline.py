"""The whole story, with stock clients: examples/pipeline-app/setup.sh sets up a
repository, a build project, three agents behind the traffic proxy and a pipeline Source ->
Build -> Approval -> Deploy with the AWS CLI; then each `git push` goes all the way:
- v1 and v2 are tested, approved and served through the proxy;
- a broken test fails the pipeline at Build, and v2 still answers;
- a release whose ValidateService fails rolls the deployment back: v2 answers again.
Run once, on the suite's Postgres pass (as the other fleet tests).
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import REPO_ROOT
from tests.support.server import ForgelineServer, free_port

pytestmark = [pytest.mark.db("postgres"), pytest.mark.docker]

NAME = "pipeline-app"
EXAMPLE = REPO_ROOT / "examples" / "pipeline-app"


def _free_block() -> int:
    """A port whose next three are free too (the proxy and the app's three copies), below
    the ephemeral range, where an outgoing connection can take a port between the check
    and the app's bind."""
    for _ in range(200):
        base = random.randrange(20000, 30000, 4)
        if all(_is_free(base + i) for i in range(4)):
            return base
    raise AssertionError("no block of four free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgelineServer]:
    folder = tmp_path_factory.mktemp("pipeline-example")
    env = {"FORGELINE_TLS_PORT": str(free_port()), "FORGELINE_CODEDEPLOY_POLL_SECONDS": "2"}
    server = ForgelineServer(folder, extra_env=env)
    try:
        yield server.start()
    finally:
        server.stop()
        subprocess.run(
            [sys.executable, "-m", "forgeline.cli.main", "traffic", "stop"],
            env=server.env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def shell_env(server: ForgelineServer) -> dict[str, str]:
    """What the README's second shell has: the venv on PATH, the AWS CLI at Forgeline."""
    return {
        **server.env,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_file),
        "AWS_PROFILE": "forgeline",
        "AWS_ENDPOINT_URL": server.url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
        "GIT_COMMITTER_NAME": "dev", "GIT_COMMITTER_EMAIL": "dev@example.com",
    }  # fmt: skip


@pytest.fixture(scope="module")
def demo(
    server: ForgelineServer, shell_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("demo")
    port = _free_block()
    done = subprocess.run(
        ["bash", str(EXAMPLE / "setup.sh"), str(work)],
        env={**shell_env, "PROXY_PORT": str(port)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    try:
        yield {
            "work": work,
            "port": port,
            "pipelines": server.client("codepipeline"),
            "deploy": server.client("codedeploy"),
        }
    finally:
        subprocess.run(["bash", str(EXAMPLE / "teardown.sh"), str(work)], check=False)


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return value


def answer(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
        return reply.read().decode().strip()


def executions(pipelines: Any) -> list[dict[str, Any]]:
    return pipelines.list_pipeline_executions(pipelineName=NAME)["pipelineExecutionSummaries"]


def newest_after(pipelines: Any, seen: set[str]) -> str:
    return wait_for(
        lambda: next(
            (
                e["pipelineExecutionId"]
                for e in executions(pipelines)
                if e["pipelineExecutionId"] not in seen
            ),
            None,
        ),
        30,
        "the push to start an execution",
    )


def status_of(pipelines: Any, execution_id: str) -> str:
    return str(
        pipelines.get_pipeline_execution(pipelineName=NAME, pipelineExecutionId=execution_id)[
            "pipelineExecution"
        ]["status"]
    )


def approve_when_asked(pipelines: Any, execution_id: str) -> None:
    def token() -> str | None:
        if status_of(pipelines, execution_id) != "InProgress":
            raise AssertionError(f"execution {execution_id} ended before its approval")
        states = pipelines.get_pipeline_state(name=NAME)["stageStates"]
        approval = next(s for s in states if s["stageName"] == "Approval")
        latest = approval["actionStates"][0].get("latestExecution") or {}
        return (
            latest.get("token")
            if approval.get("latestExecution", {}).get("pipelineExecutionId") == execution_id
            else None
        )

    pipelines.put_approval_result(
        pipelineName=NAME, stageName="Approval", actionName="Release",
        result={"summary": "ship it", "status": "Approved"},
        token=wait_for(token, 180, "the approval"),
    )  # fmt: skip


def finished(pipelines: Any, execution_id: str) -> str:
    return wait_for(
        lambda: (s := status_of(pipelines, execution_id)) in ("Succeeded", "Failed") and s,
        240,
        f"execution {execution_id} to finish",
    )


def push(demo: dict[str, Any], shell_env: dict[str, str], **files: str) -> None:
    app = demo["work"] / "app"
    for name, content in files.items():
        (app / "app" / name).write_text(content + "\n")
    script = (
        "git add -A && git commit -q -m release && "
        "git -c credential.helper= "
        "-c credential.helper='!aws codecommit credential-helper --ignore-host-check $@' "
        "-c credential.UseHttpPath=true push -q origin main"
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=app, env=shell_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_each_push_goes_from_commit_to_served_version(
    demo: dict[str, Any], shell_env: dict[str, str]
) -> None:
    pipelines, port = demo["pipelines"], demo["port"]
    first = executions(pipelines)[-1]["pipelineExecutionId"]
    approve_when_asked(pipelines, first)
    assert finished(pipelines, first) == "Succeeded"
    assert answer(port) == "pipeline-app v1"

    seen = {e["pipelineExecutionId"] for e in executions(pipelines)}
    push(demo, shell_env, VERSION="v2")
    second = newest_after(pipelines, seen)
    approve_when_asked(pipelines, second)
    assert finished(pipelines, second) == "Succeeded"
    assert {answer(port) for _ in range(9)} == {"pipeline-app v2"}
    web = next(
        d
        for d in pipelines.list_action_executions(
            pipelineName=NAME, filter={"pipelineExecutionId": second}
        )["actionExecutionDetails"]
        if d["actionName"] == "Web"
    )
    hosts = pipelines.list_deploy_action_execution_targets(
        pipelineName=NAME, actionExecutionId=web["actionExecutionId"]
    )["targets"]
    assert len(hosts) == 3 and {h["status"] for h in hosts} == {"Succeeded"}
    assert "ValidateService" in [event["name"] for event in hosts[0]["events"]]

    # A broken test: the pipeline fails at Build and v2 keeps answering.
    seen.add(second)
    push(demo, shell_env, VERSION="oops")
    broken = newest_after(pipelines, seen)
    assert finished(pipelines, broken) == "Failed"
    states = {s["stageName"]: s for s in pipelines.get_pipeline_state(name=NAME)["stageStates"]}
    assert states["Build"]["latestExecution"] == {"pipelineExecutionId": broken, "status": "Failed"}
    assert answer(port) == "pipeline-app v2"

    # A release whose ValidateService fails: the deployment rolls back, v2 answers again.
    seen.add(broken)
    push(demo, shell_env, VERSION="v3", HEALTH="sick")
    unhealthy = newest_after(pipelines, seen)
    approve_when_asked(pipelines, unhealthy)
    assert finished(pipelines, unhealthy) == "Failed"
    states = {s["stageName"]: s for s in pipelines.get_pipeline_state(name=NAME)["stageStates"]}
    assert states["Deploy"]["latestExecution"]["status"] == "Failed"
    deploy = demo["deploy"]
    deployment_id = states["Deploy"]["actionStates"][0]["latestExecution"]["externalExecutionId"]
    info = deploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    wait_for(
        lambda: (
            deploy.get_deployment(deploymentId=rollback_id)["deploymentInfo"]["status"]
            == "Succeeded"
        ),
        180,
        "the rollback",
    )
    assert {answer(port) for _ in range(9)} == {"pipeline-app v2"}
