"""CodeDeploy deployment groups through boto3 against a running server."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.codedeploy.resource_helpers import (
    ROLE,
    make_application,
    make_group,
    unique,
)
from tests.support.errors import code_of, error_of

DEFAULT_ACCOUNT = "000000000000"
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/1/2"


@pytest.fixture(scope="module")
def deploy(forgeline: Any) -> Any:
    return forgeline.client("codedeploy")


@pytest.fixture(scope="module")
def raw(forgeline: Any) -> Any:
    """A client that sends what it is given, so the server's own checks answer."""
    return forgeline.client("codedeploy", parameter_validation=False)


@pytest.fixture
def app(deploy: Any) -> str:
    return make_application(deploy)


def get_group(deploy: Any, application: str, group: str) -> dict[str, Any]:
    return dict(
        deploy.get_deployment_group(applicationName=application, deploymentGroupName=group)[
            "deploymentGroupInfo"
        ]
    )


def test_a_new_group_answers_with_awss_defaults(deploy: Any, app: str) -> None:
    name = unique("group")
    created = deploy.create_deployment_group(
        applicationName=app,
        deploymentGroupName=name,
        serviceRoleArn=ROLE,
        onPremisesInstanceTagFilters=[{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
    )
    info = get_group(deploy, app, name)
    assert info["deploymentGroupId"] == created["deploymentGroupId"]
    assert info["applicationName"] == app
    assert info["deploymentGroupName"] == name
    assert info["serviceRoleArn"] == ROLE
    assert info["computePlatform"] == "Server"
    assert info["deploymentConfigName"] == "CodeDeployDefault.OneAtATime"
    assert info["deploymentStyle"] == {
        "deploymentType": "IN_PLACE",
        "deploymentOption": "WITHOUT_TRAFFIC_CONTROL",
    }
    assert info["onPremisesInstanceTagFilters"] == [
        {"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}
    ]
    assert info["ec2TagFilters"] == [] and info["autoScalingGroups"] == []
    assert info["triggerConfigurations"] == []
    assert info["alarmConfiguration"] == {
        "enabled": False,
        "ignorePollAlarmFailure": False,
        "alarms": [],
    }
    assert info["outdatedInstancesStrategy"] == "UPDATE"
    assert info["terminationHookEnabled"] is False
    assert "targetRevision" not in info and "lastAttemptedDeployment" not in info

    with pytest.raises(ClientError) as again:
        make_group_named(deploy, app, name)
    assert error_of(again)[0] == "DeploymentGroupAlreadyExistsException"


def make_group_named(deploy: Any, application: str, name: str, **kwargs: Any) -> None:
    deploy.create_deployment_group(
        applicationName=application, deploymentGroupName=name, serviceRoleArn=ROLE, **kwargs
    )


def test_every_member_is_stored_and_returned(deploy: Any, app: str) -> None:
    settings: dict[str, Any] = {
        "deploymentConfigName": "CodeDeployDefault.HalfAtATime",
        "onPremisesTagSet": {
            "onPremisesTagSetList": [
                [{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
                [{"Key": "env", "Type": "KEY_ONLY"}, {"Value": "blue", "Type": "VALUE_ONLY"}],
            ]
        },
        "ec2TagFilters": [{"Key": "Name", "Value": "web", "Type": "KEY_AND_VALUE"}],
        "autoScalingGroups": ["asg-1"],
        "triggerConfigurations": [
            {
                "triggerName": "notify",
                "triggerTargetArn": "https://hooks.example.com/deploys",
                "triggerEvents": ["DeploymentSuccess", "DeploymentFailure"],
            }
        ],
        "alarmConfiguration": {
            "enabled": True,
            "ignorePollAlarmFailure": True,
            "alarms": [{"name": "errors-high"}],
        },
        "autoRollbackConfiguration": {
            "enabled": True,
            "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
        },
        "deploymentStyle": {
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        },
        "loadBalancerInfo": {"targetGroupInfoList": [{"name": "web-tg"}]},
        "blueGreenDeploymentConfiguration": {
            "terminateBlueInstancesOnDeploymentSuccess": {
                "action": "TERMINATE",
                "terminationWaitTimeInMinutes": 30,
            },
            "deploymentReadyOption": {"actionOnTimeout": "CONTINUE_DEPLOYMENT"},
            "greenFleetProvisioningOption": {"action": "DISCOVER_EXISTING"},
        },
        "outdatedInstancesStrategy": "IGNORE",
        "ec2DeploymentOptions": {"autoScalingGroupProcessesToSuspend": ["AZRebalance"]},
        "terminationHookEnabled": True,
    }
    group = make_group(deploy, app, **settings)
    info = get_group(deploy, app, group)
    for member, value in settings.items():
        if member == "autoScalingGroups":
            assert info[member] == [{"name": "asg-1"}]
        else:
            assert info[member] == value, member


def test_lambda_and_ecs_groups(deploy: Any) -> None:
    function_app = make_application(deploy, "Lambda")
    group = make_group(deploy, function_app)
    info = get_group(deploy, function_app, group)
    assert info["computePlatform"] == "Lambda"
    assert info["deploymentConfigName"] == "CodeDeployDefault.LambdaAllAtOnce"
    assert info["deploymentStyle"] == {
        "deploymentType": "BLUE_GREEN",
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
    }
    assert code_of(
        deploy.create_deployment_group,
        applicationName=function_app,
        deploymentGroupName=unique("g"),
        serviceRoleArn=ROLE,
        deploymentStyle={"deploymentType": "IN_PLACE", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
    ) == ("InvalidDeploymentStyleException")

    container_app = make_application(deploy, "ECS")
    service = {"clusterName": "prod", "serviceName": unique("svc")}
    balancer = {
        "targetGroupPairInfoList": [
            {
                "targetGroups": [{"name": "blue-tg"}, {"name": "green-tg"}],
                "prodTrafficRoute": {"listenerArns": [LISTENER]},
            }
        ]
    }
    group = make_group(deploy, container_app, ecsServices=[service], loadBalancerInfo=balancer)
    info = get_group(deploy, container_app, group)
    assert info["deploymentConfigName"] == "CodeDeployDefault.ECSAllAtOnce"
    assert info["ecsServices"] == [service]
    assert code_of(
        deploy.create_deployment_group,
        applicationName=container_app,
        deploymentGroupName=unique("g"),
        serviceRoleArn=ROLE,
        ecsServices=[service],
        loadBalancerInfo=balancer,
    ) == ("ECSServiceMappingLimitExceededException")
    assert code_of(
        deploy.create_deployment_group,
        applicationName=container_app,
        deploymentGroupName=unique("g"),
        serviceRoleArn=ROLE,
        ecsServices=[{"clusterName": "prod", "serviceName": unique("svc")}],
    ) == ("InvalidTargetGroupPairException")


def test_configs_must_exist_and_fit_the_platform(deploy: Any, app: str) -> None:
    def create(config: str) -> str:
        return code_of(
            deploy.create_deployment_group,
            applicationName=app,
            deploymentGroupName=unique("g"),
            serviceRoleArn=ROLE,
            deploymentConfigName=config,
        )

    assert create(unique("NoSuchConfig")) == "DeploymentConfigDoesNotExistException"
    assert create("CodeDeployDefault.LambdaAllAtOnce") == "InvalidDeploymentConfigNameException"
    custom = unique("ThreeHealthy")
    deploy.create_deployment_config(
        deploymentConfigName=custom, minimumHealthyHosts={"type": "HOST_COUNT", "value": 3}
    )
    group = make_group(deploy, app, deploymentConfigName=custom)
    assert get_group(deploy, app, group)["deploymentConfigName"] == custom


def test_refusals_name_what_is_wrong(deploy: Any, raw: Any, app: str) -> None:
    def create(client: Any = deploy, **kwargs: Any) -> str:
        arguments = {
            "applicationName": app,
            "deploymentGroupName": unique("g"),
            "serviceRoleArn": ROLE,
            **kwargs,
        }
        return code_of(client.create_deployment_group, **arguments)

    tag_filter = [{"Key": "a", "Value": "b", "Type": "KEY_AND_VALUE"}]
    assert create(ec2TagFilters=tag_filter, ec2TagSet={"ec2TagSetList": [tag_filter]}) == (
        "InvalidEC2TagCombinationException"
    )
    assert create(
        onPremisesInstanceTagFilters=tag_filter,
        onPremisesTagSet={"onPremisesTagSetList": [tag_filter]},
    ) == ("InvalidOnPremisesTagCombinationException")
    assert create(onPremisesTagSet={"onPremisesTagSetList": [tag_filter] * 4}) == (
        "TagSetListLimitExceededException"
    )
    assert create(serviceRoleArn="arn:aws:iam::123456789012:user/not-a-role") == (
        "InvalidRoleException"
    )
    assert create(
        alarmConfiguration={"enabled": True, "alarms": [{"name": f"a{i}"} for i in range(11)]}
    ) == ("AlarmsLimitExceededException")
    assert create(autoRollbackConfiguration={"enabled": True, "events": []}) == (
        "InvalidAutoRollbackConfigException"
    )
    assert create(applicationName=unique("missing")) == "ApplicationDoesNotExistException"
    assert create(deploymentGroupName="bad name") == "InvalidDeploymentGroupNameException"
    # Members the model constrains, sent as they are.
    assert create(raw, serviceRoleArn=None) == "RoleRequiredException"
    assert create(raw, onPremisesInstanceTagFilters=[{"Key": "a", "Type": "SOME"}]) == (
        "InvalidTagException"
    )
    assert create(raw, ec2TagFilters=[{"Key": "a", "Type": "SOME"}]) == "InvalidEC2TagException"
    assert create(
        raw,
        triggerConfigurations=[
            {"triggerName": "t", "triggerTargetArn": "https://h/x", "triggerEvents": ["Nope"]}
        ],
    ) == ("InvalidTriggerConfigException")
    assert create(raw, deploymentStyle={"deploymentType": "SIDEWAYS"}) == (
        "InvalidDeploymentStyleException"
    )
    assert create(raw, autoRollbackConfiguration={"enabled": True, "events": ["NEVER"]}) == (
        "InvalidAutoRollbackConfigException"
    )


def test_update_changes_only_what_it_names_and_renames(deploy: Any, app: str) -> None:
    group = make_group(
        deploy,
        app,
        onPremisesInstanceTagFilters=[{"Key": "role", "Type": "KEY_ONLY"}],
        tags=[{"Key": "owner", "Value": "ops"}],
    )
    new_name = unique("renamed")
    answer = deploy.update_deployment_group(
        applicationName=app,
        currentDeploymentGroupName=group,
        newDeploymentGroupName=new_name,
        deploymentConfigName="CodeDeployDefault.AllAtOnce",
        alarmConfiguration={"enabled": True, "alarms": [{"name": "latency"}]},
    )
    assert answer["hooksNotCleanedUp"] == []
    info = get_group(deploy, app, new_name)
    assert info["deploymentConfigName"] == "CodeDeployDefault.AllAtOnce"
    assert info["alarmConfiguration"]["alarms"] == [{"name": "latency"}]
    assert info["onPremisesInstanceTagFilters"] == [{"Key": "role", "Type": "KEY_ONLY"}]
    assert code_of(deploy.get_deployment_group, applicationName=app, deploymentGroupName=group) == (
        "DeploymentGroupDoesNotExistException"
    )
    arn = f"arn:aws:codedeploy:us-east-1:{DEFAULT_ACCOUNT}:deploymentgroup:{app}/{new_name}"
    assert deploy.list_tags_for_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "owner", "Value": "ops"}
    ]

    # A tag set given by an update replaces the filters.
    tag_set = {"onPremisesTagSetList": [[{"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"}]]}
    deploy.update_deployment_group(
        applicationName=app, currentDeploymentGroupName=new_name, onPremisesTagSet=tag_set
    )
    info = get_group(deploy, app, new_name)
    assert info["onPremisesTagSet"] == tag_set and info["onPremisesInstanceTagFilters"] == []

    other = make_group(deploy, app)
    assert code_of(
        deploy.update_deployment_group,
        applicationName=app,
        currentDeploymentGroupName=other,
        newDeploymentGroupName=new_name,
    ) == ("DeploymentGroupAlreadyExistsException")
    assert code_of(
        deploy.update_deployment_group,
        applicationName=app,
        currentDeploymentGroupName=unique("missing"),
    ) == ("DeploymentGroupDoesNotExistException")
    assert code_of(
        deploy.update_deployment_group,
        applicationName=app,
        currentDeploymentGroupName=other,
        serviceRoleArn="nope",
    ) == ("InvalidRoleException")


def test_batch_get_list_and_delete(deploy: Any, app: str) -> None:
    groups = sorted(make_group(deploy, app) for _ in range(3))
    listed = deploy.list_deployment_groups(applicationName=app)
    assert listed["applicationName"] == app and listed["deploymentGroups"] == groups

    missing = unique("missing")
    batch = deploy.batch_get_deployment_groups(
        applicationName=app, deploymentGroupNames=[groups[2], missing, groups[0]]
    )
    assert [g["deploymentGroupName"] for g in batch["deploymentGroupsInfo"]] == [
        groups[2],
        groups[0],
    ]
    assert missing in batch["errorMessage"]
    assert code_of(
        deploy.batch_get_deployment_groups,
        applicationName=app,
        deploymentGroupNames=[unique("g") for _ in range(101)],
    ) == ("BatchLimitExceededException")

    answer = deploy.delete_deployment_group(applicationName=app, deploymentGroupName=groups[0])
    assert answer["hooksNotCleanedUp"] == []
    again = deploy.delete_deployment_group(applicationName=app, deploymentGroupName=groups[0])
    assert again["hooksNotCleanedUp"] == []
    assert deploy.list_deployment_groups(applicationName=app)["deploymentGroups"] == groups[1:]
    # The model declares no not-found error for DeleteDeploymentGroup: nothing to delete.
    gone = deploy.delete_deployment_group(applicationName=unique("none"), deploymentGroupName="g")
    assert gone["hooksNotCleanedUp"] == []
    assert code_of(deploy.list_deployment_groups, applicationName=unique("none")) == (
        "ApplicationDoesNotExistException"
    )
