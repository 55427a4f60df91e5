"""Target groups and their members, as the proxy is asked to keep them (pure).

A target group (what a deployment group's LoadBalancerInfo names) is one HAProxy backend
with a frontend of the same name listening on its port. Its members are the instances that
serve it, each with an address, a weight (HAProxy's 0-256: the share of new requests is
weight / sum of weights of ready members) and an administrative state:

- ready: takes new requests;
- drain: takes no new requests, finishes the ones it has (deregistration, BlockTraffic);
- maint: takes nothing.

Every value is validated when it is built, so a model read back from disk or made from a
caller's input is always one HAProxy accepts. The document form (`to_document` /
`from_document`) is what the proxy keeps on disk between restarts.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from forgeline.codedeploy.traffic.errors import (
    InvalidTrafficConfig,
    UnknownMember,
    UnknownTargetGroup,
)

DOCUMENT_VERSION = 1

READY = "ready"
DRAIN = "drain"
MAINT = "maint"
STATES = (READY, DRAIN, MAINT)

MIN_WEIGHT = 0
MAX_WEIGHT = 256  # HAProxy's largest server weight
DEFAULT_WEIGHT = 1

DEFAULT_BIND_ADDRESS = "127.0.0.1"
MAX_DRAIN_SECONDS = 3600  # the longest deregistration delay AWS allows
DEFAULT_DEREGISTRATION_DELAY_SECONDS = 300.0  # ELB's default

# HAProxy identifiers (proxy and server names) allow letters, digits, '-', '_', '.' and
# ':'. The first character is kept alphanumeric so a name never reads as an option.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
MAX_NAME_LENGTH = 64
# A health-check path goes into the configuration as one word: no spaces, quotes or
# control characters.
_CHECK_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")


def validate_name(kind: str, name: object) -> str:
    """A target group or member name HAProxy takes as an identifier, or a clear error."""
    if not isinstance(name, str) or not name:
        raise InvalidTrafficConfig(f"{kind} name is required (got {name!r})")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidTrafficConfig(
            f"{kind} name {name!r} is too long: at most {MAX_NAME_LENGTH} characters"
        )
    if not _NAME.fullmatch(name):
        raise InvalidTrafficConfig(
            f"{kind} name {name!r} is not valid: use letters, digits, '-', '_', '.' and ':',"
            " starting with a letter or digit"
        )
    return name


def validate_port(what: str, port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidTrafficConfig(f"{what} must be a port number from 1 to 65535 (got {port!r})")
    return port


def validate_weight(member: str, weight: object) -> int:
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int)
        or not MIN_WEIGHT <= weight <= MAX_WEIGHT
    ):
        raise InvalidTrafficConfig(
            f"weight of member {member!r} must be a whole number from {MIN_WEIGHT} to "
            f"{MAX_WEIGHT} (got {weight!r})"
        )
    return weight


def validate_state(member: str, state: object) -> str:
    if state not in STATES:
        raise InvalidTrafficConfig(
            f"state of member {member!r} must be one of {', '.join(STATES)} (got {state!r})"
        )
    assert isinstance(state, str)
    return state


def validate_drain_seconds(drain_seconds: object) -> float:
    if (
        isinstance(drain_seconds, bool)
        or not isinstance(drain_seconds, int | float)
        or not math.isfinite(drain_seconds)
        or not 0 <= drain_seconds <= MAX_DRAIN_SECONDS
    ):
        raise InvalidTrafficConfig(
            f"drain time must be from 0 to {MAX_DRAIN_SECONDS} seconds (got {drain_seconds!r})"
        )
    return float(drain_seconds)


def _ip_literal(what: str, text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise InvalidTrafficConfig(
            f"{what} {text!r} is not an IP address: give an IPv4 or IPv6 address (resolve "
            "host names first: HAProxy does not resolve members added at runtime)"
        ) from None


@dataclass(frozen=True)
class Address:
    """A member's address: an IP literal and a port."""

    host: str
    port: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", _ip_literal("member address", self.host))
        validate_port("member port", self.port)

    @classmethod
    def parse(cls, text: object) -> Address:
        """`10.0.0.5:8080` or `[fd00::5]:8080`."""
        if not isinstance(text, str) or not text:
            raise InvalidTrafficConfig(f"member address is required as host:port (got {text!r})")
        if text.startswith("["):
            host, sep, port = text[1:].partition("]:")
        else:
            host, sep, port = text.rpartition(":")
            if ":" in host:
                raise InvalidTrafficConfig(
                    f"member address {text!r} is ambiguous: write IPv6 addresses as [addr]:port"
                )
        if not sep or not port.isdigit():
            raise InvalidTrafficConfig(
                f"member address {text!r} needs a port: write it as host:port"
            )
        return cls(host, int(port))

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if self.is_ipv6 else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class HealthCheck:
    """An HTTP health check of every member of a group: GET `path` every `interval_seconds`;
    `fall` failures in a row take a member out, `rise` successes put it back."""

    path: str = "/"
    interval_seconds: float = 2.0
    rise: int = 2
    fall: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not _CHECK_PATH.fullmatch(self.path):
            raise InvalidTrafficConfig(
                f"health check path {self.path!r} must start with '/' and contain no spaces, "
                "quotes or control characters"
            )
        interval = self.interval_seconds
        if (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not math.isfinite(interval)
            or not 0.1 <= interval <= 3600
        ):
            raise InvalidTrafficConfig(
                f"health check interval must be from 0.1 to 3600 seconds (got {interval!r})"
            )
        for label, count in (("rise", self.rise), ("fall", self.fall)):
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
                raise InvalidTrafficConfig(
                    f"health check {label} must be a whole number from 1 to 100 (got {count!r})"
                )

    @property
    def interval_ms(self) -> int:
        return max(100, round(self.interval_seconds * 1000))

    def to_document(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "intervalSeconds": self.interval_seconds,
            "rise": self.rise,
            "fall": self.fall,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> HealthCheck:
        return cls(
            path=document["path"],
            interval_seconds=document["intervalSeconds"],
            rise=document["rise"],
            fall=document["fall"],
        )


@dataclass(frozen=True)
class Member:
    name: str
    address: Address
    weight: int = DEFAULT_WEIGHT
    state: str = READY

    def __post_init__(self) -> None:
        validate_name("member", self.name)
        if not isinstance(self.address, Address):
            raise InvalidTrafficConfig(f"address of member {self.name!r} must be an Address")
        validate_weight(self.name, self.weight)
        validate_state(self.name, self.state)

    def to_document(self) -> dict[str, Any]:
        return {"address": str(self.address), "weight": self.weight, "state": self.state}

    @classmethod
    def from_document(cls, name: str, document: Mapping[str, Any]) -> Member:
        return cls(
            name=name,
            address=Address.parse(document["address"]),
            weight=document["weight"],
            state=document["state"],
        )


@dataclass(frozen=True)
class TargetGroup:
    """One frontend (bind address and port) and its backend of members, both named `name`."""

    name: str
    port: int
    bind_address: str = DEFAULT_BIND_ADDRESS
    health_check: HealthCheck | None = None
    members: tuple[Member, ...] = field(default=())
    # How long a deregistered member keeps its requests (ELB's deregistration delay);
    # BlockTraffic waits for it. Changing it needs no reload.
    deregistration_delay_seconds: float = DEFAULT_DEREGISTRATION_DELAY_SECONDS

    def __post_init__(self) -> None:
        validate_name("target group", self.name)
        validate_port(f"port of target group {self.name!r}", self.port)
        object.__setattr__(
            self,
            "deregistration_delay_seconds",
            validate_drain_seconds(self.deregistration_delay_seconds),
        )
        object.__setattr__(
            self, "bind_address", _ip_literal("bind address", str(self.bind_address))
        )
        names = [member.name for member in self.members]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidTrafficConfig(
                f"target group {self.name!r} lists members more than once: {', '.join(duplicates)}"
            )
        # Members in name order: the same group renders the same configuration.
        object.__setattr__(self, "members", tuple(sorted(self.members, key=lambda m: m.name)))

    def member(self, name: str) -> Member:
        for member in self.members:
            if member.name == name:
                return member
        raise UnknownMember(self.name, name)

    def has_member(self, name: str) -> bool:
        return any(member.name == name for member in self.members)

    def with_member(self, member: Member) -> TargetGroup:
        others = tuple(m for m in self.members if m.name != member.name)
        return replace(self, members=(*others, member))

    def without_member(self, name: str) -> TargetGroup:
        return replace(self, members=tuple(m for m in self.members if m.name != name))

    def listener(self) -> dict[str, Any]:
        """What only a reload can change (the frontend and the servers' check options)."""
        return {
            "name": self.name,
            "port": self.port,
            "bindAddress": self.bind_address,
            "healthCheck": None if self.health_check is None else self.health_check.to_document(),
        }

    def to_document(self) -> dict[str, Any]:
        document = self.listener()
        del document["name"]
        document["members"] = {m.name: m.to_document() for m in self.members}
        document["deregistrationDelaySeconds"] = self.deregistration_delay_seconds
        return document

    @classmethod
    def from_document(cls, name: str, document: Mapping[str, Any]) -> TargetGroup:
        check = document.get("healthCheck")
        return cls(
            name=name,
            port=document["port"],
            bind_address=document.get("bindAddress", DEFAULT_BIND_ADDRESS),
            health_check=None if check is None else HealthCheck.from_document(check),
            members=tuple(
                Member.from_document(member_name, member)
                for member_name, member in document.get("members", {}).items()
            ),
            deregistration_delay_seconds=document.get(
                "deregistrationDelaySeconds", DEFAULT_DEREGISTRATION_DELAY_SECONDS
            ),
        )


def _same_socket(a: TargetGroup, b: TargetGroup) -> bool:
    if a.port != b.port:
        return False
    wildcard = {"0.0.0.0", "::"}
    return a.bind_address == b.bind_address or bool({a.bind_address, b.bind_address} & wildcard)


@dataclass(frozen=True)
class ProxyModel:
    """Every target group the proxy serves."""

    target_groups: tuple[TargetGroup, ...] = ()

    def __post_init__(self) -> None:
        groups = tuple(sorted(self.target_groups, key=lambda g: g.name))
        for index, group in enumerate(groups):
            for other in groups[index + 1 :]:
                if group.name == other.name:
                    raise InvalidTrafficConfig(f"target group {group.name!r} is listed twice")
                if _same_socket(group, other):
                    raise InvalidTrafficConfig(
                        f"target groups {other.name!r} and {group.name!r} cannot both listen on "
                        f"port {group.port}"
                    )
        object.__setattr__(self, "target_groups", groups)

    def group(self, name: str) -> TargetGroup:
        for group in self.target_groups:
            if group.name == name:
                return group
        raise UnknownTargetGroup(name)

    def has_group(self, name: str) -> bool:
        return any(group.name == name for group in self.target_groups)

    def with_group(self, group: TargetGroup) -> ProxyModel:
        others = (g for g in self.target_groups if g.name != group.name)
        return ProxyModel((*others, group))

    def without_group(self, name: str) -> ProxyModel:
        return ProxyModel(tuple(g for g in self.target_groups if g.name != name))

    def listeners_fingerprint(self) -> str:
        """Changes exactly when a reload is needed: a group added, removed, moved to another
        port or given another health check. Members change at runtime, without one."""
        shapes = [group.listener() for group in self.target_groups]
        return hashlib.sha256(json.dumps(shapes, sort_keys=True).encode()).hexdigest()

    def to_document(self) -> dict[str, Any]:
        return {
            "version": DOCUMENT_VERSION,
            "targetGroups": {g.name: g.to_document() for g in self.target_groups},
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ProxyModel:
        version = document.get("version")
        if version != DOCUMENT_VERSION:
            raise InvalidTrafficConfig(
                f"traffic proxy state has version {version!r}; this Forgeline reads "
                f"version {DOCUMENT_VERSION}"
            )
        groups: Iterable[tuple[str, Mapping[str, Any]]] = document.get("targetGroups", {}).items()
        return cls(tuple(TargetGroup.from_document(name, group) for name, group in groups))
