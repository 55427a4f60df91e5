"""What to change at runtime so a running backend matches its target group (pure).

The proxy calls this after every start, adoption and reload, and the result is empty when
HAProxy already matches, so repeating it after a crash is harmless. Order matters for
traffic: members are added before others are removed, and for one member a change that
takes traffic away (drain, maint) comes before its weight, a change that gives traffic
(ready) after it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from forgeline.codedeploy.traffic.model import (
    MAINT,
    READY,
    Address,
    HealthCheck,
    Member,
    TargetGroup,
)
from forgeline.codedeploy.traffic.runtime import ServerState


@dataclass(frozen=True)
class AddServer:
    """Add the member (HAProxy adds it in maintenance), with the group's health check."""

    member: Member
    check: HealthCheck | None


@dataclass(frozen=True)
class SetAddress:
    server: str
    address: Address


@dataclass(frozen=True)
class SetWeight:
    server: str
    weight: int


@dataclass(frozen=True)
class SetState:
    server: str
    state: str


@dataclass(frozen=True)
class RemoveServer:
    """Take out a server the model does not have: maintenance, cut its sessions, delete."""

    server: str


Change = AddServer | SetAddress | SetWeight | SetState | RemoveServer


def _same_host(live: str, wanted: str) -> bool:
    try:
        return ipaddress.ip_address(live) == ipaddress.ip_address(wanted)
    except ValueError:
        return live == wanted


def _member_changes(
    member: Member, live: ServerState | None, check: HealthCheck | None
) -> list[Change]:
    changes: list[Change] = []
    if live is None:
        changes.append(AddServer(member, check))
        if member.state != MAINT:
            changes.append(SetState(member.name, member.state))
        return changes
    if not (_same_host(live.host, member.address.host) and live.port == member.address.port):
        changes.append(SetAddress(member.name, member.address))
    state_changes = live.admin_state != member.state
    if state_changes and member.state != READY:
        changes.append(SetState(member.name, member.state))
    if live.weight != member.weight:
        changes.append(SetWeight(member.name, member.weight))
    if state_changes and member.state == READY:
        changes.append(SetState(member.name, member.state))
    return changes


def plan_group(group: TargetGroup, live: Sequence[ServerState]) -> list[Change]:
    by_name = {server.name: server for server in live if server.backend == group.name}
    changes: list[Change] = []
    for member in group.members:
        changes.extend(_member_changes(member, by_name.get(member.name), group.health_check))
    wanted = {member.name for member in group.members}
    changes.extend(RemoveServer(name) for name in sorted(by_name) if name not in wanted)
    return changes
