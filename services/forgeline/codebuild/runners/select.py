"""Which runner builds use: FORGELINE_BUILD_RUNNER = auto | docker | host.

`auto` means Docker. When no engine answers, container builds are refused (they end
FAULT in PROVISIONING, saying how to start Docker or choose the host runner): a build
never leaves its sandbox unless FORGELINE_BUILD_RUNNER=host asks for it, and that choice
is announced with a warning. The choice is made once per process and setting; the Docker
runner asks the engine again at every build, so builds work as soon as Docker starts.

Beside it goes how container builds reach the network (FORGELINE_BUILD_NETWORK): isolated,
and how on this engine; or the host's network, announced as a warning, since builds then
reach everything on this machine's loopback.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from forgeline.codebuild.runners.base import NETWORK_HOST, Runner
from forgeline.codebuild.runners.docker_runner import DockerRunner, engine_address
from forgeline.codebuild.runners.host_runner import HostRunner
from forgeline.codebuild.runners.netns_pool import DEFAULT_POOL_SIZE
from forgeline.codebuild.runners.server_endpoints import routed_urls, server_endpoints

log = logging.getLogger("forgeline.build.runners")

_PING_TIMEOUT_SECONDS = 2.0

_choices: dict[str, tuple[Runner, str]] = {}
_choices_lock = threading.Lock()


def choose_runner(settings: Any) -> Runner:
    """The runner this process uses for builds (see the module docstring)."""
    return _choice(settings)[0]


def describe_runner_choice(settings: Any) -> str:
    """One line saying which runner is used and why; logged, for the server to call at start."""
    runner, reason = _choice(settings)
    line = f"build runner: {runner.name} ({reason})"
    if runner.not_enforced:
        line += f"; not enforced on this runner: {', '.join(runner.not_enforced)}"
    if not runner.uses_image or reason.endswith(_REFUSING):
        log.warning(line)
    else:
        log.info(line)
    if isinstance(runner, DockerRunner):
        # Asked only of an engine that just answered: a missing one could keep us waiting.
        bridges = None if reason.endswith(_REFUSING) else runner.engine_bridges()
        network, warn = describe_build_network(settings, bridges)
        (log.warning if warn else log.info)(network)
    return line


def describe_build_network(settings: Any, bridges: bool | None) -> tuple[str, bool]:
    """One line saying how container builds reach the network, and whether it is a warning.

    BRIDGES: whether the engine has bridge networking (None: no engine answers yet)."""
    if settings.build_network == NETWORK_HOST:
        return (
            "build network: host (FORGELINE_BUILD_NETWORK=host): builds share this machine's "
            "network, loopback included: the database, the broker, every admin endpoint and "
            "one another",
            True,
        )
    ways_in = ", ".join(f"{host}:{port}" for host, port, _, _ in server_endpoints(settings))
    routed = routed_urls(settings)
    if bridges is None:
        how = "decided when an engine answers"
    elif bridges:
        how = f"Docker network {settings.build_network_name}, no traffic between builds"
    else:
        how = "no bridge networking on this engine: network none"
    line = f"build network: isolated ({how}; relayed in to this server: {ways_in or 'nothing'})"
    if ways_in and os.geteuid() != 0:
        return (
            f"{line}; but relaying into a build's network needs root (in the host's PID "
            "namespace), so builds cannot reach this server: git clones and API calls from "
            "a buildspec will fail. Run the worker as root, or choose "
            "FORGELINE_BUILD_NETWORK=host on purpose",
            True,
        )
    if routed and bridges is False:
        return (
            f"{line}; builds cannot reach {', '.join(routed)}: on an engine without bridge "
            "networking only loopback URLs are relayed",
            True,
        )
    return line, False


def close_runners() -> None:
    """Release what the chosen runners hold between builds (the process is stopping)."""
    with _choices_lock:
        chosen = [runner for runner, _ in _choices.values()]
    for runner in chosen:
        close = getattr(runner, "close", None)
        if close is not None:
            close()


def reset_runner_choice() -> None:
    with _choices_lock:
        _choices.clear()


def _choice(settings: Any) -> tuple[Runner, str]:
    wanted = str(getattr(settings, "build_runner", "auto"))
    prepared = int(getattr(settings, "build_prepared_namespaces", DEFAULT_POOL_SIZE))
    key = f"{wanted}/{prepared}"
    with _choices_lock:
        if key not in _choices:
            _choices[key] = _decide(wanted, prepared)
        return _choices[key]


_REFUSING = (
    "container builds are refused (FAULT) until one does: start Docker, or set "
    "FORGELINE_BUILD_RUNNER=host to run builds as plain host processes"
)


def _decide(wanted: str, prepared_namespaces: int) -> tuple[Runner, str]:
    if wanted == "host":
        return HostRunner(), (
            "FORGELINE_BUILD_RUNNER=host: builds run as plain processes of this machine, as "
            "this server's user, without isolation; their image is ignored"
        )
    setting = "FORGELINE_BUILD_RUNNER=docker" if wanted == "docker" else "auto"
    engine = _docker_engine()
    runner = DockerRunner(prepared_namespaces=prepared_namespaces)
    if engine is not None:
        return runner, f"{setting}: Docker engine {engine} answered"
    return runner, (f"{setting}: no Docker engine answers at {engine_address()}; {_REFUSING}")


def _docker_engine() -> str | None:
    """The version of the Docker engine that answers a ping in time, or None."""
    try:
        import docker

        client = docker.from_env(timeout=_PING_TIMEOUT_SECONDS)
        try:
            client.ping()
            return str(client.version().get("Version", "unknown version"))
        finally:
            client.close()
    except Exception:
        return None
