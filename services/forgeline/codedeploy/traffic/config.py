"""haproxy.cfg for a set of target groups (pure).

The configuration holds everything HAProxy needs after a reload or a cold start, members
included: HAProxy forgets servers added through the runtime API when it reloads, so every
member the model holds is written here too. A member being drained is written with weight
0 (it must take no new request from the first moment), a member in maintenance as
`disabled`; the saved server state (`server-state-file`) and the proxy's reconciliation
then restore its drain state and weight exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from forgeline.codedeploy.traffic.errors import InvalidTrafficConfig
from forgeline.codedeploy.traffic.layout import ProxyLayout
from forgeline.codedeploy.traffic.model import (
    DRAIN,
    MAINT,
    Address,
    HealthCheck,
    Member,
    ProxyModel,
    TargetGroup,
)

HEADER = "# Written by Forgeline's traffic proxy from state.json: edits here are overwritten.\n"


@dataclass(frozen=True)
class ProxyOptions:
    """Timeouts, in seconds. A reload lets old workers finish their requests for at most
    `hard_stop_after` seconds before they are stopped."""

    connect_timeout: float = 5
    client_timeout: float = 60
    server_timeout: float = 60
    http_request_timeout: float = 10
    # Also how long an old worker may wait for the last request of an idle connection.
    keep_alive_timeout: float = 10
    queue_timeout: float = 30
    hard_stop_after: float = 60
    # Attempts to connect to a member before the request fails; with `option redispatch`
    # the last one goes to another member.
    retries: int = 3

    def __post_init__(self) -> None:
        for name in (
            "connect_timeout",
            "client_timeout",
            "server_timeout",
            "http_request_timeout",
            "keep_alive_timeout",
            "queue_timeout",
            "hard_stop_after",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise InvalidTrafficConfig(f"{name} must be a positive number of seconds")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise InvalidTrafficConfig("retries must be a whole number")
        if not 0 <= self.retries <= 10:
            raise InvalidTrafficConfig("retries must be from 0 to 10")


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def check_arguments(check: HealthCheck | None) -> list[str]:
    """The server keywords of a group's health check (the same on a `server` line of the
    configuration and in a runtime `add server`)."""
    if check is None:
        return []
    return [
        "check",
        "inter",
        str(check.interval_ms),
        "rise",
        str(check.rise),
        "fall",
        str(check.fall),
    ]


def server_arguments(member: Member, check: HealthCheck | None, *, weight: int) -> list[str]:
    return [str(member.address), "weight", str(weight), *check_arguments(check)]


def _bind(group: TargetGroup) -> str:
    return str(Address(group.bind_address, group.port))


def _server_line(member: Member, check: HealthCheck | None) -> str:
    weight = 0 if member.state == DRAIN else member.weight
    words = ["server", member.name, *server_arguments(member, check, weight=weight)]
    if member.state == MAINT:
        words.append("disabled")
    return "    " + " ".join(words)


def _group_sections(group: TargetGroup) -> list[str]:
    lines = [
        "",
        f"frontend {group.name}",
        f"    bind {_bind(group)}",
        f"    default_backend {group.name}",
        "",
        f"backend {group.name}",
        # roundrobin is dynamic: weights change and servers come and go at runtime.
        "    balance roundrobin",
    ]
    if group.health_check is not None:
        lines.append(f"    option httpchk GET {group.health_check.path}")
    lines.extend(_server_line(member, group.health_check) for member in group.members)
    return lines


def render(model: ProxyModel, layout: ProxyLayout, options: ProxyOptions | None = None) -> str:
    options = options or ProxyOptions()
    lines = [
        "global",
        # One command per connection; expose-fd lets a reloading worker take over the
        # listening sockets, so no connection is refused during a reload.
        f"    stats socket {layout.runtime_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        f"    server-state-file {layout.server_state_file}",
        f"    hard-stop-after {_ms(options.hard_stop_after)}",
        "",
        "defaults",
        "    mode http",
        "    option redispatch",
        # During a reload the old worker answers the next request of each idle keep-alive
        # connection with "Connection: close" instead of closing it under the client,
        # which would fail a request sent at that moment.
        "    option idle-close-on-response",
        f"    retries {options.retries}",
        f"    timeout connect {_ms(options.connect_timeout)}",
        f"    timeout client {_ms(options.client_timeout)}",
        f"    timeout server {_ms(options.server_timeout)}",
        f"    timeout http-request {_ms(options.http_request_timeout)}",
        f"    timeout http-keep-alive {_ms(options.keep_alive_timeout)}",
        f"    timeout queue {_ms(options.queue_timeout)}",
        "    load-server-state-from-file global",
    ]
    for group in model.target_groups:
        lines.extend(_group_sections(group))
    return HEADER + "\n".join(lines) + "\n"
