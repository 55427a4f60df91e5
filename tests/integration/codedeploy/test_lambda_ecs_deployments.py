"""Lambda and ECS deployments through the API with no traffic proxy: the deployment runs its
events, invokes its hook functions over HTTP and waits for their verdicts
(PutLifecycleEventHookExecutionStatus), records the traffic shares it moves through, and
fails with AWS's codes on a broken AppSpec or a failed, silent or unreachable hook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.codedeploy.fleet import finished, wait_until
from tests.integration.codedeploy.lambda_support import (
    HookFunctions,
    appspec_revision,
    lambda_appspec,
)
from tests.support.server import ForgelineServer, free_port

ROLE = "arn:aws:iam::123456789012:role/CodeDeployRole"
LAMBDA_EVENTS = ["Start", "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic", "End"]
ECS_APPSPEC = """
version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7"
        LoadBalancerInfo:
          ContainerName: "web"
          ContainerPort: 8080
Hooks:
  - BeforeInstall: "EcsBeforeInstall"
  - AfterInstall: "EcsAfterInstall"
  - AfterAllowTestTraffic: "EcsTestTraffic"
  - BeforeAllowTraffic: "EcsBeforeAllow"
  - AfterAllowTraffic: "EcsAfterAllow"
"""


@pytest.fixture(scope="module")
def hooks() -> Iterator[HookFunctions]:
    functions = HookFunctions()
    yield functions
    functions.close()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, hooks: HookFunctions
) -> Iterator[ForgelineServer]:
    routes = json.loads(hooks.routes)
    routes["Unreachable"] = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    env = {
        "FORGELINE_LAMBDA_FUNCTION_ROUTES": json.dumps(routes),
        "FORGELINE_CODEDEPLOY_MINUTE_SECONDS": "0.2",
    }
    server = ForgelineServer(tmp_path_factory.mktemp("lambda-ecs"), extra_env=env)
    try:
        server.start()
        hooks.client_factory = lambda: server.client("codedeploy")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def codedeploy(server: ForgelineServer) -> Any:
    client = server.client("codedeploy")
    client.create_application(applicationName="fn-app", computePlatform="Lambda")
    client.create_deployment_config(
        deploymentConfigName="LinearQuarter",
        computePlatform="Lambda",
        trafficRoutingConfig={
            "type": "TimeBasedLinear",
            "timeBasedLinear": {"linearPercentage": 25, "linearInterval": 1},
        },
    )
    for name in ("linear", "canary", "stoppable"):
        client.create_deployment_group(
            applicationName="fn-app",
            deploymentGroupName=name,
            serviceRoleArn=ROLE,
            deploymentConfigName="LinearQuarter"
            if name == "linear"
            else "CodeDeployDefault.LambdaCanary10Percent5Minutes",
        )
    return client


def deploy(codedeploy: Any, group: str, content: str, app: str = "fn-app") -> str:
    return codedeploy.create_deployment(
        applicationName=app, deploymentGroupName=group, revision=appspec_revision(content)
    )["deploymentId"]


def only_target(codedeploy: Any, deployment_id: str) -> dict[str, Any]:
    ids = codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    assert len(ids) == 1, ids
    found = codedeploy.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)
    return found["deploymentTargets"][0]


def events_of(target: dict[str, Any]) -> list[tuple[str, str]]:
    body = target.get("lambdaTarget") or target.get("ecsTarget") or {}
    return [(e["lifecycleEventName"], e["status"]) for e in body["lifecycleEvents"]]


def test_a_linear_lambda_deployment_runs_its_hooks_and_records_its_shares(
    codedeploy: Any, hooks: HookFunctions
) -> None:
    content = lambda_appspec(
        "orders", "live", "3", "4", {"BeforeAllowTraffic": "PreCheck", "AfterAllowTraffic": "Post"}
    )
    deployment_id = deploy(codedeploy, "linear", content)
    info = finished(codedeploy, deployment_id)
    assert info["status"] == "Succeeded", info.get("errorInformation")
    assert info["computePlatform"] == "Lambda"
    assert info["deploymentStyle"] == {
        "deploymentType": "BLUE_GREEN",
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
    }
    target = only_target(codedeploy, deployment_id)
    assert target["deploymentTargetType"] == "LambdaTarget"
    assert target["lambdaTarget"]["targetId"] == "orders:live"
    assert target["lambdaTarget"]["targetArn"].endswith(":function:orders:live")
    assert target["lambdaTarget"]["lambdaFunctionInfo"]["targetVersionWeight"] == 1.0
    assert events_of(target) == [(name, "Succeeded") for name in LAMBDA_EVENTS]
    called = [(f, p) for f, p, _ in hooks.calls if p["DeploymentId"] == deployment_id]
    assert [function for function, _ in called] == ["PreCheck", "Post"]
    assert (
        called[0][1]["LifecycleEventHookExecutionId"]
        != called[1][1]["LifecycleEventHookExecutionId"]
    )
    # Four 25% steps, 0.2 s apart: the shift took at least 0.6 s.
    allow = next(
        e for e in target["lambdaTarget"]["lifecycleEvents"]
        if e["lifecycleEventName"] == "AllowTraffic"
    )  # fmt: skip
    assert (allow["endTime"] - allow["startTime"]).total_seconds() >= 0.6


def test_a_broken_appspec_fails_the_deployment_with_aws_code(codedeploy: Any) -> None:
    deployment_id = deploy(codedeploy, "linear", "version: 0.0\nResources: []\n")
    info = finished(codedeploy, deployment_id)
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "INVALID_LAMBDA_CONFIGURATION"
    assert "AppSpec" in info["errorInformation"]["message"]


def test_a_canary_to_the_current_version_is_refused(codedeploy: Any) -> None:
    deployment_id = deploy(codedeploy, "canary", lambda_appspec("orders", "live", "4", "4"))
    info = finished(codedeploy, deployment_id)
    assert info["errorInformation"]["code"] == "INVALID_LAMBDA_CONFIGURATION"
    assert "TargetVersion" in info["errorInformation"]["message"]


def test_a_hook_that_reports_failed_fails_the_deployment(
    codedeploy: Any, hooks: HookFunctions
) -> None:
    hooks.verdicts["Refuser"] = "Failed"
    content = lambda_appspec("orders", "live", "4", "5", {"BeforeAllowTraffic": "Refuser"})
    deployment_id = deploy(codedeploy, "linear", content)
    info = finished(codedeploy, deployment_id)
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"
    target = only_target(codedeploy, deployment_id)
    assert events_of(target)[1:3] == [("BeforeAllowTraffic", "Failed"), ("AllowTraffic", "Skipped")]
    assert target["lambdaTarget"]["lambdaFunctionInfo"]["targetVersionWeight"] == 0.0


def test_an_unreachable_hook_fails_the_deployment_with_the_reason(codedeploy: Any) -> None:
    content = lambda_appspec("orders", "live", "4", "5", {"BeforeAllowTraffic": "Unreachable"})
    info = finished(codedeploy, deploy(codedeploy, "linear", content))
    assert info["status"] == "Failed"
    assert info["errorInformation"]["code"] == "HOOK_EXECUTION_FAILURE"
    assert "Unreachable" in info["errorInformation"]["message"]


def test_hook_verdicts_are_checked_and_a_waiting_deployment_can_be_stopped(
    codedeploy: Any, hooks: HookFunctions
) -> None:
    hooks.verdicts["Silent"] = None
    content = lambda_appspec("orders", "live", "5", "6", {"BeforeAllowTraffic": "Silent"})
    deployment_id = deploy(codedeploy, "stoppable", content)
    wait_until(
        lambda: any(p["DeploymentId"] == deployment_id for _, p, _ in hooks.calls),
        30,
        what="the hook to be invoked",
    )
    errors = codedeploy.exceptions
    with pytest.raises(errors.InvalidLifecycleEventHookExecutionIdException):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId="nope", status="Succeeded"
        )
    execution_id = next(
        p["LifecycleEventHookExecutionId"] for _, p, _ in hooks.calls
        if p["DeploymentId"] == deployment_id
    )  # fmt: skip
    with pytest.raises(errors.InvalidLifecycleEventHookExecutionStatusException):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId=execution_id, status="Pending"
        )
    codedeploy.stop_deployment(deploymentId=deployment_id)
    info = finished(codedeploy, deployment_id)
    assert info["status"] == "Stopped"
    assert info["errorInformation"]["code"] == "MANUAL_STOP"
    with pytest.raises(errors.LifecycleEventAlreadyCompletedException):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id,
            lifecycleEventHookExecutionId=execution_id,
            status="Succeeded",
        )


def test_a_server_deployment_has_no_hook_executions(codedeploy: Any) -> None:
    codedeploy.create_application(applicationName="srv-app", computePlatform="Server")
    codedeploy.create_deployment_group(
        applicationName="srv-app", deploymentGroupName="g", serviceRoleArn=ROLE
    )
    deployment_id = codedeploy.create_deployment(
        applicationName="srv-app",
        deploymentGroupName="g",
        revision={
            "revisionType": "S3",
            "s3Location": {"bucket": "b", "key": "k.zip", "bundleType": "zip"},
        },
    )["deploymentId"]
    with pytest.raises(codedeploy.exceptions.UnsupportedActionForDeploymentTypeException):
        codedeploy.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId="x", status="Succeeded"
        )


def test_an_ecs_deployment_runs_the_ecs_events_and_hooks(
    codedeploy: Any, hooks: HookFunctions
) -> None:
    codedeploy.create_application(applicationName="ecs-app", computePlatform="ECS")
    codedeploy.create_deployment_group(
        applicationName="ecs-app",
        deploymentGroupName="web",
        serviceRoleArn=ROLE,
        deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
        ecsServices=[{"serviceName": "web", "clusterName": "prod"}],
        loadBalancerInfo={
            "targetGroupPairInfoList": [
                {
                    "targetGroups": [{"name": "web-blue"}, {"name": "web-green"}],
                    "prodTrafficRoute": {
                        "listenerArns": [
                            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/2"
                        ]
                    },
                }
            ]
        },
        blueGreenDeploymentConfiguration={
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": 0,
            },
        },
    )
    deployment_id = deploy(codedeploy, "web", ECS_APPSPEC, app="ecs-app")
    info = finished(codedeploy, deployment_id)
    assert info["status"] == "Succeeded", info.get("errorInformation")
    target = only_target(codedeploy, deployment_id)
    assert target["deploymentTargetType"] == "ECSTarget"
    ecs = target["ecsTarget"]
    assert ecs["targetId"] == "prod:web"
    assert [name for name, _ in events_of(target)] == [
        "Start", "BeforeInstall", "Install", "AfterInstall", "AllowTestTraffic",
        "AfterAllowTestTraffic", "BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic", "End",
    ]  # fmt: skip
    assert {status for _, status in events_of(target)} == {"Succeeded"}
    assert [t["identifer"] for t in ecs["taskSetsInfo"]] == ["web:7"]
    assert ecs["taskSetsInfo"][0]["trafficWeight"] == 100.0
    called = [f for f, p, _ in hooks.calls if p["DeploymentId"] == deployment_id]
    assert called == [
        "EcsBeforeInstall", "EcsAfterInstall", "EcsTestTraffic", "EcsBeforeAllow", "EcsAfterAllow",
    ]  # fmt: skip
