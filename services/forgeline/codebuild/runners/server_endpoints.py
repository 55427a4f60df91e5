"""The loopback endpoints of this server that a build's URLs name.

A build is given URLs of this server: clone URLs, AWS_ENDPOINT_URL, log links (public_url,
else http://<host>:<port>), and git over HTTPS on the TLS port. Those on loopback mean the
host's loopback, which an isolated build does not share: the Docker runner opens each of
them inside the build's network namespace and relays it to the same address and port on the
host. This module lists them; addresses elsewhere are reached, where the build's network
allows, by routing.

Each endpoint is (address in the build, port, address on the host, port). `localhost` means
127.0.0.1 (and ::1 in the build, relayed to 127.0.0.1); a wildcard bind address (0.0.0.0,
::) is reached at 127.0.0.1. IPv6 loopback URLs are not relayed: relayed connections come
from 127.0.0.2 so the server can keep its operator endpoints from builds, and IPv6 has no
second loopback address to mark them with.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from forgeline.core.tls import tls_port

Endpoint = tuple[str, int, str, int]

_WILDCARDS = ("", "0.0.0.0", "::")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_hosts_and_ports(settings: Any) -> list[tuple[str, int]]:
    """(host, port) of every URL of this server a build may be given."""
    https = tls_port(settings)
    named: list[tuple[str, int]] = [(settings.host, int(settings.port))]
    if https:
        named.append((settings.host, https))
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        if parts.hostname is not None:
            named.append((parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)))
            if https:
                named.append((parts.hostname, https))
    return list(dict.fromkeys(named))


def server_endpoints(settings: Any) -> tuple[Endpoint, ...]:
    """The loopback endpoints to relay into an isolated build (see the module docstring)."""
    endpoints: dict[tuple[str, int], Endpoint] = {}
    for host, port in url_hosts_and_ports(settings):
        for endpoint in _relays(host, port):
            endpoints.setdefault(endpoint[:2], endpoint)
    return tuple(endpoints.values())


def routed_urls(settings: Any) -> list[str]:
    """host:port of the URLs not relayed: an isolated build reaches them only by routing."""
    return [
        f"{host}:{port}" for host, port in url_hosts_and_ports(settings) if not _relays(host, port)
    ]


def _relays(host: str, port: int) -> list[Endpoint]:
    if host in _WILDCARDS:
        return [("127.0.0.1", port, "127.0.0.1", port)]
    if host == "localhost":
        return [("127.0.0.1", port, "127.0.0.1", port), ("::1", port, "127.0.0.1", port)]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return []  # a name: the build resolves it and routes to it
    if address.version == 4 and address.is_loopback:
        return [(host, port, host, port)]
    return []
