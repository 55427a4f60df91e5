"""Blue/green Server deployments, for real: two `forgeline agent` hosts serve the example
service behind Forgeline's traffic proxy (Blue); a blue/green deployment installs the new
version on two others (Green, found by their tags), waits Ready for ContinueDeployment,
moves traffic to Green and away from Blue, and retires Blue, while a loopback load runs
through the proxy. A replacement that fails its ValidateService leaves traffic on Blue.
Run once, on the suite's Postgres pass (as the other fleet tests).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.codedeploy.fleet import (
    FleetAgent,
    finished,
    fleet,
    targets,
    upload_release,
    wait_until,
)
from tests.integration.codedeploy.traffic_support import (
    Load,
    answers_through,
    create_target_group,
    server_with_proxy,
)
from tests.integration.codedeploy.traffic_support import members as proxy_members
from tests.support.server import ForgelineServer

pytestmark = pytest.mark.db("postgres")

APP = "hello-bg"
BUCKET = "hello-bg-releases"
TARGET_GROUP = "hello-bg-tg"
ROLE = "arn:aws:iam::123456789012:role/CodeDeployRole"
ALLOW = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"]
BLOCK = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgelineServer]:
    with server_with_proxy(tmp_path_factory.mktemp("blue-green")) as server:
        yield server


@pytest.fixture(scope="module")
def proxy_port(server: ForgelineServer) -> int:
    return create_target_group(server, TARGET_GROUP)


def _group(codedeploy: Any, name: str, **extra: Any) -> None:
    codedeploy.create_deployment_group(
        applicationName=APP,
        deploymentGroupName=name,
        serviceRoleArn=ROLE,
        deploymentConfigName="CodeDeployDefault.OneAtATime",
        onPremisesInstanceTagFilters=[{"Key": "Set", "Value": "blue", "Type": "KEY_AND_VALUE"}],
        loadBalancerInfo={"targetGroupInfoList": [{"name": TARGET_GROUP}]},
        **extra,
    )


@pytest.fixture(scope="module")
def codedeploy(server: ForgelineServer, proxy_port: int) -> Any:
    client = server.client("codedeploy")
    client.create_application(applicationName=APP, computePlatform="Server")
    server.client("s3").create_bucket(Bucket=BUCKET)
    # Blue goes into service through an in-place deployment with traffic control.
    _group(
        client,
        "in-place",
        deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
    )
    _group(
        client,
        "blue-green",
        deploymentStyle={
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        blueGreenDeploymentConfiguration={
            "deploymentReadyOption": {
                "actionOnTimeout": "STOP_DEPLOYMENT",
                "waitTimeInMinutes": 60,
            },
            "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": 60,
            },
        },
        autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE"]},
    )
    return client


@pytest.fixture(scope="module")
def hosts(
    server: ForgelineServer, codedeploy: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, list[FleetAgent]]]:
    root = tmp_path_factory.mktemp("fleet-bg")
    with (
        fleet(server, root, "blue-", 2, {"Set": "blue"}) as blue,
        fleet(server, root, "green-", 2, {"Set": "green"}) as green,
    ):
        for agent in (*blue, *green):
            codedeploy.add_tags_to_on_premises_instances(
                tags=[{"Key": "forgeline:address", "Value": f"127.0.0.1:{agent.port}"}],
                instanceNames=[agent.name],
            )
        yield {"blue": blue, "green": green}


def members(server: ForgelineServer) -> set[str]:
    return proxy_members(server, TARGET_GROUP)


def blue_green(server: ForgelineServer, codedeploy: Any, version: str, **options: Any) -> str:
    return codedeploy.create_deployment(
        applicationName=APP,
        deploymentGroupName="blue-green",
        revision=upload_release(server, BUCKET, version, **options),
        targetInstances={"tagFilters": [{"Key": "Set", "Value": "green", "Type": "KEY_AND_VALUE"}]},
    )["deploymentId"]


def info(codedeploy: Any, deployment_id: str) -> dict[str, Any]:
    return codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]


@pytest.fixture(scope="module")
def blue_serving(server, codedeploy, hosts, proxy_port) -> None:
    first = finished(
        codedeploy,
        codedeploy.create_deployment(
            applicationName=APP,
            deploymentGroupName="in-place",
            revision=upload_release(server, BUCKET, "v1"),
        )["deploymentId"],
    )
    assert first["status"] == "Succeeded", first.get("errorInformation")
    assert members(server) == {"blue-0", "blue-1"}


def test_a_replacement_failing_validation_leaves_traffic_on_blue(
    server, codedeploy, hosts, proxy_port, blue_serving
):
    with Load(proxy_port) as load:
        failed = finished(codedeploy, blue_green(server, codedeploy, "v2-bad", validate_exit=1))
    assert failed["status"] == "Failed"
    assert load.failures == [] and set(load.answers) == {"hello-service v1"}
    assert members(server) == {"blue-0", "blue-1"}
    instances = targets(codedeploy, failed["deploymentId"])
    assert {name: t["instanceLabel"] for name, t in instances.items()} == {
        "blue-0": "Blue", "blue-1": "Blue", "green-0": "Green", "green-1": "Green",
    }  # fmt: skip
    assert {instances[b]["status"] for b in ("blue-0", "blue-1")} == {"Skipped"}


def test_a_failure_after_the_reroute_rolls_traffic_back_to_blue(
    server, codedeploy, hosts, proxy_port, blue_serving
):
    with Load(proxy_port) as load:
        deployment_id = blue_green(server, codedeploy, "v2-late", after_allow_exit=1)
        wait_until(lambda: info(codedeploy, deployment_id)["status"] == "Ready", 120, what="Ready")
        codedeploy.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
        failed = finished(codedeploy, deployment_id)
        assert failed["status"] == "Failed"
        rollback_id = wait_until(
            lambda: (
                info(codedeploy, deployment_id).get("rollbackInfo", {}).get("rollbackDeploymentId")
            ),
            30,
            what="the rollback deployment",
        )
        rolled_back = finished(codedeploy, rollback_id)
        assert rolled_back["status"] == "Succeeded", rolled_back.get("errorInformation")
        assert rolled_back["creator"] == "codeDeployRollback"
    assert load.failures == []
    # Traffic is back on Blue alone.
    assert members(server) == {"blue-0", "blue-1"}
    assert answers_through(proxy_port, 20).keys() == {"hello-service v1"}
    back = targets(codedeploy, rollback_id)
    for name in ("blue-0", "blue-1"):
        assert [e["lifecycleEventName"] for e in back[name]["lifecycleEvents"]] == ALLOW
    for name in ("green-0", "green-1"):
        assert [e["lifecycleEventName"] for e in back[name]["lifecycleEvents"]] == BLOCK


def test_blue_green_waits_ready_moves_traffic_and_retires_blue(
    server, codedeploy, hosts, proxy_port, blue_serving
):
    with Load(proxy_port) as load:
        deployment_id = blue_green(server, codedeploy, "v2")
        wait_until(lambda: info(codedeploy, deployment_id)["status"] == "Ready", 120, what="Ready")
        # Green is installed and validated; traffic has not moved.
        assert answers_through(proxy_port, 20).keys() == {"hello-service v1"}
        assert all(host.answer() == "hello-service v2" for host in hosts["green"])
        codedeploy.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
        wait_until(
            lambda: info(codedeploy, deployment_id)["instanceTerminationWaitTimeStarted"],
            120,
            what="the termination wait",
        )
        switched = time.time()
        assert members(server) == {"green-0", "green-1"}
        assert answers_through(proxy_port, 30).keys() == {"hello-service v2"}
        codedeploy.skip_wait_time_for_instance_termination(deploymentId=deployment_id)
        done = finished(codedeploy, deployment_id)
    assert done["status"] == "Succeeded", done.get("errorInformation")
    assert load.failures == []
    # Every request sent after the switch was answered by the new version.
    late = [answer for started, answer in load.timeline if started > switched]
    assert late and set(late) == {"hello-service v2"}
    instances = targets(codedeploy, deployment_id)
    for name in ("green-0", "green-1"):
        names = [e["lifecycleEventName"] for e in instances[name]["lifecycleEvents"]]
        assert names[-3:] == ALLOW and instances[name]["status"] == "Succeeded"
    for name in ("blue-0", "blue-1"):
        assert [e["lifecycleEventName"] for e in instances[name]["lifecycleEvents"]] == BLOCK
        # TERMINATE: the original instances are deregistered.
        blue = codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
        assert "deregisterTime" in blue


def test_continue_deployment_answers_as_aws_when_nothing_waits(server, codedeploy):
    deployment_id = codedeploy.list_deployments(
        applicationName=APP, deploymentGroupName="blue-green"
    )["deployments"][0]
    with pytest.raises(codedeploy.exceptions.DeploymentAlreadyCompletedException):
        codedeploy.continue_deployment(deploymentId=deployment_id, deploymentWaitType="READY_WAIT")
    with pytest.raises(codedeploy.exceptions.InvalidTargetInstancesException):
        codedeploy.create_deployment(
            applicationName=APP,
            deploymentGroupName="blue-green",
            revision=upload_release(server, BUCKET, "v3"),
        )
