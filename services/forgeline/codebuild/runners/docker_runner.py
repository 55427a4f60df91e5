"""Docker runner: one container per build; every `run()` is a `docker exec` inside it.

The container only idles (a long sleep under Docker's init, which also reaps whatever
the build leaves in the background) so that each phase script runs in the same
filesystem, with processes started by earlier phases still alive, as on CodeBuild.
The build directory is bind-mounted at an AWS-like path (/codebuild/output/srcNNNNNNNNN).

Images are never pulled (no registry is assumed): a missing image fails at once with
BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE. No engine answering is the server's fault: the
build ends FAULT with a message saying how to start Docker or choose the host runner.

Network: `isolated` builds get a namespace of their own and a way in to this server alone
(docker_network.py); `host` shares the host's network, only on the operator's say-so. The
host's Docker socket is mounted only into a privileged build whose operator opted into
exactly that (RunSpec.host_docker_socket), and the process count is capped (pids_limit).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from forgeline.codebuild.runners.base import (
    BUILD_ID_LABEL,
    ENGINE_UNAVAILABLE,
    NETWORK_ISOLATED,
    NETWORK_MODES,
    UNABLE_TO_PULL_IMAGE,
    OutputSink,
    RunInterrupted,
    RunnerError,
    RunSpec,
)
from forgeline.codebuild.runners.containers import remove_quietly
from forgeline.codebuild.runners.docker_network import BuildNetworks
from forgeline.codebuild.runners.netns_forward import Forwarder
from forgeline.codebuild.runners.netns_pool import DEFAULT_POOL_SIZE, Holder, NamespacePool

log = logging.getLogger("forgeline.build.runners")

DOCKER_SOCKET = "/var/run/docker.sock"
# Docker keeps a command's stdout and stderr apart, which loses their relative order: the
# command runs behind a shell that points its stderr at its stdout, as on the host runner.
_MERGE_STDERR = ["/bin/sh", "-c", 'exec "$@" 2>&1', "sh"]
# Longest sleep every `sleep` accepts (BusyBox and coreutils): about 68 years.
_IDLE_COMMAND = ["sleep", "2147483647"]


class _CapabilitiesRefused(Exception):
    pass


# Linux capability numbers (linux/capability.h) by Docker's names for them.
_CAPABILITIES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
    "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
    "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
    "CHECKPOINT_RESTORE"
).split()


def _grantable_privilege() -> dict[str, Any]:
    """The closest to --privileged a capability-limited engine allows: every capability
    in this host's bounding set (the engine runs beside us) and no seccomp/AppArmor."""
    bounding = (1 << len(_CAPABILITIES)) - 1
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapBnd:"):
                bounding = int(line.split()[1], 16)
    except (OSError, ValueError):
        pass
    missing = [name for bit, name in enumerate(_CAPABILITIES) if not bounding >> bit & 1]
    return {
        "cap_add": ["ALL"],
        "cap_drop": missing or None,
        "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
    }


_GRANTABLE = _grantable_privilege()


def _docker_module() -> Any:
    import docker

    return docker


def engine_address() -> str:
    """Where docker-py looks for the engine (DOCKER_HOST, else the default socket)."""
    return os.environ.get("DOCKER_HOST") or f"unix://{DOCKER_SOCKET}"


def no_engine_message() -> str:
    """The plain-words reason a container build cannot start without an engine."""
    return (
        f"No Docker engine answers at {engine_address()}, so this build cannot get its "
        "container, and Forgeline never runs a build outside its container unless told to. "
        "Start Docker (for example `sudo systemctl start docker`, or `sudo dockerd &`) and "
        "start the build again; or, to run builds as plain processes of the server's "
        "machine without any isolation, restart Forgeline with FORGELINE_BUILD_RUNNER=host."
    )


class _EngineUnreachable(Exception):
    pass


def _unreachable(exc: BaseException) -> bool:
    """Whether EXC means no engine answered (rather than the engine refusing a request)."""
    import requests

    docker = _docker_module()
    if isinstance(exc, requests.exceptions.ConnectionError):
        return True
    return isinstance(exc, docker.errors.DockerException) and not isinstance(
        exc, docker.errors.APIError
    )


