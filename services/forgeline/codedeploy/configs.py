"""Deployment configurations: AWS's predefined CodeDeployDefault.* ones (data, not rows),
custom ones (rows of tables/deployment_configs.py), and the rules a custom one must meet.

`find` returns either kind as one `DeploymentConfigInfo`, which is what the orchestrator
reads. Minimum healthy hosts come in AWS's three kinds:

- HOST_COUNT n: at least n instances stay healthy (0: all at once);
- FLEET_PERCENT p: at least p% of the instances, rounded up, stay healthy;
- MOST_CONCURRENCY 1: CodeDeployDefault.OneAtATime only, as GetDeploymentConfig answers
  on AWS. One instance at a time, all but one kept healthy; with more than one instance
  the deployment succeeds even if the last instance fails, with exactly one it must
  succeed there. No request can set this kind.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy.generated import errors, shapes
from forgeline.codedeploy.tables.deployment_configs import DeploymentConfig
from forgeline.core.protocol.errors import AwsError

COMPUTE_PLATFORMS = ("Server", "Lambda", "ECS")
RESERVED_PREFIX = "CodeDeployDefault."
# AWS's quota of custom deployment configurations per account and region.
MAX_CUSTOM_CONFIGS = 50
# Lambda and ECS: at most 2880 minutes between the first and last traffic shift, at most
# 99% of the traffic in one increment (AWS's limits).
MAX_ROUTING_MINUTES = 2880
MAX_INCREMENT_PERCENT = 99

# What a deployment group uses when it names no config, per compute platform.
DEFAULT_CONFIG = {
    "Server": "CodeDeployDefault.OneAtATime",
    "Lambda": "CodeDeployDefault.LambdaAllAtOnce",
    "ECS": "CodeDeployDefault.ECSAllAtOnce",
}

MinimumHealthyType = Literal["HOST_COUNT", "FLEET_PERCENT", "MOST_CONCURRENCY"]
RoutingType = Literal["TimeBasedCanary", "TimeBasedLinear", "AllAtOnce"]


@dataclasses.dataclass(frozen=True)
class MinimumHealthyHosts:
    type: MinimumHealthyType
    value: int

    def to_shape(self) -> shapes.MinimumHealthyHosts:
        return {"type": self.type, "value": self.value}


@dataclasses.dataclass(frozen=True)
class TrafficRouting:
    """How traffic shifts (Lambda, ECS): all at once, or `percentage` first then the rest
    `interval_minutes` later (canary), or `percentage` every `interval_minutes` (linear)."""

    type: RoutingType
    percentage: int | None = None
    interval_minutes: int | None = None

    def to_shape(self) -> shapes.TrafficRoutingConfig:
        shape: shapes.TrafficRoutingConfig = {"type": self.type}
        if self.type == "TimeBasedCanary":
            shape["timeBasedCanary"] = {
                "canaryPercentage": self.percentage or 0,
                "canaryInterval": self.interval_minutes or 0,
            }
        elif self.type == "TimeBasedLinear":
            shape["timeBasedLinear"] = {
                "linearPercentage": self.percentage or 0,
                "linearInterval": self.interval_minutes or 0,
            }
        return shape


@dataclasses.dataclass(frozen=True)
class ZonalConfig:
    first_zone_monitor_seconds: int | None
    monitor_seconds: int | None
    minimum_healthy_hosts_per_zone: MinimumHealthyHosts | None

    def to_shape(self) -> shapes.ZonalConfig:
        shape: shapes.ZonalConfig = {}
        if self.first_zone_monitor_seconds is not None:
            shape["firstZoneMonitorDurationInSeconds"] = self.first_zone_monitor_seconds
        if self.monitor_seconds is not None:
            shape["monitorDurationInSeconds"] = self.monitor_seconds
        if self.minimum_healthy_hosts_per_zone is not None:
            per_zone = self.minimum_healthy_hosts_per_zone
            shape["minimumHealthyHostsPerZone"] = {"type": per_zone.type, "value": per_zone.value}
        return shape


@dataclasses.dataclass(frozen=True)
class DeploymentConfigInfo:
    name: str
    id: str
    compute_platform: str
    minimum_healthy_hosts: MinimumHealthyHosts | None
    traffic_routing: TrafficRouting | None
    zonal: ZonalConfig | None
    predefined: bool
    created_at: dt.datetime


# -- the predefined configurations ------------------------------------------------------------
# CodeDeploy's launch day stands for when the predefined configurations were made.
PREDEFINED_CREATED = dt.datetime(2014, 11, 12, tzinfo=dt.UTC)


def _predefined(
    number: int,
    name: str,
    platform: str,
    minimum: MinimumHealthyHosts | None = None,
    routing: TrafficRouting | None = None,
) -> DeploymentConfigInfo:
    # AWS gives predefined configs fixed ids (OneAtATime is 00000000-0000-0000-0000-000000000001).
    return DeploymentConfigInfo(
        name=f"{RESERVED_PREFIX}{name}",
        id=f"00000000-0000-0000-0000-{number:012d}",
        compute_platform=platform,
        minimum_healthy_hosts=minimum,
        traffic_routing=routing,
        zonal=None,
        predefined=True,
        created_at=PREDEFINED_CREATED,
    )


def _canary(percent: int, minutes: int) -> TrafficRouting:
    return TrafficRouting("TimeBasedCanary", percent, minutes)


def _linear(percent: int, minutes: int) -> TrafficRouting:
    return TrafficRouting("TimeBasedLinear", percent, minutes)


ALL_AT_ONCE = TrafficRouting("AllAtOnce")

PREDEFINED: dict[str, DeploymentConfigInfo] = {
    config.name: config
    for config in (
        _predefined(1, "OneAtATime", "Server", MinimumHealthyHosts("MOST_CONCURRENCY", 1)),
        _predefined(2, "HalfAtATime", "Server", MinimumHealthyHosts("FLEET_PERCENT", 50)),
        _predefined(3, "AllAtOnce", "Server", MinimumHealthyHosts("HOST_COUNT", 0)),
        _predefined(4, "LambdaAllAtOnce", "Lambda", routing=ALL_AT_ONCE),
        _predefined(5, "LambdaCanary10Percent5Minutes", "Lambda", routing=_canary(10, 5)),
        _predefined(6, "LambdaCanary10Percent10Minutes", "Lambda", routing=_canary(10, 10)),
        _predefined(7, "LambdaCanary10Percent15Minutes", "Lambda", routing=_canary(10, 15)),
        _predefined(8, "LambdaCanary10Percent30Minutes", "Lambda", routing=_canary(10, 30)),
        _predefined(9, "LambdaLinear10PercentEvery1Minute", "Lambda", routing=_linear(10, 1)),
        _predefined(10, "LambdaLinear10PercentEvery2Minutes", "Lambda", routing=_linear(10, 2)),
        _predefined(11, "LambdaLinear10PercentEvery3Minutes", "Lambda", routing=_linear(10, 3)),
        _predefined(12, "LambdaLinear10PercentEvery10Minutes", "Lambda", routing=_linear(10, 10)),
        _predefined(13, "ECSAllAtOnce", "ECS", routing=ALL_AT_ONCE),
        _predefined(14, "ECSCanary10Percent5Minutes", "ECS", routing=_canary(10, 5)),
        _predefined(15, "ECSCanary10Percent15Minutes", "ECS", routing=_canary(10, 15)),
        _predefined(16, "ECSLinear10PercentEvery1Minutes", "ECS", routing=_linear(10, 1)),
        _predefined(17, "ECSLinear10PercentEvery3Minutes", "ECS", routing=_linear(10, 3)),
    )
}


# -- lookups ------------------------------------------------------------------------------------
def find_custom(
    session: Session, account_id: str, region: str, name: str
) -> DeploymentConfig | None:
    return session.scalars(
        select(DeploymentConfig).where(
            DeploymentConfig.account_id == account_id,
            DeploymentConfig.region == region,
            DeploymentConfig.name == name,
        )
    ).first()


def find(session: Session, account_id: str, region: str, name: str) -> DeploymentConfigInfo | None:
    """The predefined or custom configuration named `name` in this account and region."""
    predefined = PREDEFINED.get(name)
    if predefined is not None:
        return predefined
    row = find_custom(session, account_id, region, name)
    return from_row(row) if row is not None else None


def from_row(row: DeploymentConfig) -> DeploymentConfigInfo:
    return DeploymentConfigInfo(
        name=row.name,
        id=row.id,
        compute_platform=row.compute_platform,
        minimum_healthy_hosts=_minimum_from_shape(row.minimum_healthy_hosts),
        traffic_routing=_routing_from_shape(row.traffic_routing_config),
        zonal=_zonal_from_shape(row.zonal_config),
        predefined=False,
        created_at=row.created_at,
    )


def config_output(info: DeploymentConfigInfo) -> shapes.DeploymentConfigInfo:
    output: shapes.DeploymentConfigInfo = {
        "deploymentConfigId": info.id,
        "deploymentConfigName": info.name,
        "createTime": info.created_at,
        "computePlatform": info.compute_platform,
    }
    if info.minimum_healthy_hosts is not None:
        output["minimumHealthyHosts"] = info.minimum_healthy_hosts.to_shape()
    if info.traffic_routing is not None:
        output["trafficRoutingConfig"] = info.traffic_routing.to_shape()
    if info.zonal is not None:
        output["zonalConfig"] = info.zonal.to_shape()
    return output


def _minimum_from_shape(shape: dict[str, Any] | None) -> MinimumHealthyHosts | None:
    if not shape:
        return None
    return MinimumHealthyHosts(cast(MinimumHealthyType, shape["type"]), int(shape["value"]))


def _routing_from_shape(shape: dict[str, Any] | None) -> TrafficRouting | None:
    if not shape:
        return None
    kind = cast(RoutingType, shape["type"])
    if kind == "TimeBasedCanary":
        canary = shape["timeBasedCanary"]
        return _canary(canary["canaryPercentage"], canary["canaryInterval"])
    if kind == "TimeBasedLinear":
        linear = shape["timeBasedLinear"]
        return _linear(linear["linearPercentage"], linear["linearInterval"])
    return ALL_AT_ONCE


def _zonal_from_shape(shape: dict[str, Any] | None) -> ZonalConfig | None:
    if not shape:
        return None
    return ZonalConfig(
        first_zone_monitor_seconds=shape.get("firstZoneMonitorDurationInSeconds"),
        monitor_seconds=shape.get("monitorDurationInSeconds"),
        minimum_healthy_hosts_per_zone=_minimum_from_shape(shape.get("minimumHealthyHostsPerZone")),
    )


# -- the rules of a custom configuration ---------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class NewConfig:
    """A CreateDeploymentConfig request once checked, in the shapes the row keeps."""

    compute_platform: str
    minimum_healthy_hosts: shapes.MinimumHealthyHosts | None
    traffic_routing_config: shapes.TrafficRoutingConfig | None
    zonal_config: shapes.ZonalConfig | None


def check_new_config(params: shapes.CreateDeploymentConfigInput) -> NewConfig:
    """Apply AWS's rules to a custom configuration; raise the model's error for a broken one."""
    name = params["deploymentConfigName"]
    if name.startswith(RESERVED_PREFIX):
        raise errors.InvalidDeploymentConfigNameException(
            f"Deployment configuration names cannot start with {RESERVED_PREFIX!r} "
            f"(reserved for the predefined configurations): {name}"
        )
    platform = params.get("computePlatform", "Server")
    minimum = params.get("minimumHealthyHosts")
    routing = params.get("trafficRoutingConfig")
    zonal = params.get("zonalConfig")
    if platform == "Server":
        if minimum is None:
            raise errors.InvalidMinimumHealthyHostValueException(
                "A deployment configuration for the Server compute platform needs "
                "minimumHealthyHosts (HOST_COUNT or FLEET_PERCENT)."
            )
        minimum = _checked_minimum(minimum, errors.InvalidMinimumHealthyHostValueException)
        if routing is not None and routing.get("type", "AllAtOnce") != "AllAtOnce":
            raise errors.InvalidTrafficRoutingConfigurationException(
                "Traffic routing (canary or linear) applies to the Lambda and ECS compute "
                "platforms only."
            )
        routing = None
        if zonal is not None:
            zonal = _checked_zonal(zonal)
    else:
        if minimum is not None:
            raise errors.InvalidMinimumHealthyHostValueException(
                f"minimumHealthyHosts applies to the Server compute platform only, not {platform}."
            )
        if zonal is not None:
            raise errors.InvalidZonalDeploymentConfigurationException(
                f"zonalConfig applies to the Server compute platform only, not {platform}."
            )
        routing = _checked_routing(routing or {"type": "AllAtOnce"})
    return NewConfig(platform, minimum, routing, zonal)


def _checked_minimum(
    minimum: shapes.MinimumHealthyHosts | shapes.MinimumHealthyHostsPerZone,
    error: type[AwsError],
) -> shapes.MinimumHealthyHosts:
    kind, value = minimum.get("type"), minimum.get("value")
    if kind is None or value is None:
        raise error(
            "Minimum healthy hosts need both a type (HOST_COUNT or FLEET_PERCENT) and a value."
        )
    if kind == "FLEET_PERCENT" and not 0 <= value <= 99:
        raise error(
            f"A FLEET_PERCENT minimum of healthy hosts must be between 0 and 99; got {value}."
        )
    if kind == "HOST_COUNT" and value < 0:
        raise error(f"A HOST_COUNT minimum of healthy hosts must be 0 or more; got {value}.")
    return {"type": kind, "value": value}


def _checked_routing(routing: shapes.TrafficRoutingConfig) -> shapes.TrafficRoutingConfig:
    invalid = errors.InvalidTrafficRoutingConfigurationException
    kind = routing.get("type")
    if kind == "AllAtOnce" or kind is None:
        return {"type": "AllAtOnce"}
    if kind == "TimeBasedCanary":
        canary = routing.get("timeBasedCanary")
        if canary is None:
            raise invalid("A TimeBasedCanary traffic routing needs timeBasedCanary.")
        percent, minutes = canary.get("canaryPercentage"), canary.get("canaryInterval")
        _check_increment(percent, minutes, "canaryPercentage", "canaryInterval")
        return {
            "type": kind,
            "timeBasedCanary": {"canaryPercentage": percent or 0, "canaryInterval": minutes or 0},
        }
    linear = routing.get("timeBasedLinear")
    if linear is None:
        raise invalid("A TimeBasedLinear traffic routing needs timeBasedLinear.")
    percent, minutes = linear.get("linearPercentage"), linear.get("linearInterval")
    _check_increment(percent, minutes, "linearPercentage", "linearInterval")
    if percent and minutes and (100 + percent - 1) // percent * minutes > MAX_ROUTING_MINUTES:
        raise invalid(
            f"Shifting {percent}% every {minutes} minutes takes longer than the "
            f"{MAX_ROUTING_MINUTES} minutes allowed between the first and last shift."
        )
    return {
        "type": kind,
        "timeBasedLinear": {"linearPercentage": percent or 0, "linearInterval": minutes or 0},
    }


def _check_increment(
    percent: int | None, minutes: int | None, percent_member: str, minutes_member: str
) -> None:
    invalid = errors.InvalidTrafficRoutingConfigurationException
    if percent is None or not 1 <= percent <= MAX_INCREMENT_PERCENT:
        raise invalid(
            f"{percent_member} must be between 1 and {MAX_INCREMENT_PERCENT}; got {percent}."
        )
    if minutes is None or not 1 <= minutes <= MAX_ROUTING_MINUTES:
        raise invalid(
            f"{minutes_member} must be between 1 and {MAX_ROUTING_MINUTES} minutes; got {minutes}."
        )


def _checked_zonal(zonal: shapes.ZonalConfig) -> shapes.ZonalConfig:
    invalid = errors.InvalidZonalDeploymentConfigurationException
    checked: shapes.ZonalConfig = {}
    first, each = (
        zonal.get("firstZoneMonitorDurationInSeconds"),
        zonal.get("monitorDurationInSeconds"),
    )
    for member, value in (
        ("firstZoneMonitorDurationInSeconds", first),
        ("monitorDurationInSeconds", each),
    ):
        if value is not None and value < 0:
            raise invalid(f"{member} must be 0 or more seconds; got {value}.")
    if first is not None:
        checked["firstZoneMonitorDurationInSeconds"] = first
    if each is not None:
        checked["monitorDurationInSeconds"] = each
    per_zone = zonal.get("minimumHealthyHostsPerZone")
    if per_zone is not None:
        minimum = _checked_minimum(per_zone, invalid)
        checked["minimumHealthyHostsPerZone"] = {"type": minimum["type"], "value": minimum["value"]}
    return checked
