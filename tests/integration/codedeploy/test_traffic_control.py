"""In-place deployments WITH_TRAFFIC_CONTROL, for real: three `forgeline agent` hosts run
the example service behind Forgeline's traffic proxy (HAProxy), and a loopback load runs
through the proxy while CodeDeploy takes each host out (BlockTraffic, with its drain),
installs, validates and puts it back (AllowTraffic).

Counted: no request fails during the rollout, every request after it is answered by the
new version, and a host whose ValidateService fails is never put back in its target group.
Run once, on the suite's Postgres pass (as the other fleet tests).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.codedeploy.fleet import (
    LIFECYCLE,
    FleetAgent,
    finished,
    fleet,
    targets,
    upload_release,
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

APP = "hello-tc"
BUCKET = "hello-tc-releases"
GROUP = "web-tc"
TARGET_GROUP = "hello-tg"
ROLE = "arn:aws:iam::123456789012:role/CodeDeployRole"
WITH_TRAFFIC = [
    "BeforeBlockTraffic",
    "BlockTraffic",
    "AfterBlockTraffic",
    *LIFECYCLE,
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgelineServer]:
    with server_with_proxy(tmp_path_factory.mktemp("traffic-control")) as server:
        yield server


@pytest.fixture(scope="module")
def proxy_port(server: ForgelineServer) -> int:
    """The target group the deployment group names, made with the operator's command."""
    return create_target_group(server, TARGET_GROUP)


@pytest.fixture(scope="module")
def codedeploy(server: ForgelineServer, proxy_port: int) -> Any:
    client = server.client("codedeploy")
    client.create_application(applicationName=APP, computePlatform="Server")
    server.client("s3").create_bucket(Bucket=BUCKET)
    client.create_deployment_group(
        applicationName=APP,
        deploymentGroupName=GROUP,
        serviceRoleArn=ROLE,
        deploymentConfigName="CodeDeployDefault.OneAtATime",
        onPremisesInstanceTagFilters=[{"Key": "Role", "Value": "tc", "Type": "KEY_AND_VALUE"}],
        deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
        loadBalancerInfo={"targetGroupInfoList": [{"name": TARGET_GROUP}]},
    )
    return client


@pytest.fixture(scope="module")
def hosts(
    server: ForgelineServer, codedeploy: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[FleetAgent]]:
    """Three agents, each tagged with the address its service answers on."""
    root = tmp_path_factory.mktemp("fleet-tc")
    with fleet(server, root, "tc-", 3, {"Role": "tc"}) as agents:
        for agent in agents:
            codedeploy.add_tags_to_on_premises_instances(
                tags=[{"Key": "forgeline:address", "Value": f"127.0.0.1:{agent.port}"}],
                instanceNames=[agent.name],
            )
        yield agents


def members(server: ForgelineServer) -> set[str]:
    return proxy_members(server, TARGET_GROUP)


def deploy(server: ForgelineServer, codedeploy: Any, version: str, **options: Any) -> str:
    return codedeploy.create_deployment(
        applicationName=APP,
        deploymentGroupName=GROUP,
        revision=upload_release(server, BUCKET, version, **options),
    )["deploymentId"]


def test_rollout_behind_the_proxy_drops_no_request(server, codedeploy, hosts, proxy_port):
    first = finished(codedeploy, deploy(server, codedeploy, "v1"))
    assert first["status"] == "Succeeded", first.get("errorInformation")
    # AllowTraffic put every host in the target group, at its tagged address.
    assert members(server) == {host.name for host in hosts}
    assert answers_through(proxy_port, 30) == Counter({"hello-service v1": 30})

    with Load(proxy_port) as load:
        time.sleep(0.5)
        second = finished(codedeploy, deploy(server, codedeploy, "v2"))
        time.sleep(0.5)
    assert second["status"] == "Succeeded", second.get("errorInformation")
    assert load.failures == []
    assert sum(load.answers.values()) >= 100  # the load really ran through the rollout
    assert load.answers["hello-service v1"] > 0 and load.answers["hello-service v2"] > 0
    assert answers_through(proxy_port, 30) == Counter({"hello-service v2": 30})

    for target in targets(codedeploy, second["deploymentId"]).values():
        events = target["lifecycleEvents"]
        assert [event["lifecycleEventName"] for event in events] == WITH_TRAFFIC
        assert {event["status"] for event in events} == {"Succeeded"}
        # Taken out before it was stopped, put back only after it validated.
        by_name = {event["lifecycleEventName"]: event for event in events}
        assert by_name["BlockTraffic"]["endTime"] <= by_name["ApplicationStop"]["startTime"]
        assert by_name["ValidateService"]["endTime"] <= by_name["AllowTraffic"]["startTime"]


def test_a_host_that_fails_validation_gets_no_traffic(server, codedeploy, hosts, proxy_port):
    with Load(proxy_port) as load:
        failed = finished(codedeploy, deploy(server, codedeploy, "v3", validate_exit=1))
    assert failed["status"] == "Failed"
    assert load.failures == []
    assert "hello-service v3" not in load.answers
    instances = targets(codedeploy, failed["deploymentId"])
    broken = {name for name, target in instances.items() if target["status"] == "Failed"}
    assert len(broken) == 1
    statuses = {
        event["lifecycleEventName"]: event["status"]
        for event in instances[next(iter(broken))]["lifecycleEvents"]
    }
    assert statuses["BlockTraffic"] == "Succeeded"
    assert statuses["ValidateService"] == "Failed"
    assert statuses["AllowTraffic"] == "Skipped"
    # Out of the target group: the proxy sends it nothing; the others still serve v2.
    assert members(server) == {host.name for host in hosts} - broken
    assert answers_through(proxy_port, 20) == Counter({"hello-service v2": 20})


def test_an_instance_without_an_address_fails_at_allow_traffic(
    server, codedeploy, hosts, proxy_port
):
    codedeploy.remove_tags_from_on_premises_instances(
        tags=[{"Key": "forgeline:address"}], instanceNames=[hosts[0].name]
    )
    try:
        outcome = finished(codedeploy, deploy(server, codedeploy, "v4"))
    finally:
        with contextlib.suppress(Exception):
            codedeploy.add_tags_to_on_premises_instances(
                tags=[{"Key": "forgeline:address", "Value": f"127.0.0.1:{hosts[0].port}"}],
                instanceNames=[hosts[0].name],
            )
    # (Whether the whole deployment failed depends on where in the rollout that host came:
    # OneAtATime lets the last host fail.)
    event = next(
        event
        for event in targets(codedeploy, outcome["deploymentId"])[hosts[0].name]["lifecycleEvents"]
        if event["lifecycleEventName"] == "AllowTraffic"
    )
    assert event["status"] == "Failed"
    assert "forgeline:address" in event["diagnostics"]["message"]
