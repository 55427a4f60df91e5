"""`forgeline traffic ...`: the traffic proxy's target groups, which CodeDeploy deployment
groups name in their loadBalancerInfo (on AWS they are made with the ELB API)."""

from __future__ import annotations

import json
from typing import Any

import click

from forgeline.cli.boundary import CliError, Group


@click.group("traffic", cls=Group)
def traffic_group() -> None:
    """The traffic proxy (HAProxy) that deployments WITH_TRAFFIC_CONTROL move traffic on."""


@traffic_group.group("target-group", cls=Group)
def target_group() -> None:
    """Target groups: a listening port and the instances behind it."""


def _proxy() -> Any:
    from forgeline.codedeploy.traffic.proxy import TrafficProxy
    from forgeline.core.settings import get_settings

    get_settings().data_dir.mkdir(parents=True, exist_ok=True)
    return TrafficProxy()


def _describe(group: Any) -> dict[str, Any]:
    return {
        "name": group.name,
        "port": group.port,
        "bindAddress": group.bind_address,
        "deregistrationDelaySeconds": group.deregistration_delay_seconds,
        "members": {member.name: member.to_document() for member in group.members},
    }


@target_group.command("create")
@click.option("--name", required=True, help="The name deployment groups give in loadBalancerInfo.")
@click.option("--port", type=click.IntRange(1, 65535), required=True, help="Port to listen on.")
@click.option("--bind-address", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option(
    "--deregistration-delay",
    type=click.FloatRange(0, 3600),
    default=None,
    help="Seconds a blocked instance keeps its requests (default 300, as on ELB).",
)
def create(
    name: str, port: int, bind_address: str | None, deregistration_delay: float | None
) -> None:
    """Create a target group (or change its port or delay); its members are kept."""
    from forgeline.codedeploy.traffic.errors import TrafficError

    try:
        group = _proxy().ensure_target_group(
            name,
            port,
            bind_address=bind_address,
            deregistration_delay_seconds=deregistration_delay,
        )
    except TrafficError as exc:
        raise CliError(str(exc)) from None
    click.echo(json.dumps(_describe(group), indent=2))


@target_group.command("list")
def list_groups() -> None:
    """Every target group with its members (as recorded)."""
    groups = _proxy().target_groups()
    click.echo(json.dumps([_describe(group) for group in groups], indent=2))


@target_group.command("delete")
@click.option("--name", required=True)
def delete(name: str) -> None:
    """Stop listening for a target group and forget its members."""
    proxy = _proxy()
    if not any(group.name == name for group in proxy.target_groups()):
        raise CliError(f"no target group {name!r}")
    proxy.remove_target_group(name)


@traffic_group.group("member", cls=Group)
def member_group() -> None:
    """A target group's members: the backends that serve it (an instance, a Lambda
    function's version, an ECS task definition)."""


@member_group.command("register")
@click.option("--target-group", required=True, help="The target group to serve.")
@click.option(
    "--name",
    required=True,
    help="The member's name: an instance name, a Lambda version number, or an ECS task "
    "definition's family:revision.",
)
@click.option("--address", required=True, help="HOST:PORT the backend answers on.")
@click.option(
    "--weight",
    type=click.IntRange(0, 256),
    default=1,
    show_default=True,
    help="Its share of new requests relative to the others (0: none).",
)
def register_member(target_group: str, name: str, address: str, weight: int) -> None:
    """Register a backend with a target group (or change its address or weight)."""
    from forgeline.codedeploy.traffic.errors import TrafficError

    proxy = _proxy()
    try:
        proxy.register(target_group, name, address, weight=weight)
        groups = {group.name: group for group in proxy.target_groups()}
    except TrafficError as exc:
        raise CliError(str(exc)) from None
    click.echo(json.dumps(_describe(groups[target_group]), indent=2))


@member_group.command("deregister")
@click.option("--target-group", required=True)
@click.option("--name", required=True)
@click.option(
    "--drain",
    type=click.FloatRange(0, 3600),
    default=0,
    show_default=True,
    help="Seconds its requests in flight may take to finish.",
)
def deregister_member(target_group: str, name: str, drain: float) -> None:
    """Take a backend out of a target group."""
    from forgeline.codedeploy.traffic.errors import TrafficError

    try:
        _proxy().deregister(target_group, name, drain_seconds=drain)
    except TrafficError as exc:
        raise CliError(str(exc)) from None


@traffic_group.command("stop")
def stop() -> None:
    """Stop the proxy (it keeps running when Forgeline stops); the next deployment that
    moves traffic, or `target-group create`, starts it again."""
    _proxy().stop()
