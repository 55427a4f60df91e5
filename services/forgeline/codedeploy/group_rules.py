"""A deployment group's settings: AWS's rules for each member, checked on the whole group
as CreateDeploymentGroup makes it or UpdateDeploymentGroup leaves it. Pure: no database.

`normalize_group` merges a request into the stored document (members a request leaves out
keep their value), checks the result and fills AWS's defaults, so GetDeploymentGroup and
the deployment driver read one complete document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from typing import Any, cast

from forgeline.codedeploy.generated import errors, shapes
from forgeline.core import webhooks
from forgeline.core.protocol.errors import AwsError

# Members of Create/UpdateDeploymentGroup kept in the document; the others are columns
# (names, config, role) or live elsewhere (tags).
DOCUMENT_MEMBERS = (
    "ec2TagFilters",
    "onPremisesInstanceTagFilters",
    "autoScalingGroups",
    "triggerConfigurations",
    "alarmConfiguration",
    "autoRollbackConfiguration",
    "outdatedInstancesStrategy",
    "deploymentStyle",
    "blueGreenDeploymentConfiguration",
    "loadBalancerInfo",
    "ec2TagSet",
    "ecsServices",
    "onPremisesTagSet",
    "ec2DeploymentOptions",
    "terminationHookEnabled",
)
# Pairs of members a request may not give together; giving one clears the other.
EXCLUSIVE_PAIRS = (
    (
        "ec2TagFilters",
        "ec2TagSet",
        errors.InvalidEC2TagCombinationException,
        "Ec2TagFilters",
        "Ec2TagSet",
    ),
    (
        "onPremisesInstanceTagFilters",
        "onPremisesTagSet",
        errors.InvalidOnPremisesTagCombinationException,
        "OnPremisesTagFilters",
        "OnPremisesTagSet",
    ),
)

# AWS's limits.
MAX_TAG_SET_GROUPS = 3
MAX_TRIGGERS = 10
MAX_ALARMS = 10
MAX_AUTO_SCALING_GROUPS = 10
MAX_ALARM_NAME = 255
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
# Minutes: 48 hours on EC2/on-premises; ECS may wait up to 120 hours for traffic.
MAX_WAIT_MINUTES = {"Server": 2880, "ECS": 7200, "Lambda": 2880}

_ROLE_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}"
)
_SNS_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?"
)
_LISTENER_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener/.+"
)


def check_role_arn(arn: str) -> str:
    if not _ROLE_ARN.fullmatch(arn):
        raise errors.InvalidRoleException(
            f"The service role ARN {arn!r} is not an IAM role ARN "
            "(arn:aws:iam::<account>:role/<name>)."
        )
    return arn


def normalize_group(
    request: Mapping[str, Any],
    compute_platform: str,
    region: str,
    current: Mapping[str, Any] | None = None,
    ecs_services_in_use: Set[tuple[str, str]] = frozenset(),
) -> dict[str, Any]:
    """The group's document once `request` (a Create or UpdateDeploymentGroup input) is
    applied to `current` (None for a new group): checked, with AWS's defaults filled in.

    `ecs_services_in_use` are the (cluster, service) pairs other groups of the account
    already deploy to: an ECS service belongs to one deployment group."""
    document = dict(current or {})
    for member, other, combination_error, label, other_label in EXCLUSIVE_PAIRS:
        if request.get(member) is not None and request.get(other) is not None:
            raise combination_error(
                f"{label} and {other_label} cannot both be specified; use only one of them."
            )
        if request.get(member) is not None:
            document.pop(other, None)
        if request.get(other) is not None:
            document.pop(member, None)
    for member in DOCUMENT_MEMBERS:
        if request.get(member) is not None:
            document[member] = request[member]

    document["ec2TagFilters"] = _filters(
        document.get("ec2TagFilters") or [], errors.InvalidEC2TagException, "EC2 tag filter"
    )
    document["onPremisesInstanceTagFilters"] = _filters(
        document.get("onPremisesInstanceTagFilters") or [],
        errors.InvalidTagException,
        "on-premises tag filter",
    )
    if "ec2TagSet" in document:
        document["ec2TagSet"] = {
            "ec2TagSetList": _tag_set(
                document["ec2TagSet"].get("ec2TagSetList") or [],
                errors.InvalidEC2TagException,
                "EC2 tag filter",
            )
        }
    if "onPremisesTagSet" in document:
        document["onPremisesTagSet"] = {
            "onPremisesTagSetList": _tag_set(
                document["onPremisesTagSet"].get("onPremisesTagSetList") or [],
                errors.InvalidTagException,
                "on-premises tag filter",
            )
        }
    document["autoScalingGroups"] = _auto_scaling_groups(document.get("autoScalingGroups") or [])
    document["triggerConfigurations"] = _triggers(
        document.get("triggerConfigurations") or [], region
    )
    document["alarmConfiguration"] = _alarms(document.get("alarmConfiguration"))
    if document.get("autoRollbackConfiguration") is not None:
        document["autoRollbackConfiguration"] = _auto_rollback(
            document["autoRollbackConfiguration"]
        )
    document["deploymentStyle"] = _deployment_style(
        document.get("deploymentStyle"), compute_platform
    )
    document["outdatedInstancesStrategy"] = document.get("outdatedInstancesStrategy") or "UPDATE"
    document["terminationHookEnabled"] = bool(document.get("terminationHookEnabled", False))
    _check_load_balancer(document, compute_platform)
    if document.get("blueGreenDeploymentConfiguration") is not None:
        _check_blue_green(document, compute_platform)
    _check_ecs_services(document, compute_platform, ecs_services_in_use)
    return document


# -- tags -------------------------------------------------------------------------------------
def _filters(
    filters: list[shapes.TagFilter], error: type[AwsError], what: str
) -> list[shapes.TagFilter]:
    return [_filter(tag_filter, error, what) for tag_filter in filters]


def _filter(tag_filter: shapes.TagFilter, error: type[AwsError], what: str) -> shapes.TagFilter:
    key, value, kind = tag_filter.get("Key"), tag_filter.get("Value"), tag_filter.get("Type")
    if kind is None:
        # No Type: the filter means what it gives (a key, a value, or both).
        kind = "KEY_AND_VALUE" if key and value else "KEY_ONLY" if key else "VALUE_ONLY"
    if kind in ("KEY_ONLY", "KEY_AND_VALUE") and not key:
        raise error(f"A {kind} {what} needs a Key.")
    if kind in ("VALUE_ONLY", "KEY_AND_VALUE") and not value:
        raise error(f"A {kind} {what} needs a Value.")
    if key is not None and len(key) > MAX_TAG_KEY:
        raise error(f"A {what}'s Key can be at most {MAX_TAG_KEY} characters long.")
    if value is not None and len(value) > MAX_TAG_VALUE:
        raise error(f"A {what}'s Value can be at most {MAX_TAG_VALUE} characters long.")
    normalized: shapes.TagFilter = {"Type": kind}
    if key is not None:
        normalized["Key"] = key
    if value is not None:
        normalized["Value"] = value
    return normalized


def _tag_set(
    groups: list[list[shapes.TagFilter]], error: type[AwsError], what: str
) -> list[list[shapes.TagFilter]]:
    if len(groups) > MAX_TAG_SET_GROUPS:
        raise errors.TagSetListLimitExceededException(
            f"A tag set holds at most {MAX_TAG_SET_GROUPS} tag groups; got {len(groups)}."
        )
    if any(not group for group in groups):
        raise error(f"Each tag group of a tag set needs at least one {what}.")
    return [_filters(group, error, what) for group in groups]


# -- members --------------------------------------------------------------------------------------
def _auto_scaling_groups(names: list[Any]) -> list[str]:
    # The request names groups; a stored document may already hold their {name} shapes.
    plain = [name["name"] if isinstance(name, dict) else name for name in names]
    if len(plain) > MAX_AUTO_SCALING_GROUPS:
        raise errors.InvalidAutoScalingGroupException(
            f"A deployment group can have at most {MAX_AUTO_SCALING_GROUPS} Auto Scaling groups."
        )
    if any(not name for name in plain):
        raise errors.InvalidAutoScalingGroupException("An Auto Scaling group name is empty.")
    return list(dict.fromkeys(plain))


def _triggers(triggers: list[shapes.TriggerConfig], region: str) -> list[shapes.TriggerConfig]:
    invalid = errors.InvalidTriggerConfigException
    if len(triggers) > MAX_TRIGGERS:
        raise errors.TriggerTargetsLimitExceededException(
            f"A deployment group can have at most {MAX_TRIGGERS} triggers; got {len(triggers)}."
        )
    names: set[str] = set()
    checked: list[shapes.TriggerConfig] = []
    for trigger in triggers:
        name = trigger.get("triggerName")
        if not name:
            raise invalid("Each trigger needs a triggerName.")
        if name in names:
            raise invalid(f"The trigger name {name!r} is used more than once.")
        names.add(name)
        target = trigger.get("triggerTargetArn") or ""
        _check_trigger_target(target, region)
        events = list(dict.fromkeys(trigger.get("triggerEvents") or []))
        if not events:
            raise invalid(f"The trigger {name!r} needs at least one trigger event.")
        checked.append({"triggerName": name, "triggerTargetArn": target, "triggerEvents": events})
    return checked


def _check_trigger_target(target: str, region: str) -> None:
    """An SNS topic in the group's region (kept as AWS does; Forgeline has no SNS) or an
    http(s) URL that receives the notifications as webhooks."""
    invalid = errors.InvalidTriggerConfigException
    if webhooks.is_webhook_url(target):
        if not webhooks.valid_url(target):
            raise invalid(f"{target!r} is not a valid webhook URL (absolute, no credentials).")
        return
    match = _SNS_ARN.fullmatch(target)
    if match is None:
        raise invalid(
            f"The trigger target {target!r} is neither an Amazon SNS topic ARN nor an http(s) URL."
        )
    if match.group(1) != region:
        raise invalid(
            f"The trigger's SNS topic is in {match.group(1)}; it must be in the group's region, {region}."
        )


def _alarms(configuration: shapes.AlarmConfiguration | None) -> shapes.AlarmConfiguration:
    invalid = errors.InvalidAlarmConfigException
    configuration = configuration or {}
    alarms = configuration.get("alarms") or []
    if len(alarms) > MAX_ALARMS:
        raise errors.AlarmsLimitExceededException(
            f"A deployment group can have at most {MAX_ALARMS} alarms; got {len(alarms)}."
        )
    names: list[str] = []
    for alarm in alarms:
        name = alarm.get("name") or ""
        if not name or len(name) > MAX_ALARM_NAME:
            raise invalid(f"An alarm name must be 1 to {MAX_ALARM_NAME} characters long.")
        if name in names:
            raise invalid(f"The alarm {name!r} is listed more than once.")
        names.append(name)
    enabled = bool(configuration.get("enabled", False))
    if enabled and not names:
        raise invalid("The alarm configuration is enabled but lists no alarms.")
    return {
        "enabled": enabled,
        "ignorePollAlarmFailure": bool(configuration.get("ignorePollAlarmFailure", False)),
        "alarms": [{"name": name} for name in names],
    }


def _auto_rollback(
    configuration: shapes.AutoRollbackConfiguration,
) -> shapes.AutoRollbackConfiguration:
    enabled = bool(configuration.get("enabled", False))
    events = list(dict.fromkeys(configuration.get("events") or []))
    if enabled and not events:
        raise errors.InvalidAutoRollbackConfigException(
            "Automatic rollback is enabled but names no event (DEPLOYMENT_FAILURE, "
            "DEPLOYMENT_STOP_ON_ALARM or DEPLOYMENT_STOP_ON_REQUEST)."
        )
    return {"enabled": enabled, "events": events}


def _deployment_style(
    style: shapes.DeploymentStyle | None, compute_platform: str
) -> shapes.DeploymentStyle:
    if compute_platform in ("Lambda", "ECS"):
        # Lambda and ECS deployments always shift traffic to a replacement.
        wanted: shapes.DeploymentStyle = {
            "deploymentType": "BLUE_GREEN",
            "deploymentOption": "WITH_TRAFFIC_CONTROL",
        }
        for member, value in (style or {}).items():
            if wanted.get(member) != value:
                raise errors.InvalidDeploymentStyleException(
                    f"{compute_platform} deployment groups are BLUE_GREEN with "
                    f"WITH_TRAFFIC_CONTROL; {member} {value} is not allowed."
                )
        return wanted
    style = style or {}
    return {
        "deploymentType": style.get("deploymentType", "IN_PLACE"),
        "deploymentOption": style.get("deploymentOption", "WITHOUT_TRAFFIC_CONTROL"),
    }


def _check_load_balancer(document: dict[str, Any], compute_platform: str) -> None:
    invalid = errors.InvalidLoadBalancerInfoException
    info = cast(shapes.LoadBalancerInfo, document.get("loadBalancerInfo") or {})
    named: list[tuple[str, list[shapes.ELBInfo] | list[shapes.TargetGroupInfo]]] = [
        ("elbInfoList", info.get("elbInfoList") or []),
        ("targetGroupInfoList", info.get("targetGroupInfoList") or []),
    ]
    for member, entries in named:
        if any(not entry.get("name") for entry in entries):
            raise invalid(f"Every entry of loadBalancerInfo.{member} needs a name.")
    pairs = info.get("targetGroupPairInfoList") or []
    if compute_platform == "ECS":
        _check_target_group_pairs(pairs)
        return
    if pairs:
        raise errors.InvalidTargetGroupPairException(
            "Target group pairs are for ECS deployment groups only."
        )
    if compute_platform == "Server" and (
        document["deploymentStyle"]["deploymentOption"] == "WITH_TRAFFIC_CONTROL"
        and not (info.get("elbInfoList") or info.get("targetGroupInfoList"))
    ):
        raise invalid(
            "A deployment group WITH_TRAFFIC_CONTROL needs loadBalancerInfo naming a "
            "Classic Load Balancer (elbInfoList) or a target group (targetGroupInfoList)."
        )


def _check_target_group_pairs(pairs: list[shapes.TargetGroupPairInfo]) -> None:
    invalid = errors.InvalidTargetGroupPairException
    if len(pairs) != 1:
        raise invalid(
            "An ECS deployment group needs exactly one target group pair in "
            "loadBalancerInfo.targetGroupPairInfoList."
        )
    pair = pairs[0]
    groups = pair.get("targetGroups") or []
    if len(groups) != 2 or any(not group.get("name") for group in groups):
        raise invalid("A target group pair names exactly two target groups.")
    if groups[0]["name"] == groups[1]["name"]:
        raise invalid("The two target groups of a pair must differ.")
    production = (pair.get("prodTrafficRoute") or {}).get("listenerArns") or []
    if len(production) != 1:
        raise invalid("A target group pair needs one production listener ARN (prodTrafficRoute).")
    listeners = production + ((pair.get("testTrafficRoute") or {}).get("listenerArns") or [])
    for listener in listeners:
        if not _LISTENER_ARN.fullmatch(listener):
            raise invalid(f"{listener!r} is not an Elastic Load Balancing listener ARN.")


def _check_blue_green(document: dict[str, Any], compute_platform: str) -> None:
    invalid = errors.InvalidBlueGreenDeploymentConfigurationException
    configuration: shapes.BlueGreenDeploymentConfiguration = document[
        "blueGreenDeploymentConfiguration"
    ]
    limit = MAX_WAIT_MINUTES.get(compute_platform, 2880)
    termination = configuration.get("terminateBlueInstancesOnDeploymentSuccess") or {}
    wait = termination.get("terminationWaitTimeInMinutes")
    if wait is not None and not 0 <= wait <= 2880:
        raise invalid(f"terminationWaitTimeInMinutes must be between 0 and 2880; got {wait}.")
    ready = configuration.get("deploymentReadyOption") or {}
    ready_wait = ready.get("waitTimeInMinutes")
    if ready_wait is not None and not 0 <= ready_wait <= limit:
        raise invalid(
            f"deploymentReadyOption.waitTimeInMinutes must be between 0 and {limit}; got {ready_wait}."
        )
    if ready.get("actionOnTimeout") == "STOP_DEPLOYMENT" and not ready_wait:
        raise invalid(
            "A deploymentReadyOption with STOP_DEPLOYMENT needs a waitTimeInMinutes above 0."
        )
    provisioning = (configuration.get("greenFleetProvisioningOption") or {}).get("action")
    if provisioning == "COPY_AUTO_SCALING_GROUP" and not document["autoScalingGroups"]:
        raise invalid(
            "COPY_AUTO_SCALING_GROUP needs the deployment group to name an Auto Scaling group."
        )


def _check_ecs_services(
    document: dict[str, Any], compute_platform: str, in_use: Set[tuple[str, str]]
) -> None:
    services = document.get("ecsServices") or []
    if compute_platform != "ECS":
        if services:
            raise errors.InvalidECSServiceException(
                "ecsServices are for ECS deployment groups only."
            )
        return
    if len(services) != 1:
        raise errors.InvalidECSServiceException(
            "An ECS deployment group deploys to exactly one ECS service (ecsServices)."
        )
    service = services[0]
    cluster, name = service.get("clusterName"), service.get("serviceName")
    if not cluster or not name:
        raise errors.InvalidECSServiceException(
            "The ECS service needs a clusterName and a serviceName."
        )
    if (cluster, name) in in_use:
        raise errors.ECSServiceMappingLimitExceededException(
            f"The ECS service {name} of cluster {cluster} already belongs to another deployment group."
        )
