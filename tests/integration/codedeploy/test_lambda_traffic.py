"""Lambda deployments moving real traffic: a function alias is a target group of Forgeline's
traffic proxy whose members are two HTTP backends standing for versions 1 and 2. A canary
deployment (10% for one minute, a minute lasting 6 s here) runs its hook functions, which
answer through PutLifecycleEventHookExecutionStatus, while a loopback load counts who
answers: the share of version 2 during the canary is the configured one, every answer
after it comes from version 2, and none fails. A hook that reports Failed fails the
deployment, and the automatic rollback puts all traffic back on the original version.
Run once, on the suite's Postgres pass (as the other proxy tests).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.codedeploy.fleet import finished
from tests.integration.codedeploy.lambda_support import (
    HookFunctions,
    VersionBackend,
    appspec_revision,
    lambda_appspec,
)
from tests.integration.codedeploy.traffic_support import (
    Load,
    answers_through,
    create_target_group,
    proxy_of,
    server_with_proxy,
)
from tests.support.server import FORGELINE, ForgelineServer

pytestmark = pytest.mark.db("postgres")

APP = "hello-fn-app"
FUNCTION, ALIAS = "hello-fn", "live"
ALIAS_GROUP = f"{FUNCTION}:{ALIAS}"
MINUTE_SECONDS = 6.0
CANARY = "Canary10PercentOneMinute"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/2"


@pytest.fixture(scope="module")
def hooks() -> Iterator[HookFunctions]:
    functions = HookFunctions()
    yield functions
    functions.close()


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, VersionBackend]]:
    versions = {"1": VersionBackend("v1"), "2": VersionBackend("v2")}
    yield versions
    for backend in versions.values():
        backend.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, hooks: HookFunctions
) -> Iterator[ForgelineServer]:
    env = {
        "FORGELINE_LAMBDA_FUNCTION_ROUTES": hooks.routes,
        "FORGELINE_CODEDEPLOY_MINUTE_SECONDS": str(MINUTE_SECONDS),
    }
    with server_with_proxy(tmp_path_factory.mktemp("lambda-traffic"), env) as server:
        hooks.client_factory = lambda: server.client("codedeploy")
        yield server


def register(server: ForgelineServer, version: str, address: str, weight: int) -> None:
    done = subprocess.run(
        [*FORGELINE, "traffic", "member", "register", "--target-group", ALIAS_GROUP,
         "--name", version, "--address", address, "--weight", str(weight)],
        env=server.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def alias_port(server: ForgelineServer, backends: dict[str, VersionBackend]) -> int:
    port = create_target_group(server, ALIAS_GROUP)
    register(server, "1", backends["1"].address, 100)
    register(server, "2", backends["2"].address, 0)
    return port


@pytest.fixture(scope="module")
def codedeploy(server: ForgelineServer, alias_port: int) -> Any:
    client = server.client("codedeploy")
    client.create_application(applicationName=APP, computePlatform="Lambda")
    client.create_deployment_config(
        deploymentConfigName=CANARY,
        computePlatform="Lambda",
        trafficRoutingConfig={
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 1},
        },
    )
    client.create_deployment_group(
        applicationName=APP,
        deploymentGroupName="live",
        serviceRoleArn="arn:aws:iam::123456789012:role/CodeDeployRole",
        deploymentConfigName=CANARY,
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    )
    return client


def deploy(codedeploy: Any, current: str, target: str, hooks: dict[str, str], **extra: Any) -> str:
    content = lambda_appspec(FUNCTION, ALIAS, current, target, hooks)
    return codedeploy.create_deployment(
        applicationName=APP,
        deploymentGroupName="live",
        revision=appspec_revision(content),
        **extra,
    )["deploymentId"]


def target_of(codedeploy: Any, deployment_id: str) -> dict[str, Any]:
    found = codedeploy.get_deployment_target(deploymentId=deployment_id, targetId=ALIAS_GROUP)
    return found["deploymentTarget"]


def test_a_canary_sends_its_share_to_the_new_version_then_all(
    server: ForgelineServer, codedeploy: Any, alias_port: int, hooks: HookFunctions
) -> None:
    assert set(answers_through(alias_port, 20)) == {"v1"}
    with Load(alias_port) as load:
        time.sleep(0.5)
        deployment_id = deploy(
            codedeploy,
            "1",
            "2",
            {"BeforeAllowTraffic": "CheckBefore", "AfterAllowTraffic": "CheckAfter"},
        )
        info = finished(codedeploy, deployment_id)
        time.sleep(0.5)
    assert info["status"] == "Succeeded", info.get("errorInformation")
    assert load.failures == []

    # The share of version 2 between its first answer and version 1's last: the canary.
    timeline = load.timeline
    first_new = next(i for i, (_, answer) in enumerate(timeline) if answer == "v2")
    last_old = max(i for i, (_, answer) in enumerate(timeline) if answer == "v1")
    window = [answer for _, answer in timeline[first_new : last_old + 1]]
    share = window.count("v2") / len(window)
    assert len(window) >= 200, f"only {len(window)} requests in the canary window"
    assert abs(share - 0.10) <= 0.03, f"canary share {share:.3f} over {len(window)} requests"
    canary_seconds = timeline[last_old][0] - timeline[first_new][0]
    assert MINUTE_SECONDS - 1.5 <= canary_seconds <= MINUTE_SECONDS + 1.5, canary_seconds
    assert {answer for _, answer in timeline[last_old + 1 :]} == {"v2"}

    # The hooks ran in AWS's order: before any traffic moved, and after all of it had.
    assert hooks.functions_called()[:2] == ["CheckBefore", "CheckAfter"]
    before_at, after_at = hooks.calls[0][2], hooks.calls[1][2]
    assert before_at < timeline[first_new][0]
    assert after_at > timeline[last_old][0]
    assert all(payload["DeploymentId"] == deployment_id for _, payload, _ in hooks.calls[:2])
    assert [report["status"] for report in hooks.reports[:2]] == ["Succeeded", "Succeeded"]

    target = target_of(codedeploy, deployment_id)
    assert target["deploymentTargetType"] == "LambdaTarget"
    lambda_target = target["lambdaTarget"]
    assert lambda_target["status"] == "Succeeded"
    assert lambda_target["lambdaFunctionInfo"] == {
        "functionName": FUNCTION,
        "functionAlias": ALIAS,
        "currentVersion": "1",
        "targetVersion": "2",
        "targetVersionWeight": 1.0,
    }
    assert [(e["lifecycleEventName"], e["status"]) for e in lambda_target["lifecycleEvents"]] == [
        ("Start", "Succeeded"),
        ("BeforeAllowTraffic", "Succeeded"),
        ("AllowTraffic", "Succeeded"),
        ("AfterAllowTraffic", "Succeeded"),
        ("End", "Succeeded"),
    ]
    weights = {m.name: m.weight for m in proxy_of(server).members(ALIAS_GROUP)}
    assert weights == {"1": 0, "2": 100}

    # A verdict for a hook that is over is refused with AWS's error.
    execution_id = hooks.calls[0][1]["LifecycleEventHookExecutionId"]
    with pytest.raises(codedeploy.exceptions.LifecycleEventAlreadyCompletedException):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id,
            lifecycleEventHookExecutionId=execution_id,
            status="Failed",
        )


def test_a_failed_hook_rolls_the_traffic_back_to_the_original_version(
    codedeploy: Any, alias_port: int, hooks: HookFunctions
) -> None:
    # Version 2 serves everything now; deploy version 1 all at once and let the after
    # hook fail: the rollback puts all traffic back on version 2.
    hooks.verdicts["RejectAfter"] = "Failed"
    deployment_id = deploy(
        codedeploy,
        "2",
        "1",
        {"AfterAllowTraffic": "RejectAfter"},
        deploymentConfigName="CodeDeployDefault.LambdaAllAtOnce",
    )
    info = finished(codedeploy, deployment_id)
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"
    assert "RejectAfter" in info["errorInformation"]["message"]
    rollback_id = info["rollbackInfo"]["rollbackDeploymentId"]
    rollback = finished(codedeploy, rollback_id)
    assert rollback["status"] == "Succeeded", rollback.get("errorInformation")
    assert rollback["rollbackInfo"]["rollbackTriggeringDeploymentId"] == deployment_id
    assert set(answers_through(alias_port, 30)) == {"v2"}
    events = target_of(codedeploy, rollback_id)["lambdaTarget"]["lifecycleEvents"]
    assert [e["lifecycleEventName"] for e in events] == ["Start", "AllowTraffic", "End"]


def test_an_ecs_deployment_moves_test_then_production_traffic(
    server: ForgelineServer, backends: dict[str, VersionBackend]
) -> None:
    """The target group pair stands for the listeners: AllowTestTraffic sends the test
    group to the replacement task definition, AllowTraffic the production one."""
    ports = {name: create_target_group(server, name) for name in ("web-prod", "web-test")}
    proxy = proxy_of(server)
    for name in ports:
        proxy.register(name, "web:1", backends["1"].address, weight=100)
        proxy.register(name, "web:2", backends["2"].address, weight=0)
    client = server.client("codedeploy")
    client.create_application(applicationName="web-ecs", computePlatform="ECS")
    client.create_deployment_group(
        applicationName="web-ecs",
        deploymentGroupName="web",
        serviceRoleArn="arn:aws:iam::123456789012:role/CodeDeployRole",
        deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
        ecsServices=[{"serviceName": "web", "clusterName": "prod"}],
        loadBalancerInfo={
            "targetGroupPairInfoList": [
                {
                    "targetGroups": [{"name": "web-prod"}, {"name": "web-test"}],
                    "prodTrafficRoute": {"listenerArns": [LISTENER]},
                }
            ]
        },
        blueGreenDeploymentConfiguration={
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
            "terminateBlueInstancesOnDeploymentSuccess": {"action": "TERMINATE"},
        },
    )
    appspec = (
        "version: 0.0\nResources:\n  - svc:\n      Type: AWS::ECS::Service\n      Properties:\n"
        '        TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2"\n'
        "        LoadBalancerInfo: {ContainerName: web, ContainerPort: 80}\n"
    )
    with Load(ports["web-prod"]) as load:
        deployment_id = client.create_deployment(
            applicationName="web-ecs",
            deploymentGroupName="web",
            revision=appspec_revision(appspec),
        )["deploymentId"]
        info = finished(client, deployment_id)
    assert info["status"] == "Succeeded", info.get("errorInformation")
    assert load.failures == []
    assert set(answers_through(ports["web-prod"], 20)) == {"v2"}
    assert set(answers_through(ports["web-test"], 20)) == {"v2"}
    target = client.get_deployment_target(deploymentId=deployment_id, targetId="prod:web")
    task_sets = target["deploymentTarget"]["ecsTarget"]["taskSetsInfo"]
    assert [(t["identifer"], t["trafficWeight"]) for t in task_sets] == [("web:2", 100.0)]