class DockerRunner:
    name = "docker"
    uses_image = True
    not_enforced: tuple[str, ...] = ()

    def __init__(
        self,
        client_factory: Callable[[], Any] | None = None,
        ping_timeout: float = 2.0,
        prepared_namespaces: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self._client_factory = client_factory
        self._ping_timeout = ping_timeout
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._privileged_refused = False
        self._networks = BuildNetworks()
        self.namespaces = NamespacePool(self._networks.open_way_in, prepared_namespaces)

    # The client is shared by every session of this runner (its connection pool is
    # thread-safe); made lazily so constructing a runner never touches the engine.
    def client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                try:
                    if self._client_factory is not None:
                        self._client = self._client_factory()
                    else:
                        self._client = _docker_module().from_env()
                except Exception as exc:
                    # Making a client asks the engine for its API version.
                    if _unreachable(exc):
                        raise _EngineUnreachable(str(exc)) from exc
                    raise
            return self._client

    def close(self) -> None:
        """Remove the network namespaces prepared for builds that will not come."""
        self.namespaces.close()

    def _api_if_reachable(self) -> Any:
        """The engine's API, or None when no engine answers (nothing to clean up then)."""
        try:
            return self.client().api
        except _EngineUnreachable:
            return None

    def available(self) -> bool:
        try:
            docker = _docker_module()
            probe = docker.from_env(timeout=self._ping_timeout)
            try:
                return bool(probe.ping())
            finally:
                probe.close()
        except Exception:
            return False

    def engine_bridges(self) -> bool | None:
        """Whether the engine has bridge networking; None when no engine answers."""
        try:
            return self._networks.engine_bridges(self.client().api)
        except Exception as exc:
            if _unreachable(exc) or isinstance(exc, _EngineUnreachable):
                return None
            raise

    def prepare(self, spec: RunSpec) -> DockerSession:
        docker = _docker_module()
        if not spec.image:
            raise RunnerError("The Docker runner needs a build image; none was given.")
        if spec.network not in NETWORK_MODES:
            raise RunnerError(
                f"Unsupported network mode {spec.network!r}: use {', '.join(NETWORK_MODES)}."
            )
        try:
            api = self.client().api
            api.inspect_image(spec.image)
            network_mode = self._networks.network_mode(api, spec)
        except _EngineUnreachable:
            raise RunnerError(no_engine_message(), ENGINE_UNAVAILABLE, fault=True) from None
        except docker.errors.ImageNotFound:
            raise RunnerError(
                f"Unable to pull customer's container image. Image {spec.image!r} is not "
                "available on this Forgeline host and no registry is reachable: build it "
                "locally (forgeline images build) or docker load it.",
                code=UNABLE_TO_PULL_IMAGE,
            ) from None
        except Exception as exc:
            if _unreachable(exc):
                raise RunnerError(no_engine_message(), ENGINE_UNAVAILABLE, fault=True) from None
            if not isinstance(exc, docker.errors.DockerException):
                raise
            raise RunnerError(f"Docker engine error: {_explain(exc)}") from None
        root_in_runner = f"/codebuild/output/src{secrets.randbelow(900_000_000) + 100_000_000}"
        mounts = [docker.types.Mount(root_in_runner, str(spec.root), type="bind")]
        mount_paths: dict[str, str] = {}
        for host_path, inside, read_only in spec.extra_mounts:
            mounts.append(
                docker.types.Mount(inside, str(host_path), type="bind", read_only=read_only)
            )
            mount_paths[inside] = inside
        if spec.privileged and spec.host_docker_socket:
            # The host's Docker daemon is root on the host: only where the operator opted
            # into handing it to privileged builds (FORGELINE_BUILD_DOCKER_SOCKET).
            mounts.append(docker.types.Mount(DOCKER_SOCKET, DOCKER_SOCKET, type="bind"))
        privilege: dict[str, Any] = {}
        if spec.privileged:
            privilege = _GRANTABLE if self._privileged_refused else {"privileged": True}
        holder = None
        if spec.network == NETWORK_ISOLATED:
            holder = self.namespaces.take(
                api, network_mode, tuple(spec.server_endpoints), spec.image
            )
        container_id = None
        if holder is not None:
            try:
                container_id = self._start_privileged_if_granted(
                    api, spec, root_in_runner, mounts, privilege, holder.joining_mode
                )
            except RunnerError:
                # The holder died meanwhile: make a namespace the slow way instead.
                log.warning("joining a prepared network namespace failed; making one")
                self.namespaces.release(api, holder)
                holder = None
        if container_id is None:
            container_id = self._start_privileged_if_granted(
                api, spec, root_in_runner, mounts, privilege, network_mode
            )
        forwarder = None
        if holder is not None:
            forwarder = holder.forwarder
        elif spec.network == NETWORK_ISOLATED:
            try:
                forwarder = self._networks.open_way_in(api, container_id, spec.server_endpoints)
            except docker.errors.DockerException as exc:
                remove_quietly(api, container_id)
                raise RunnerError(
                    f"Unable to inspect the build container: {_explain(exc)}"
                ) from None
        session = DockerSession(
            api, container_id, spec, root_in_runner, mount_paths, forwarder, holder, self.namespaces
        )
        if forwarder is None and spec.network == NETWORK_ISOLATED and spec.server_endpoints:
            shown = ", ".join(f"{host}:{port}" for host, port, _, _ in spec.server_endpoints)
            session.notes = (
                f"This build has no way in to Forgeline at {shown} (the worker could not relay "
                "into the build's network: it needs root in the host's PID namespace); git "
                "clones and API calls to this server from the build will fail.",
            )
        return session

    def _start_privileged_if_granted(
        self,
        api: Any,
        spec: RunSpec,
        root_in_runner: str,
        mounts: list[Any],
        privilege: dict[str, Any],
        network_mode: str,
    ) -> str:
        try:
            return self._start(api, spec, root_in_runner, mounts, privilege, network_mode)
        except _CapabilitiesRefused:
            # The engine itself runs without some capabilities (a sandboxed host), so
            # --privileged cannot start: grant every capability it can give instead.
            self._privileged_refused = True
            log.warning("privileged containers refused by the engine; granting %s", _GRANTABLE)
            return self._start(api, spec, root_in_runner, mounts, _GRANTABLE, network_mode)

    def _start(
        self,
        api: Any,
        spec: RunSpec,
        root_in_runner: str,
        mounts: list[Any],
        privilege: dict[str, Any],
        network_mode: str,
    ) -> str:
        docker = _docker_module()
        host_config = api.create_host_config(
            mounts=mounts,
            network_mode=network_mode,
            init=True,
            nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
            mem_limit=spec.memory_bytes,
            # Swap counts against the limit too: otherwise Docker allows twice the memory on a
            # host with swap, and a memory hog swaps instead of ending its build.
            memswap_limit=spec.memory_bytes,
            pids_limit=spec.pids_limit or None,
            **privilege,
        )
        try:
            created = api.create_container(
                spec.image,
                command=_IDLE_COMMAND[1:],
                entrypoint=_IDLE_COMMAND[:1],
                labels={BUILD_ID_LABEL: spec.build_id},
                working_dir=root_in_runner,
                host_config=host_config,
            )
        except docker.errors.DockerException as exc:
            self._networks.forget_network(network_mode)
            raise RunnerError(f"Unable to create the build container: {_explain(exc)}") from None
        container_id = str(created["Id"])
        try:
            api.start(container_id)
        except docker.errors.DockerException as exc:
            remove_quietly(api, container_id)
            if privilege.get("privileged") and "apply caps" in _explain(exc):
                raise _CapabilitiesRefused() from None
            self._networks.forget_network(network_mode)
            raise RunnerError(f"Unable to start the build container: {_explain(exc)}") from None
        return container_id

    def remove_build_container(self, build_id: str) -> int:
        """Remove the container(s) of BUILD_ID, e.g. after the worker running it died."""
        api = self._api_if_reachable()
        if api is None:
            return 0
        found = api.containers(all=True, filters={"label": f"{BUILD_ID_LABEL}={build_id}"})
        for container in found:
            remove_quietly(api, container["Id"])
        return len(found)

    def container_build_ids(self) -> set[str]:
        """The build ids of every build container on this engine, running or not."""
        api = self._api_if_reachable()
        if api is None:
            return set()
        return {
            str((container.get("Labels") or {}).get(BUILD_ID_LABEL, ""))
            for container in api.containers(all=True, filters={"label": BUILD_ID_LABEL})
        }

    def remove_orphans(
        self, build_ids_alive: set[str] | None = None, *, build_id_prefix: str = ""
    ) -> int:
        """Remove build containers whose build is not in BUILD_IDS_ALIVE (None: all of them).

        Only containers whose build id starts with BUILD_ID_PREFIX are considered, so an
        engine (or a test) sharing the Docker host with others sweeps only its own.
        """
        api = self.client().api
        removed = 0
        for container in api.containers(all=True, filters={"label": BUILD_ID_LABEL}):
            build_id = str((container.get("Labels") or {}).get(BUILD_ID_LABEL, ""))
            if not build_id.startswith(build_id_prefix):
                continue
            if build_ids_alive is None or build_id not in build_ids_alive:
                remove_quietly(api, container["Id"])
                removed += 1
        return removed


class DockerSession:
    def __init__(
        self,
        api: Any,
        container_id: str,
        spec: RunSpec,
        root_in_runner: str,
        mount_paths: Mapping[str, str],
        forwarder: Forwarder | None = None,
        holder: Holder | None = None,
        namespaces: NamespacePool | None = None,
    ) -> None:
        self._api = api
        self.container_id = container_id
        # The container whose network namespace this build joined: removed after the build.
        self._holder = holder
        self._namespaces = namespaces
        # The way in to this server (isolated builds); its listening sockets would keep the
        # container's network namespace alive, so it closes with the session.
        self._forwarder = forwarder
        self._env = {str(key): str(value) for key, value in spec.env.items()}
        self.root_in_runner = root_in_runner
        self.mount_paths: Mapping[str, str] = dict(mount_paths)
        self.notes: Sequence[str] = ()
        self._lock = threading.Lock()
        self._stopped = False
        self._removed = False

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        on_output: OutputSink,
        user: str | None = None,
    ) -> int:
        docker = _docker_module()
        if self._stopped:
            raise RunInterrupted()
        try:
            exec_id = self._api.exec_create(
                self.container_id,
                [*_MERGE_STDERR, *argv],
                environment=self._env,
                workdir=cwd,
                user=user or "",
            )["Id"]
            stream = self._api.exec_start(exec_id, stream=True)
        except docker.errors.DockerException as exc:
            if self._stopped:
                raise RunInterrupted() from None
            raise RunnerError(f"Unable to run in the build container: {_explain(exc)}") from None
        wrote = False
        try:
            # Frames arrive as the process writes them (stdout and stderr interleaved).
            for chunk in stream:
                if chunk:
                    wrote = True
                    on_output(chunk)
        except (docker.errors.DockerException, OSError) as exc:
            # The stream broke (engine restarted, connection lost) unless we killed it.
            if not self._stopped:
                raise RunnerError(f"Lost the build container's output: {exc}") from None
        finally:
            stream.close()
        if self._stopped:
            raise RunInterrupted()
        status = self._exit_code(exec_id)
        if status == 126 and not wrote:
            # The engine could not start the process and its own message is not always
            # delivered on the stream: say what can have gone wrong.
            why = f"no user {user!r} in the image, or " if user else ""
            on_output(
                f"unable to start the command in the build container ({why}working "
                f"directory {cwd} missing)\n".encode()
            )
        return status

    def _exit_code(self, exec_id: str) -> int:
        # The stream can end a moment before the engine records the exit status.
        deadline = time.monotonic() + 5
        while True:
            state = self._api.exec_inspect(exec_id)
            if not state.get("Running") and state.get("ExitCode") is not None:
                return int(state["ExitCode"])
            if self._stopped:
                raise RunInterrupted()
            if time.monotonic() > deadline:
                raise RunnerError("The build container did not report the command's exit status.")
            time.sleep(0.01)

    def stop(self) -> None:
        docker = _docker_module()
        with self._lock:
            self._stopped = True
            if self._removed:
                return
        try:
            # Killing the container ends every exec in it, so a blocked run() returns.
            self._api.kill(self.container_id)
        except docker.errors.DockerException:
            pass  # already stopped or gone: nothing runs any more
        finally:
            self._close_way_in()

    def cleanup(self) -> None:
        with self._lock:
            if self._removed:
                return
            self._removed = True
            self._stopped = True
        try:
            self._close_way_in()
        finally:
            try:
                remove_quietly(self._api, self.container_id)
            finally:
                if self._holder is not None and self._namespaces is not None:
                    self._namespaces.release(self._api, self._holder)

    def _close_way_in(self) -> None:
        with self._lock:
            forwarder, self._forwarder = self._forwarder, None
        if forwarder is not None:
            forwarder.close()


def _explain(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)
