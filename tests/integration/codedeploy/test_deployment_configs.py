"""CodeDeploy deployment configurations, predefined and custom, through boto3."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.codedeploy.resource_helpers import make_application, make_group, unique
from tests.support.errors import code_of

DEFAULT_ACCOUNT = "000000000000"
PREDEFINED_COUNT = 17


@pytest.fixture(scope="module")
def deploy(forgeline: Any) -> Any:
    return forgeline.client("codedeploy")


@pytest.fixture(scope="module")
def raw(forgeline: Any) -> Any:
    return forgeline.client("codedeploy", parameter_validation=False)


def get_config(deploy: Any, name: str) -> dict[str, Any]:
    return dict(deploy.get_deployment_config(deploymentConfigName=name)["deploymentConfigInfo"])


def test_predefined_configs_answer_as_on_aws(deploy: Any) -> None:
    one = get_config(deploy, "CodeDeployDefault.OneAtATime")
    assert one["deploymentConfigId"] == "00000000-0000-0000-0000-000000000001"
    assert one["minimumHealthyHosts"] == {"type": "MOST_CONCURRENCY", "value": 1}
    assert one["computePlatform"] == "Server"
    assert get_config(deploy, "CodeDeployDefault.HalfAtATime")["minimumHealthyHosts"] == {
        "type": "FLEET_PERCENT",
        "value": 50,
    }
    assert get_config(deploy, "CodeDeployDefault.AllAtOnce")["minimumHealthyHosts"] == {
        "type": "HOST_COUNT",
        "value": 0,
    }
    canary = get_config(deploy, "CodeDeployDefault.LambdaCanary10Percent30Minutes")
    assert canary["computePlatform"] == "Lambda"
    assert canary["trafficRoutingConfig"] == {
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": 10, "canaryInterval": 30},
    }
    linear = get_config(deploy, "CodeDeployDefault.ECSLinear10PercentEvery3Minutes")
    assert linear["computePlatform"] == "ECS"
    assert linear["trafficRoutingConfig"]["timeBasedLinear"] == {
        "linearPercentage": 10,
        "linearInterval": 3,
    }
    assert get_config(deploy, "CodeDeployDefault.ECSAllAtOnce")["trafficRoutingConfig"] == {
        "type": "AllAtOnce"
    }


def test_custom_configs_round_trip(deploy: Any) -> None:
    server = unique("ThreeQuartersHealthy")
    made = deploy.create_deployment_config(
        deploymentConfigName=server,
        minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 75},
        zonalConfig={
            "firstZoneMonitorDurationInSeconds": 120,
            "monitorDurationInSeconds": 60,
            "minimumHealthyHostsPerZone": {"type": "HOST_COUNT", "value": 1},
        },
    )
    info = get_config(deploy, server)
    assert info["deploymentConfigId"] == made["deploymentConfigId"]
    assert info["computePlatform"] == "Server"
    assert info["minimumHealthyHosts"] == {"type": "FLEET_PERCENT", "value": 75}
    assert info["zonalConfig"]["minimumHealthyHostsPerZone"] == {"type": "HOST_COUNT", "value": 1}
    assert "trafficRoutingConfig" not in info

    function = unique("Linear20Every2")
    routing = {
        "type": "TimeBasedLinear",
        "timeBasedLinear": {"linearPercentage": 20, "linearInterval": 2},
    }
    deploy.create_deployment_config(
        deploymentConfigName=function, computePlatform="Lambda", trafficRoutingConfig=routing
    )
    info = get_config(deploy, function)
    assert info["trafficRoutingConfig"] == routing and "minimumHealthyHosts" not in info

    assert code_of(
        deploy.create_deployment_config,
        deploymentConfigName=server,
        minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
    ) == ("DeploymentConfigAlreadyExistsException")


def test_custom_configs_are_checked(deploy: Any, raw: Any) -> None:
    def create(client: Any = deploy, **kwargs: Any) -> str:
        return code_of(
            client.create_deployment_config, deploymentConfigName=unique("Cfg"), **kwargs
        )

    assert create(minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 100}) == (
        "InvalidMinimumHealthyHostValueException"
    )
    assert create(minimumHealthyHosts={"type": "HOST_COUNT", "value": -2}) == (
        "InvalidMinimumHealthyHostValueException"
    )
    assert create() == "InvalidMinimumHealthyHostValueException"
    assert create(
        computePlatform="ECS",
        trafficRoutingConfig={
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": 0, "canaryInterval": 5},
        },
    ) == ("InvalidTrafficRoutingConfigurationException")
    assert create(computePlatform="Lambda", zonalConfig={"monitorDurationInSeconds": 10}) == (
        "InvalidZonalDeploymentConfigurationException"
    )
    assert code_of(
        deploy.create_deployment_config,
        deploymentConfigName="CodeDeployDefault.Mine",
        minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
    ) == ("InvalidDeploymentConfigNameException")
    assert code_of(
        deploy.create_deployment_config,
        deploymentConfigName="CodeDeployDefault.OneAtATime",
        minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
    ) == ("InvalidDeploymentConfigNameException")
    assert create(raw, minimumHealthyHosts={"type": "MOST_CONCURRENCY", "value": 1}) == (
        "InvalidMinimumHealthyHostValueException"
    )
    assert create(raw, computePlatform="Lambda", trafficRoutingConfig={"type": "Sudden"}) == (
        "InvalidTrafficRoutingConfigurationException"
    )
    assert code_of(raw.create_deployment_config, deploymentConfigName="bad name!") == (
        "InvalidDeploymentConfigNameException"
    )
    assert code_of(raw.get_deployment_config) == "DeploymentConfigNameRequiredException"
    assert code_of(deploy.get_deployment_config, deploymentConfigName=unique("Missing")) == (
        "DeploymentConfigDoesNotExistException"
    )


def test_list_holds_predefined_and_custom_configs(forgeline: Any) -> None:
    made = forgeline.cli("accounts", "create", "--name", unique("configs"))
    keys = json.loads(made.stdout)
    client = forgeline.client(
        "codedeploy", credentials=(keys["accessKeyId"], keys["secretAccessKey"])
    )
    listed = client.list_deployment_configs()["deploymentConfigsList"]
    assert len(listed) == PREDEFINED_COUNT
    assert all(name.startswith("CodeDeployDefault.") for name in listed)
    custom = [unique(f"Custom{i:03d}") for i in range(50)]
    for name in custom:
        client.create_deployment_config(
            deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
        )
    # AWS's quota: 50 custom configurations per account and region.
    assert code_of(
        client.create_deployment_config,
        deploymentConfigName=unique("OneTooMany"),
        minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
    ) == ("DeploymentConfigLimitExceededException")
    every = [
        name
        for page in client.get_paginator("list_deployment_configs").paginate()
        for name in page["deploymentConfigsList"]
    ]
    assert sorted(every) == every and len(every) == PREDEFINED_COUNT + 50
    assert set(custom) <= set(every)
    assert code_of(client.list_deployment_configs, nextToken="forged") == (
        "InvalidNextTokenException"
    )
    # The other account's configs are not this one's.
    other = forgeline.client("codedeploy").list_deployment_configs()["deploymentConfigsList"]
    assert not set(custom) & set(other)


def test_delete_refuses_predefined_and_used_configs(deploy: Any) -> None:
    assert code_of(
        deploy.delete_deployment_config, deploymentConfigName="CodeDeployDefault.AllAtOnce"
    ) == ("InvalidDeploymentConfigNameException")
    name = unique("InUse")
    deploy.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
    )
    application = make_application(deploy)
    group = make_group(deploy, application, deploymentConfigName=name)
    assert code_of(deploy.delete_deployment_config, deploymentConfigName=name) == (
        "DeploymentConfigInUseException"
    )
    deploy.update_deployment_group(
        applicationName=application,
        currentDeploymentGroupName=group,
        deploymentConfigName="CodeDeployDefault.OneAtATime",
    )
    deploy.delete_deployment_config(deploymentConfigName=name)
    deploy.delete_deployment_config(deploymentConfigName=name)  # already gone: fine
    assert code_of(deploy.get_deployment_config, deploymentConfigName=name) == (
        "DeploymentConfigDoesNotExistException"
    )


def test_tags_on_custom_configs(deploy: Any) -> None:
    name = unique("Tagged")
    deploy.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
    )
    arn = f"arn:aws:codedeploy:us-east-1:{DEFAULT_ACCOUNT}:deploymentconfig:{name}"
    deploy.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "sre"}])
    assert deploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "sre"}
    ]
    predefined = arn.replace(name, "CodeDeployDefault.OneAtATime")
    assert deploy.list_tags_for_resource(ResourceArn=predefined)["Tags"] == []
    assert code_of(
        deploy.tag_resource, ResourceArn=predefined, Tags=[{"Key": "k", "Value": "v"}]
    ) == ("ArnNotSupportedException")
    deploy.delete_deployment_config(deploymentConfigName=name)
    # Its tags went with it: made again, the configuration has none.
    deploy.create_deployment_config(
        deploymentConfigName=name, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}
    )
    assert deploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == []
    deploy.delete_deployment_config(deploymentConfigName=name)
    assert code_of(deploy.tag_resource, ResourceArn=arn, Tags=[{"Key": "k", "Value": "v"}]) == (
        "DeploymentConfigDoesNotExistException"
    )
