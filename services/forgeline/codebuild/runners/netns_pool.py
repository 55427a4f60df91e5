"""Network namespaces made ahead of builds, so an isolated build does not wait for one.

Docker takes about 120 ms longer to start a container on network `none` (or on a bridge
network) than on `host`: most of it is making the namespace. An isolated build therefore
joins a namespace made in advance: a *holder* container, started on the build's network
and doing nothing but sleep, whose namespace the build container joins
(`network_mode=container:<holder>`), with the way in to this server (netns_forward)
already listening in it. Each holder serves exactly one build and is removed with it, so
builds never share a namespace; the pool only moves the namespace's making off the
build's critical path.

A holder runs `sleep` from an image a build has already used (any image with `sleep`
does: the holder only keeps the namespace alive). It sleeps a little longer than the
longest build may run, so a holder left behind by a worker that died ends by itself
(`auto_remove`); a new pool also removes the holders of dead workers of this host at once.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from forgeline.codebuild.runners.containers import remove_quietly
from forgeline.codebuild.runners.netns_forward import Forwarder

log = logging.getLogger("forgeline.build.network")

HOLDER_LABEL = "org.forgeline.netns-holder"
# CodeBuild's longest build timeout is 36 hours; a holder outlives any build it serves.
HOLDER_LIFETIME_SECONDS = 37 * 3600
# Ready holders per (network, endpoints): the builds a worker starts back to back.
DEFAULT_POOL_SIZE = 2

Endpoints = tuple[tuple[str, int, str, int], ...]
OpenWayIn = Callable[[Any, str, Sequence[tuple[str, int, str, int]]], Forwarder | None]


@dataclass
class Holder:
    """A running container whose network namespace one build joins."""

    container_id: str
    network_mode: str
    endpoints: Endpoints
    forwarder: Forwarder | None = None

    @property
    def joining_mode(self) -> str:
        return f"container:{self.container_id}"


@dataclass
class _Shelf:
    ready: list[Holder] = field(default_factory=list)
    filling: bool = False


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class NamespacePool:
    """Ready holders per (network mode, endpoints); one per runner, thread-safe."""

    def __init__(self, open_way_in: OpenWayIn, size: int = DEFAULT_POOL_SIZE) -> None:
        self._open_way_in = open_way_in
        self._size = size
        self._lock = threading.Lock()
        self._shelves: dict[tuple[str, Endpoints], _Shelf] = {}
        self._image: str | None = None
        self._unusable_images: set[str] = set()
        self._api: Any = None
        self._swept = False
        self._closed = False
        atexit.register(self.close)

    def take(self, api: Any, network_mode: str, endpoints: Endpoints, image: str) -> Holder | None:
        """A ready holder for a build (None: none ready; the build makes its own).

        The shelf is refilled in the background, from IMAGE unless it has no `sleep`: at
        once when it was empty, else when the build ends (`release`), so that making the
        next namespace does not compete with this build's start."""
        key = (network_mode, endpoints)
        with self._lock:
            if self._closed or self._size <= 0:
                return None
            self._api = api
            if image not in self._unusable_images:
                self._image = image
            shelf = self._shelves.setdefault(key, _Shelf())
            holder = shelf.ready.pop(0) if shelf.ready else None
        if holder is None:
            self._refill(key)
        return holder

    def ready(self) -> list[str]:
        """The container ids of the holders ready for builds."""
        with self._lock:
            return [h.container_id for shelf in self._shelves.values() for h in shelf.ready]

    def release(self, api: Any, holder: Holder) -> None:
        """The build that joined HOLDER is over: remove it (its namespace goes with it)."""
        try:
            if holder.forwarder is not None:
                holder.forwarder.close()
            remove_quietly(api, holder.container_id)
        finally:
            self._refill((holder.network_mode, holder.endpoints))

    def _refill(self, key: tuple[str, Endpoints]) -> None:
        with self._lock:
            shelf = self._shelves.get(key)
            if self._closed or shelf is None or shelf.filling or self._image is None:
                return
            shelf.filling = True
        threading.Thread(
            target=self._fill, args=(key,), name="namespace-holder-fill", daemon=True
        ).start()

    def close(self) -> None:
        """Remove every ready holder (the process is ending)."""
        with self._lock:
            self._closed = True
            holders = [h for shelf in self._shelves.values() for h in shelf.ready]
            self._shelves.clear()
            api = self._api
        for holder in holders:
            try:
                self.release(api, holder)
            except Exception:  # the engine may be gone already; auto_remove ends them later
                log.debug("could not remove holder %s", holder.container_id, exc_info=True)

    def _fill(self, key: tuple[str, Endpoints]) -> None:
        network_mode, endpoints = key
        try:
            self._sweep_dead_owners()
            while True:
                with self._lock:
                    shelf = self._shelves.get(key)
                    image, api = self._image, self._api
                    if self._closed or shelf is None or image is None:
                        return
                    if len(shelf.ready) >= self._size:
                        return
                holder = self._make(api, image, network_mode, endpoints)
                if holder is None:
                    return
                with self._lock:
                    if self._closed:
                        keep = False
                    else:
                        self._shelves.setdefault(key, _Shelf()).ready.append(holder)
                        keep = True
                if not keep:
                    self.release(api, holder)
                    return
        except Exception:
            log.warning("could not make a network namespace ahead of builds", exc_info=True)
        finally:
            with self._lock:
                shelf = self._shelves.get(key)
                if shelf is not None:
                    shelf.filling = False

    def _make(self, api: Any, image: str, network_mode: str, endpoints: Endpoints) -> Holder | None:
        import docker

        host_config = api.create_host_config(
            network_mode=network_mode, auto_remove=True, pids_limit=8
        )
        try:
            created = api.create_container(
                image,
                command=[str(HOLDER_LIFETIME_SECONDS)],
                entrypoint=["sleep"],
                labels={HOLDER_LABEL: _owner()},
                host_config=host_config,
            )
            container_id = str(created["Id"])
        except docker.errors.DockerException as exc:
            log.debug("no holder from %s: %s", image, exc)
            return None
        try:
            api.start(container_id)
        except docker.errors.DockerException as exc:
            # Most likely the image has no `sleep`: stop trying it.
            remove_quietly(api, container_id)
            with self._lock:
                self._unusable_images.add(image)
                if self._image == image:
                    self._image = None
            log.debug("holder from %s did not start: %s", image, exc)
            return None
        holder = Holder(container_id, network_mode, endpoints)
        try:
            holder.forwarder = self._open_way_in(api, container_id, endpoints)
        except Exception:
            remove_quietly(api, container_id)
            raise
        return holder

    def _sweep_dead_owners(self) -> None:
        """Remove holders left by workers of this host that are no longer running."""
        with self._lock:
            if self._swept:
                return
            self._swept = True
            api = self._api
        host = socket.gethostname()
        for container in api.containers(all=True, filters={"label": HOLDER_LABEL}):
            owner = str((container.get("Labels") or {}).get(HOLDER_LABEL, ""))
            owner_host, _, pid = owner.rpartition(":")
            if owner_host == host and pid.isdigit() and not _process_alive(int(pid)):
                remove_quietly(api, container["Id"])


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
