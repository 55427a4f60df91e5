"""The runner contract: how a build's plan gets executed, whatever executes it.

A runner prepares one session per build (a container, or nothing at all on the host),
runs the plan's phase scripts in it one `run()` at a time, and tears it down. The engine
decides what to run; runners only run it, stream its output and report its exit status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Labels every build container, and marks every host process of a build, with its id.
BUILD_ID_LABEL = "org.forgeline.build-id"
BUILD_MARKER_VARIABLE = "FORGELINE_BUILD_MARKER"

# RunnerError codes, named after the CodeBuild phase-context codes the engine reports.
UNABLE_TO_PULL_IMAGE = "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE"
CLIENT_ERROR = "CLIENT_ERROR"
# The server cannot give builds a sandbox (no container engine answers): a FAULT, not the
# build's or its author's error.
ENGINE_UNAVAILABLE = "BUILD_CONTAINER_ENGINE_UNAVAILABLE"

OutputSink = Callable[[bytes], None]


class RunnerError(Exception):
    """The runner could not do what was asked (not: a command failed, which is a status).

    `fault` marks the server's failure (the build ends FAULT) rather than the build's.
    """

    def __init__(self, message: str, code: str = CLIENT_ERROR, *, fault: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fault = fault


class RunInterrupted(Exception):
    """`stop()` was called while (or before) `run()` ran: the command was killed."""


# RunSpec.network values. ISOLATED: a network namespace of the build's own, with a way in
# to this server's endpoints only (see docker_runner); HOST: the host's network, loopback
# and all (the operator's explicit choice); NONE: no network at all.
NETWORK_ISOLATED = "isolated"
NETWORK_HOST = "host"
NETWORK_NONE = "none"
NETWORK_MODES = (NETWORK_ISOLATED, NETWORK_HOST, NETWORK_NONE)


@dataclass(frozen=True)
class RunSpec:
    build_id: str
    root: Path
    image: str | None
    env: Mapping[str, str]
    cpus: float | None = None
    memory_bytes: int | None = None
    privileged: bool = False
    network: str = NETWORK_ISOLATED
    extra_mounts: Sequence[tuple[Path, str, bool]] = ()
    # The loopback endpoints of this server the build's URLs name, as (address in the
    # build, port, address on the host, port): an isolated build is given a way in to
    # each, at the same address and port, and to nothing else on the host.
    server_endpoints: Sequence[tuple[str, int, str, int]] = ()
    # The Docker network isolated builds join on an engine with bridge networking.
    build_network_name: str = "forgeline-builds"
    # Most processes the build may run at once (None: no limit).
    pids_limit: int | None = None
    # Hand a privileged build the host's Docker socket (root on the host).
    host_docker_socket: bool = False


class RunnerSession(Protocol):
    # Where RunSpec.root appears to the build's commands.
    root_in_runner: str
    # Where each extra mount's requested inside path appears to the build's commands
    # (the inside path itself in a container; the host path on the host runner).
    mount_paths: Mapping[str, str]
    # What the build's own log should say about its sandbox (e.g. it has no way in to
    # this server), written at PROVISIONING.
    notes: Sequence[str]

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        on_output: OutputSink,
        user: str | None = None,
    ) -> int: ...

    def stop(self) -> None: ...

    def cleanup(self) -> None: ...


class Runner(Protocol):
    # Shown to people (logs, `build-local`); never branched on: callers ask the
    # capabilities and methods below instead.
    name: str
    # Whether builds run inside their build image (a container). False: the image is
    # ignored, and commands start with the host's own tools.
    uses_image: bool
    # The sandbox limits this runner cannot enforce (network isolation, memory, ...); said
    # in every build's log and at start. Empty: it enforces them all.
    not_enforced: tuple[str, ...]

    def prepare(self, spec: RunSpec) -> RunnerSession: ...

    def available(self) -> bool: ...

    def remove_build_container(self, build_id: str) -> int:
        """Remove what a lost worker left of BUILD_ID (its container on Docker, its
        processes on the host); returns how many were found."""
        ...

    def container_build_ids(self) -> set[str]:
        """The build ids of every build container this runner's engine holds (empty
        where builds leave no container behind)."""
        ...
