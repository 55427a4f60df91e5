"""Which runner builds use: FORGELINE_BUILD_RUNNER = auto | docker | host.

`auto` means Docker. When no engine answers, container builds are refused (they end
FAULT in PROVISIONING, saying how to start Docker or choose the host runner): a build
never leaves its sandbox unless FORGELINE_BUILD_RUNNER=host asks for it, and that choice
is announced with a warning. The choice is made once per process and setting; the Docker
runner asks the engine again at every build, so builds work as soon as Docker starts.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from forgeline.codebuild.runners.base import Runner
from forgeline.codebuild.runners.docker_runner import DockerRunner, engine_address
from forgeline.codebuild.runners.host_runner import HostRunner

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
    if not runner.uses_image or reason.endswith(_REFUSING):
        log.warning(line)
    else:
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


_REFUSING = (
    "container builds are refused (FAULT) until one does: start Docker, or set "
    "FORGELINE_BUILD_RUNNER=host to run builds as plain host processes"
)


def _decide(wanted: str) -> tuple[Runner, str]:
    if wanted == "host":
        return HostRunner(), (
            "FORGELINE_BUILD_RUNNER=host: builds run as plain processes of this machine, as "
            "this server's user, without isolation; their image is ignored"
        )
    setting = "FORGELINE_BUILD_RUNNER=docker" if wanted == "docker" else "auto"
    engine = _docker_engine()
    if engine is not None:
        return DockerRunner(), f"{setting}: Docker engine {engine} answered"
    return DockerRunner(), (
        f"{setting}: no Docker engine answers at {engine_address()}; {_REFUSING}"
    )


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
