"""Which requests come from builds, so the operator's endpoints can refuse them.

A build whose network is isolated reaches this server in one of two ways:

- through the forwarder the Docker runner opens inside the build's network namespace, which
  connects from FORWARDED_SOURCE_ADDRESS. Linux routes all of 127.0.0.0/8 to the loopback
  interface, so that address needs no setup, and no other local client comes from it unless
  it binds it on purpose (the kernel gives loopback connections the source 127.0.0.1).
- on an engine with bridge networking, by routing from the build network
  (FORGELINE_BUILD_NETWORK_NAME), whose subnets the engine knows: they are asked when a
  request from outside loopback needs them, and kept for a minute once found.

uvicorn trusts X-Forwarded-For only from 127.0.0.1 and ::1 (FORWARDED_ALLOW_IPS), so a build
cannot rename itself with that header; an operator who widens that list to every address
gives the header's sender that power. Builds on the host's network (FORGELINE_BUILD_NETWORK
=host) or on the host runner cannot be told from the operator: that choice is announced with
a warning at start.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger("forgeline.api")

# The loopback address the build forwarder connects from (see netns_forward.upstream_source).
FORWARDED_SOURCE_ADDRESS = "127.0.0.2"

_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# How long a build network's subnets, once found, are trusted without asking the engine.
_SUBNETS_KEPT_SECONDS = 60.0
_ENGINE_TIMEOUT_SECONDS = 2


def client_address(host: str | None) -> _IPAddress | None:
    """HOST as an address (an IPv4-mapped IPv6 address as the IPv4 one); None if not one."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class BuildClients:
    """Tells whether a request's client address is a build's.

    `subnets` returns the build network's subnets (the engine's answer by default); an
    empty list when there is no such network, or no engine to ask.
    """

    def __init__(
        self, settings: Any, subnets: Callable[[], Sequence[_IPNetwork]] | None = None
    ) -> None:
        self._settings = settings
        self._subnets = subnets or (lambda: build_network_subnets(settings))
        self._lock = threading.Lock()
        self._found: tuple[float, tuple[_IPNetwork, ...]] | None = None

    def includes(self, host: str | None) -> bool:
        address = client_address(host)
        if address is None:
            return False
        if str(address) == FORWARDED_SOURCE_ADDRESS:
            return True
        if address.is_loopback or not self._builds_have_a_network_of_their_own():
            return False
        return any(address in subnet for subnet in self._build_subnets())

    def _builds_have_a_network_of_their_own(self) -> bool:
        settings = self._settings
        return settings.build_runner != "host" and settings.build_network == "isolated"

    def _build_subnets(self) -> tuple[_IPNetwork, ...]:
        with self._lock:
            found = self._found
            if found is not None and time.monotonic() - found[0] < _SUBNETS_KEPT_SECONDS:
                return found[1]
        # Not kept when none are found: the network may be made by the next build.
        subnets = tuple(self._subnets())
        with self._lock:
            self._found = (time.monotonic(), subnets) if subnets else None
        return subnets


def build_network_subnets(settings: Any) -> list[_IPNetwork]:
    """The subnets of the build network on this machine's Docker engine ([] if none)."""
    try:
        import docker

        client = docker.from_env(timeout=_ENGINE_TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - no engine, no build network
        return []
    try:
        network = client.api.inspect_network(settings.build_network_name)
    except Exception:  # noqa: BLE001 - missing network or engine gone: nothing to refuse
        return []
    finally:
        client.close()
    return subnets_of(network)


def subnets_of(network: dict[str, Any]) -> list[_IPNetwork]:
    """The subnets in a `docker network inspect` answer."""
    found = []
    for entry in (network.get("IPAM") or {}).get("Config") or []:
        try:
            found.append(ipaddress.ip_network(str(entry.get("Subnet", "")), strict=False))
        except ValueError:
            log.warning("build network %s: unreadable subnet %r", network.get("Name"), entry)
    return found
