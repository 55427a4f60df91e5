"""The network of an isolated Docker build: a namespace of its own, and a way in to Forgeline.

On an engine with bridge networking the container joins the build network
(FORGELINE_BUILD_NETWORK_NAME), made here when missing: a plain bridge network of its own,
so none of the stack's services is on it, with traffic between its containers off
(`com.docker.network.bridge.enable_icc=false`), so a build cannot reach another build's
container. On an engine without (dockerd --bridge=none: the default `bridge` network does
not exist) the container gets network `none`: its own loopback and nothing else.

Either way, once the container runs, the loopback endpoints its URLs name
(server_endpoints.py) are relayed into its namespace by netns_forward, from
FORWARDED_SOURCE_ADDRESS, so the server keeps its operator endpoints from them
(core/build_clients.py). Relaying needs root in the host's PID namespace; where it cannot be
done the build still runs isolated, unable to reach this server on loopback, and a warning
says why.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Sequence
from typing import Any

from forgeline.codebuild.runners.base import (
    NETWORK_ISOLATED,
    NETWORK_NONE,
    RunnerError,
    RunSpec,
)
from forgeline.codebuild.runners.netns_forward import Forwarder, NetnsForwardError, forward_into
from forgeline.core.build_clients import FORWARDED_SOURCE_ADDRESS

log = logging.getLogger("forgeline.build.network")

ICC_OPTION = "com.docker.network.bridge.enable_icc"
# Marks the networks made here, so an operator sees what made them.
NETWORK_LABEL = "org.forgeline.build-network"
_IPV6_LOOPBACK = "0" * 31 + "1"  # as /proc/<pid>/net/if_inet6 writes ::1


def _docker_errors() -> Any:
    import docker

    return docker.errors


class BuildNetworks:
    """Chooses and makes build containers' networks; one per runner, shared by its sessions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engine_bridges: bool | None = None
        self._ready: set[str] = set()
        self._warned: set[str] = set()

    def network_mode(self, api: Any, spec: RunSpec) -> str:
        """The container's network mode for SPEC (may create the build network)."""
        if spec.network != NETWORK_ISOLATED:
            return spec.network
        if not self.engine_bridges(api):
            return NETWORK_NONE
        self._ensure_network(api, spec.build_network_name)
        return spec.build_network_name

    def engine_bridges(self, api: Any) -> bool:
        """Whether the engine has bridge networking (its default `bridge` network exists).

        Asked once: an engine changes that only when it restarts with other options."""
        with self._lock:
            if self._engine_bridges is not None:
                return self._engine_bridges
        try:
            bridges = api.inspect_network("bridge").get("Driver") == "bridge"
        except _docker_errors().NotFound:
            bridges = False
        with self._lock:
            self._engine_bridges = bridges
        return bridges

    def forget_network(self, name: str) -> None:
        """Check NAME again before the next build: starting a container on it failed."""
        with self._lock:
            self._ready.discard(name)

    def _ensure_network(self, api: Any, name: str) -> None:
        with self._lock:
            if name in self._ready:
                return
        errors = _docker_errors()
        try:
            network = api.inspect_network(name)
        except errors.NotFound:
            try:
                api.create_network(
                    name,
                    driver="bridge",
                    options={ICC_OPTION: "false"},
                    labels={NETWORK_LABEL: "isolated builds"},
                    check_duplicate=True,
                )
                log.info("created the build network %s", name)
            except errors.APIError as exc:
                if exc.status_code != 409:  # made meanwhile by another worker: fine
                    raise
            network = api.inspect_network(name)
        driver = network.get("Driver")
        if driver != "bridge":
            raise RunnerError(
                f"The build network {name!r} exists with driver {driver!r}; isolated builds "
                "need a bridge network of their own: remove it, or set "
                "FORGELINE_BUILD_NETWORK_NAME to another name.",
                fault=True,
            )
        if (network.get("Options") or {}).get(ICC_OPTION) != "false":
            self._warn_once(
                f"icc {name}",
                f"the build network {name} lets its containers reach one another "
                f"({ICC_OPTION} is not false): one build can reach another's container; "
                "remove the network and Forgeline makes it with that option off",
            )
        with self._lock:
            self._ready.add(name)

    def open_way_in(
        self, api: Any, container_id: str, endpoints: Sequence[tuple[str, int, str, int]]
    ) -> Forwarder | None:
        """Relay ENDPOINTS into the running container (None: nothing to relay, or no way)."""
        if not endpoints:
            return None
        pid = api.inspect_container(container_id)["State"]["Pid"]
        ipv6 = _has_ipv6_loopback(pid)
        wanted = [
            endpoint
            for endpoint in endpoints
            if ipaddress.ip_address(endpoint[0]).version == 4 or ipv6
        ]
        try:
            return forward_into(
                pid,
                wanted,
                container_id=container_id,
                upstream_source=FORWARDED_SOURCE_ADDRESS,
            )
        except (NetnsForwardError, ValueError) as exc:
            shown = ", ".join(f"{host}:{port}" for host, port, _, _ in wanted)
            self._warn_once(
                f"{type(exc).__name__} {shown}",
                f"isolated builds cannot reach this server at {shown}: {exc}. Run the worker "
                "as root in the host's PID namespace, set FORGELINE_PUBLIC_URL to an address "
                "the build network routes to, or (without isolation) FORGELINE_BUILD_NETWORK=host",
            )
            return None

    def _warn_once(self, key: str, message: str) -> None:
        """Log MESSAGE the first time KEY comes up: every build would repeat it."""
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        log.warning(message)


def _has_ipv6_loopback(pid: int) -> bool:
    """Whether the network namespace of PID has ::1 (IPv6 may be off in it)."""
    try:
        with open(f"/proc/{pid}/net/if_inet6") as addresses:
            return any(line.split()[0] == _IPV6_LOOPBACK for line in addresses if line.strip())
    except OSError:
        return False
