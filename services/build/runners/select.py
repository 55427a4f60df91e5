"""Which runner builds use: FORGELINE_BUILD_RUNNER = auto | docker | host.

`auto` takes Docker when an engine answers a ping quickly, else the host runner. The
choice is made once per process and setting (a ping per build would cost a round trip).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from services.build.runners.base import Runner
from services.build.runners.docker_runner import DockerRunner
from services.build.runners.host_runner import HostRunner

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
    log.info(line)
    return line


def reset_runner_choice() -> None:
    with _choices_lock:
        _choices.clear()


def _choice(settings: Any) -> tuple[Runner, str]:
    wanted = str(getattr(settings, "build_runner", "auto"))
    with _choices_lock:
        if wanted not in _choices:
            _choices[wanted] = _decide(wanted)
        return _choices[wanted]


def _decide(wanted: str) -> tuple[Runner, str]:
    if wanted == "host":
        return HostRunner(), "FORGELINE_BUILD_RUNNER=host"
    if wanted == "docker":
        # Chosen explicitly: builds then fail with a clear error if the engine is down,
        # rather than silently running unisolated on the host.
        return DockerRunner(), "FORGELINE_BUILD_RUNNER=docker"
    engine = _docker_engine()
    if engine is not None:
        return DockerRunner(), f"auto: Docker engine {engine} answered"
    return HostRunner(), "auto: no Docker engine answered; builds run as host processes"


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
