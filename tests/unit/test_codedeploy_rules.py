"""CodeDeploy's pure rules: which instances a group's tags select, deployment group
settings, revision locations, deployment configurations and ARNs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

import pytest

from forgeline.codedeploy import arns, configs, group_rules, revision_rules
from forgeline.codedeploy.generated import errors
from forgeline.codedeploy.tag_matching import matching_instances
from forgeline.core.protocol.errors import AwsError

ROLE = "arn:aws:iam::123456789012:role/CodeDeployServiceRole"
NOW = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)


@dataclasses.dataclass
class Host:
    name: str
    tags: list[dict[str, str]]
    deregistered_at: dt.datetime | None = None


def tags(**pairs: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in pairs.items()]


HOSTS = [
    Host("web-prod", tags(role="web", env="prod")),
    Host("web-dev", tags(role="web", env="dev")),
    Host("db-prod", tags(role="db", env="prod")),
    Host("lonely", tags(owner="prod")),
    Host("gone", tags(role="web", env="prod"), deregistered_at=NOW),
]


def names(selected: list[Host]) -> list[str]:
    return [host.name for host in selected]


# -- matching_instances ----------------------------------------------------------------------
def test_key_only_filter_selects_every_instance_with_the_key() -> None:
    group = {"onPremisesInstanceTagFilters": [{"Key": "role", "Type": "KEY_ONLY"}]}
    assert names(matching_instances(group, HOSTS)) == ["web-prod", "web-dev", "db-prod"]


def test_value_only_filter_matches_the_value_under_any_key() -> None:
    group = {"onPremisesInstanceTagFilters": [{"Value": "prod", "Type": "VALUE_ONLY"}]}
    assert names(matching_instances(group, HOSTS)) == ["web-prod", "db-prod", "lonely"]


def test_key_and_value_filter_needs_the_exact_tag() -> None:
    group = {
        "onPremisesInstanceTagFilters": [{"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"}]
    }
    assert names(matching_instances(group, HOSTS)) == ["web-prod", "db-prod"]


def test_filters_of_one_list_are_alternatives() -> None:
    group = {
        "onPremisesInstanceTagFilters": [
            {"Key": "role", "Value": "db", "Type": "KEY_AND_VALUE"},
            {"Key": "owner", "Type": "KEY_ONLY"},
        ]
    }
    assert names(matching_instances(group, HOSTS)) == ["db-prod", "lonely"]


def test_tag_set_needs_a_match_in_every_group() -> None:
    group = {
        "onPremisesTagSet": {
            "onPremisesTagSetList": [
                [{"Key": "role", "Value": "web", "Type": "KEY_AND_VALUE"}],
                [
                    {"Key": "env", "Value": "prod", "Type": "KEY_AND_VALUE"},
                    {"Key": "env", "Value": "staging", "Type": "KEY_AND_VALUE"},
                ],
            ]
        }
    }
    assert names(matching_instances(group, HOSTS)) == ["web-prod"]


def test_filters_without_a_type_mean_what_they_give() -> None:
    group = {"onPremisesInstanceTagFilters": [{"Key": "env", "Value": "dev"}]}
    assert names(matching_instances(group, HOSTS)) == ["web-dev"]


def test_matching_is_case_sensitive_and_skips_deregistered_instances() -> None:
    group = {"onPremisesInstanceTagFilters": [{"Key": "Role", "Type": "KEY_ONLY"}]}
    assert matching_instances(group, HOSTS) == []
    group = {"onPremisesInstanceTagFilters": [{"Key": "role", "Type": "KEY_ONLY"}]}
    assert "gone" not in names(matching_instances(group, HOSTS))


def test_a_group_without_on_premises_tags_selects_nothing() -> None:
    assert matching_instances({}, HOSTS) == []
    ec2_only = {"ec2TagFilters": [{"Key": "role", "Type": "KEY_ONLY"}]}
    assert matching_instances(ec2_only, HOSTS) == []


# -- deployment group settings ------------------------------------------------------------------
def normalize(request: dict[str, Any], platform: str = "Server", **kwargs: Any) -> dict[str, Any]:
    return group_rules.normalize_group(request, platform, "us-east-1", **kwargs)


def code(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(AwsError) as caught:
        call(*args, **kwargs)
    return caught.value.code


def test_a_server_group_gets_aws_defaults() -> None:
    document = normalize({})
    assert document["deploymentStyle"] == {
        "deploymentType": "IN_PLACE",
        "deploymentOption": "WITHOUT_TRAFFIC_CONTROL",
    }
    assert document["alarmConfiguration"] == {
        "enabled": False,
        "ignorePollAlarmFailure": False,
        "alarms": [],
    }
    assert document["outdatedInstancesStrategy"] == "UPDATE"
    assert document["ec2TagFilters"] == document["onPremisesInstanceTagFilters"] == []
    assert document["terminationHookEnabled"] is False


@pytest.mark.parametrize("platform", ["Lambda", "ECS"])
def test_lambda_and_ecs_groups_are_blue_green_with_traffic_control(platform: str) -> None:
    extra: dict[str, Any] = {}
    if platform == "ECS":
        extra = {
            "ecsServices": [{"clusterName": "c", "serviceName": "s"}],
            "loadBalancerInfo": {
                "targetGroupPairInfoList": [
                    {
                        "targetGroups": [{"name": "blue"}, {"name": "green"}],
                        "prodTrafficRoute": {
                            "listenerArns": [
                                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/2"
                            ]
                        },
                    }
                ]
            },
        }
    document = normalize(extra, platform)
    assert document["deploymentStyle"] == {
        "deploymentType": "BLUE_GREEN",
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
    }
    in_place = {**extra, "deploymentStyle": {"deploymentType": "IN_PLACE"}}
    assert code(normalize, in_place, platform) == "InvalidDeploymentStyleException"


def test_tag_filters_and_tag_sets_exclude_each_other() -> None:
    both = {
        "ec2TagFilters": [{"Key": "a", "Type": "KEY_ONLY"}],
        "ec2TagSet": {"ec2TagSetList": [[{"Key": "a", "Type": "KEY_ONLY"}]]},
    }
    assert code(normalize, both) == "InvalidEC2TagCombinationException"
    both_on_premises = {
        "onPremisesInstanceTagFilters": [{"Key": "a", "Type": "KEY_ONLY"}],
        "onPremisesTagSet": {"onPremisesTagSetList": [[{"Key": "a", "Type": "KEY_ONLY"}]]},
    }
    assert code(normalize, both_on_premises) == "InvalidOnPremisesTagCombinationException"


def test_an_update_giving_a_tag_set_replaces_the_filters() -> None:
    current = normalize({"onPremisesInstanceTagFilters": [{"Key": "a", "Type": "KEY_ONLY"}]})
    tag_set = {"onPremisesTagSetList": [[{"Key": "b", "Type": "KEY_ONLY"}]]}
    document = normalize({"onPremisesTagSet": tag_set}, current=current)
    assert document["onPremisesInstanceTagFilters"] == []
    assert document["onPremisesTagSet"] == tag_set


def test_an_update_keeps_the_members_it_leaves_out() -> None:
    current = normalize(
        {
            "onPremisesInstanceTagFilters": [{"Key": "a", "Type": "KEY_ONLY"}],
            "alarmConfiguration": {"enabled": True, "alarms": [{"name": "cpu"}]},
        }
    )
    document = normalize({"outdatedInstancesStrategy": "IGNORE"}, current=current)
    assert document["onPremisesInstanceTagFilters"] == [{"Key": "a", "Type": "KEY_ONLY"}]
    assert document["alarmConfiguration"]["alarms"] == [{"name": "cpu"}]
    assert document["outdatedInstancesStrategy"] == "IGNORE"


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ({"onPremisesInstanceTagFilters": [{"Type": "KEY_ONLY"}]}, "InvalidTagException"),
        ({"ec2TagFilters": [{"Key": "k", "Type": "VALUE_ONLY"}]}, "InvalidEC2TagException"),
        (
            {"onPremisesTagSet": {"onPremisesTagSetList": [[{"Key": "a"}]] * 4}},
            "TagSetListLimitExceededException",
        ),
        ({"alarmConfiguration": {"enabled": True, "alarms": []}}, "InvalidAlarmConfigException"),
        (
            {"alarmConfiguration": {"alarms": [{"name": f"a{i}"} for i in range(11)]}},
            "AlarmsLimitExceededException",
        ),
        (
            {"alarmConfiguration": {"alarms": [{"name": "same"}, {"name": "same"}]}},
            "InvalidAlarmConfigException",
        ),
        (
            {"autoRollbackConfiguration": {"enabled": True, "events": []}},
            "InvalidAutoRollbackConfigException",
        ),
        (
            {
                "triggerConfigurations": [
                    {
                        "triggerName": f"t{i}",
                        "triggerTargetArn": "https://h/x",
                        "triggerEvents": ["DeploymentStart"],
                    }
                    for i in range(11)
                ]
            },
            "TriggerTargetsLimitExceededException",
        ),
        (
            {
                "triggerConfigurations": [
                    {
                        "triggerName": "t",
                        "triggerTargetArn": "ftp://h",
                        "triggerEvents": ["DeploymentStart"],
                    }
                ]
            },
            "InvalidTriggerConfigException",
        ),
        (
            {
                "triggerConfigurations": [
                    {
                        "triggerName": "t",
                        "triggerTargetArn": "arn:aws:sns:eu-west-1:123456789012:topic",
                        "triggerEvents": ["DeploymentStart"],
                    }
                ]
            },
            "InvalidTriggerConfigException",
        ),
        (
            {"deploymentStyle": {"deploymentOption": "WITH_TRAFFIC_CONTROL"}},
            "InvalidLoadBalancerInfoException",
        ),
        (
            {
                "blueGreenDeploymentConfiguration": {
                    "terminateBlueInstancesOnDeploymentSuccess": {
                        "action": "TERMINATE",
                        "terminationWaitTimeInMinutes": 5000,
                    }
                }
            },
            "InvalidBlueGreenDeploymentConfigurationException",
        ),
        (
            {
                "blueGreenDeploymentConfiguration": {
                    "greenFleetProvisioningOption": {"action": "COPY_AUTO_SCALING_GROUP"}
                }
            },
            "InvalidBlueGreenDeploymentConfigurationException",
        ),
        ({"ecsServices": [{"clusterName": "c", "serviceName": "s"}]}, "InvalidECSServiceException"),
    ],
)
def test_broken_group_settings_get_the_models_error(request_: dict[str, Any], error: str) -> None:
    assert code(normalize, request_) == error


def test_triggers_take_sns_topics_of_the_region_and_webhook_urls() -> None:
    triggers = [
        {
            "triggerName": "topic",
            "triggerTargetArn": "arn:aws:sns:us-east-1:123456789012:deploys",
            "triggerEvents": ["DeploymentSuccess", "DeploymentSuccess", "DeploymentFailure"],
        },
        {
            "triggerName": "hook",
            "triggerTargetArn": "https://ci.example.com/codedeploy",
            "triggerEvents": ["InstanceFailure"],
        },
    ]
    document = normalize({"triggerConfigurations": triggers})
    assert document["triggerConfigurations"][0]["triggerEvents"] == [
        "DeploymentSuccess",
        "DeploymentFailure",
    ]
    assert [t["triggerName"] for t in document["triggerConfigurations"]] == ["topic", "hook"]


def test_an_ecs_service_belongs_to_one_group() -> None:
    request = {
        "ecsServices": [{"clusterName": "c", "serviceName": "s"}],
        "loadBalancerInfo": {
            "targetGroupPairInfoList": [
                {
                    "targetGroups": [{"name": "blue"}, {"name": "green"}],
                    "prodTrafficRoute": {
                        "listenerArns": [
                            "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/x/1/2"
                        ]
                    },
                }
            ]
        },
    }
    assert (
        code(normalize, request, "ECS", ecs_services_in_use={("c", "s")})
        == "ECSServiceMappingLimitExceededException"
    )


def test_service_role_arns_must_be_iam_roles() -> None:
    assert group_rules.check_role_arn(ROLE) == ROLE
    assert group_rules.check_role_arn("arn:aws:iam::123456789012:role/path/to/Role") is not None
    for wrong in ("role", "arn:aws:iam::123456789012:user/bob", "arn:aws:iam::12345:role/x"):
        assert code(group_rules.check_role_arn, wrong) == "InvalidRoleException"


# -- revisions ------------------------------------------------------------------------------------
S3 = {
    "revisionType": "S3",
    "s3Location": {"bucket": "b", "key": "app.zip", "bundleType": "zip", "eTag": '"abc"'},
    "gitHubLocation": {"repository": "o/r", "commitId": "0" * 40},
}


def test_an_s3_revision_keeps_its_own_location_and_an_unquoted_etag() -> None:
    revision = revision_rules.normalize(S3)
    assert revision == {
        "revisionType": "S3",
        "s3Location": {"bucket": "b", "key": "app.zip", "bundleType": "zip", "eTag": "abc"},
    }


def test_a_revisions_identity_ignores_its_bundle_type_but_not_its_etag() -> None:
    zipped = revision_rules.normalize(S3)
    tarred = revision_rules.normalize(
        {**S3, "s3Location": {**S3["s3Location"], "bundleType": "tar"}}
    )
    other = revision_rules.normalize({**S3, "s3Location": {**S3["s3Location"], "eTag": "def"}})
    assert revision_rules.revision_key(zipped) == revision_rules.revision_key(tarred)
    assert revision_rules.revision_key(zipped) != revision_rules.revision_key(other)


def test_inline_content_carries_its_sha256() -> None:
    content = "version: 0.0\nResources: []\n"
    digest = hashlib.sha256(content.encode()).hexdigest()
    revision = revision_rules.normalize(
        {"revisionType": "AppSpecContent", "appSpecContent": {"content": content}}
    )
    assert revision["appSpecContent"] == {"content": content, "sha256": digest}
    wrong = {
        "revisionType": "AppSpecContent",
        "appSpecContent": {"content": content, "sha256": "0" * 64},
    }
    assert code(revision_rules.normalize, wrong) == "InvalidRevisionException"


@pytest.mark.parametrize(
    "revision",
    [
        {"revisionType": "S3"},
        {"revisionType": "S3", "s3Location": {"bucket": "b", "bundleType": "zip"}},
        {"revisionType": "S3", "s3Location": {"bucket": "b", "key": "k"}},
        {"revisionType": "GitHub", "gitHubLocation": {"repository": "nope", "commitId": "0" * 40}},
        {"revisionType": "GitHub", "gitHubLocation": {"repository": "o/r", "commitId": "abc"}},
        {"revisionType": "String", "string": {}},
        {"s3Location": {"bucket": "b", "key": "k", "bundleType": "zip"}},
    ],
)
def test_broken_revisions_are_invalid(revision: dict[str, Any]) -> None:
    assert code(revision_rules.normalize, revision) == "InvalidRevisionException"


@pytest.mark.parametrize(
    ("platform", "revision", "allowed"),
    [
        ("Server", {"revisionType": "S3", "s3Location": {"bundleType": "tgz"}}, True),
        ("Server", {"revisionType": "S3", "s3Location": {"bundleType": "YAML"}}, False),
        ("Server", {"revisionType": "AppSpecContent"}, False),
        ("Server", {"revisionType": "GitHub"}, True),
        ("Lambda", {"revisionType": "String"}, True),
        ("Lambda", {"revisionType": "S3", "s3Location": {"bundleType": "YAML"}}, True),
        ("Lambda", {"revisionType": "GitHub"}, False),
        ("ECS", {"revisionType": "AppSpecContent"}, True),
        ("ECS", {"revisionType": "String"}, False),
    ],
)
def test_each_platform_takes_its_own_kinds_of_revision(
    platform: str, revision: dict[str, Any], allowed: bool
) -> None:
    if allowed:
        revision_rules.check_platform(revision, platform)
    else:
        assert code(revision_rules.check_platform, revision, platform) == "InvalidRevisionException"


# -- deployment configurations -----------------------------------------------------------------------
def test_the_predefined_configurations_are_awss() -> None:
    predefined = configs.PREDEFINED
    assert len(predefined) == 17
    assert {name for name, c in predefined.items() if c.compute_platform == "Server"} == {
        "CodeDeployDefault.OneAtATime",
        "CodeDeployDefault.HalfAtATime",
        "CodeDeployDefault.AllAtOnce",
    }
    assert predefined[
        "CodeDeployDefault.OneAtATime"
    ].minimum_healthy_hosts == configs.MinimumHealthyHosts("MOST_CONCURRENCY", 1)
    assert predefined["CodeDeployDefault.OneAtATime"].id == "00000000-0000-0000-0000-000000000001"
    assert predefined[
        "CodeDeployDefault.HalfAtATime"
    ].minimum_healthy_hosts == configs.MinimumHealthyHosts("FLEET_PERCENT", 50)
    assert predefined[
        "CodeDeployDefault.AllAtOnce"
    ].minimum_healthy_hosts == configs.MinimumHealthyHosts("HOST_COUNT", 0)
    canary = predefined["CodeDeployDefault.ECSCanary10Percent15Minutes"]
    assert canary.traffic_routing == configs.TrafficRouting("TimeBasedCanary", 10, 15)
    assert configs.config_output(predefined["CodeDeployDefault.LambdaLinear10PercentEvery1Minute"])[
        "trafficRoutingConfig"
    ] == {
        "type": "TimeBasedLinear",
        "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 1},
    }
    assert all(config.predefined for config in predefined.values())
    for platform, name in configs.DEFAULT_CONFIG.items():
        assert predefined[name].compute_platform == platform


def new_config(**params: Any) -> configs.NewConfig:
    return configs.check_new_config({"deploymentConfigName": "Custom", **params})


def test_custom_server_configurations_need_a_valid_minimum() -> None:
    made = new_config(minimumHealthyHosts={"type": "FLEET_PERCENT", "value": 75})
    assert made.compute_platform == "Server"
    assert made.minimum_healthy_hosts == {"type": "FLEET_PERCENT", "value": 75}
    for minimum in (
        {"type": "FLEET_PERCENT", "value": 100},
        {"type": "HOST_COUNT", "value": -1},
        {"type": "HOST_COUNT"},
    ):
        assert (
            code(new_config, minimumHealthyHosts=minimum)
            == "InvalidMinimumHealthyHostValueException"
        )
    assert code(new_config) == "InvalidMinimumHealthyHostValueException"


def test_custom_names_may_not_take_the_reserved_prefix() -> None:
    with pytest.raises(errors.InvalidDeploymentConfigNameException):
        configs.check_new_config(
            {
                "deploymentConfigName": "CodeDeployDefault.Mine",
                "minimumHealthyHosts": {"type": "HOST_COUNT", "value": 1},
            }
        )


def test_traffic_routing_is_for_lambda_and_ecs_with_awss_bounds() -> None:
    canary = {
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": 20, "canaryInterval": 3},
    }
    assert (
        new_config(computePlatform="Lambda", trafficRoutingConfig=canary).traffic_routing_config
        == canary
    )
    assert new_config(computePlatform="ECS").traffic_routing_config == {"type": "AllAtOnce"}
    assert (
        code(
            new_config,
            minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
            trafficRoutingConfig=canary,
        )
        == "InvalidTrafficRoutingConfigurationException"
    )
    for broken in (
        {"type": "TimeBasedCanary"},
        {
            "type": "TimeBasedCanary",
            "timeBasedCanary": {"canaryPercentage": 100, "canaryInterval": 1},
        },
        {
            "type": "TimeBasedLinear",
            "timeBasedLinear": {"linearPercentage": 10, "linearInterval": 0},
        },
        {
            "type": "TimeBasedLinear",
            "timeBasedLinear": {"linearPercentage": 1, "linearInterval": 100},
        },
    ):
        assert (
            code(new_config, computePlatform="Lambda", trafficRoutingConfig=broken)
            == "InvalidTrafficRoutingConfigurationException"
        )
    assert (
        code(
            new_config,
            computePlatform="Lambda",
            minimumHealthyHosts={"type": "HOST_COUNT", "value": 1},
        )
        == "InvalidMinimumHealthyHostValueException"
    )


def test_zonal_configuration_is_for_server_configurations() -> None:
    zonal = {
        "firstZoneMonitorDurationInSeconds": 60,
        "monitorDurationInSeconds": 30,
        "minimumHealthyHostsPerZone": {"type": "HOST_COUNT", "value": 1},
    }
    made = new_config(minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}, zonalConfig=zonal)
    assert made.zonal_config == zonal
    assert (
        code(new_config, computePlatform="ECS", zonalConfig=zonal)
        == "InvalidZonalDeploymentConfigurationException"
    )
    negative = {**zonal, "monitorDurationInSeconds": -1}
    assert (
        code(
            new_config, minimumHealthyHosts={"type": "HOST_COUNT", "value": 1}, zonalConfig=negative
        )
        == "InvalidZonalDeploymentConfigurationException"
    )


# -- ARNs -------------------------------------------------------------------------------------------
def test_arns_are_built_and_read_back() -> None:
    group = arns.deployment_group_arn("us-east-1", "123456789012", "app", "grp")
    assert group == "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:app/grp"
    assert arns.parse(group) == arns.ResourceArn(
        "deploymentgroup", "us-east-1", "123456789012", "app", "grp"
    )
    instance = arns.instance_arn("eu-west-1", "123456789012", "host-1")
    assert instance == "arn:aws:codedeploy:eu-west-1:123456789012:instance/host-1"
    assert arns.parse(instance).kind == "instance"
    config = arns.parse(arns.deployment_config_arn("us-east-1", "123456789012", "Custom"))
    assert (config.kind, config.name) == ("deploymentconfig", "Custom")
    for broken in (
        "arn:aws:s3:::bucket",
        "arn:aws:codedeploy:us-east-1:123456789012:application",
        "arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:app",
    ):
        with pytest.raises(arns.MalformedArn):
            arns.parse(broken)
