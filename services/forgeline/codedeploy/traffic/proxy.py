"""The traffic proxy as a deployment driver uses it.

    proxy = TrafficProxy()                      # files in <data-dir>/traffic
    proxy.ensure_target_group("web-tg", 8080)   # a frontend on 127.0.0.1:8080
    proxy.register("web-tg", "i-1", "10.0.0.5:80", weight=1)       # AllowTraffic
    proxy.deregister("web-tg", "i-1", drain_seconds=30)            # BlockTraffic
    proxy.set_weights("web-tg", {"blue": 90, "green": 10})         # a canary step

Every operation is idempotent: it records the desired model first (state.json), then
brings HAProxy to it, so repeating one after a crash (of Forgeline or of HAProxy) finishes
the work instead of doing it twice. Members change through the runtime API, live; only
adding, moving or removing a target group (a frontend) reloads HAProxy, without refusing a
connection. HAProxy is started on first use and keeps running when Forgeline stops; the
next Forgeline adopts it and reconciles it with the model.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from forgeline.codedeploy.traffic.config import ProxyOptions, render, server_arguments
from forgeline.codedeploy.traffic.errors import (
    InvalidTrafficConfig,
    RuntimeCommandFailed,
    TrafficError,
)
from forgeline.codedeploy.traffic.layout import ProxyLayout
from forgeline.codedeploy.traffic.model import (
    DEFAULT_BIND_ADDRESS,
    DEFAULT_DEREGISTRATION_DELAY_SECONDS,
    DEFAULT_WEIGHT,
    DRAIN,
    MAINT,
    READY,
    Address,
    HealthCheck,
    Member,
    ProxyModel,
    TargetGroup,
    validate_drain_seconds,
)
from forgeline.codedeploy.traffic.process import HaproxyProcess
from forgeline.codedeploy.traffic.reconcile import (
    AddServer,
    Change,
    RemoveServer,
    SetAddress,
    SetState,
    SetWeight,
    plan_group,
)
from forgeline.codedeploy.traffic.runtime import RuntimeClient
from forgeline.codedeploy.traffic.store import StateStore, write_atomically

# How long a removed member may keep connections HAProxy is closing before `del server`
# gives up.
_DELETE_PATIENCE_SECONDS = 5.0
# An empty server-state file (its version line): a cold start carries nothing over.
_EMPTY_SERVER_STATE = "1\n"


def default_directory() -> Path:
    from forgeline.core.settings import get_settings

    return get_settings().data_dir / "traffic"


@dataclass(frozen=True)
class MemberStatus:
    """A member as HAProxy serves it now."""

    name: str
    address: str
    weight: int
    state: str  # ready, drain or maint
    health: str  # up, down, starting or stopping (up unless a health check says otherwise)
    sessions: int  # requests on it now


@dataclass(frozen=True)
class Deregistration:
    member: str
    removed: bool  # False: it was not registered (or was registered again meanwhile)
    drained: bool  # every request on it finished within the drain time
    cut_requests: int  # requests still on it when the drain time ran out (their connections closed)
    waited_seconds: float


def _delay(wanted: float | None, current: TargetGroup | None) -> float:
    if wanted is not None:
        return wanted
    if current is not None:
        return current.deregistration_delay_seconds
    return DEFAULT_DEREGISTRATION_DELAY_SECONDS


def _port_is_free(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As HAProxy binds: connections of a previous listener in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


class TrafficProxy:
    def __init__(
        self,
        directory: Path | None = None,
        *,
        options: ProxyOptions | None = None,
        bind_address: str = DEFAULT_BIND_ADDRESS,
        haproxy_binary: str | None = None,
    ) -> None:
        self.layout = ProxyLayout(directory if directory is not None else default_directory())
        self.options = options or ProxyOptions()
        self.bind_address = bind_address
        self.store = StateStore(self.layout)
        self.process = HaproxyProcess(self.layout, binary=haproxy_binary)
        self.runtime = RuntimeClient(self.layout.runtime_socket)
        # Whether this object has brought the running HAProxy to the model once.
        self._synced = False

    # Lifecycle.

    def start(self) -> None:
        """Start HAProxy (or adopt the one running) and bring it to the stored model."""
        with self._locked():
            pass

    def stop(self) -> None:
        """Stop HAProxy gracefully. The model stays: the next operation starts it again."""
        with self.store.locked():
            self.process.stop()
            self._synced = False

    # Target groups.

    def target_groups(self) -> tuple[TargetGroup, ...]:
        return self.store.load().target_groups

    def ensure_target_group(
        self,
        name: str,
        port: int,
        *,
        bind_address: str | None = None,
        health_check: HealthCheck | None = None,
        deregistration_delay_seconds: float | None = None,
    ) -> TargetGroup:
        """A target group listening on `port` with exactly this health check (none when not
        given); an existing group keeps its members (and its deregistration delay unless one
        is given). Only a new group, a new port or a new health check reloads HAProxy;
        asking again for what exists changes nothing."""
        with self._locked():
            model = self.store.load()
            current = model.group(name) if model.has_group(name) else None
            group = TargetGroup(
                name,
                port,
                bind_address or (current.bind_address if current else self.bind_address),
                health_check,
                current.members if current else (),
                _delay(deregistration_delay_seconds, current),
            )
            wanted = model.with_group(group)
            if wanted != model:
                moved = current is None or (current.port, current.bind_address) != (
                    group.port,
                    group.bind_address,
                )
                if moved and not _port_is_free(group.bind_address, group.port):
                    raise InvalidTrafficConfig(
                        f"port {group.port} on {group.bind_address} is already in use: target "
                        f"group {name!r} cannot listen there"
                    )
                self._change_listeners(model, wanted)
            return wanted.group(name)

    def remove_target_group(self, name: str) -> None:
        """Stop listening for the group and forget its members (no drain: deregister them
        first to let their requests finish)."""
        with self._locked():
            model = self.store.load()
            if model.has_group(name):
                self._change_listeners(model, model.without_group(name))

    # Members.

    def register(
        self, target_group: str, member: str, address: str, *, weight: int = DEFAULT_WEIGHT
    ) -> Member:
        """Put a member in the group, ready for traffic (AllowTraffic). Registering it again
        updates its address and weight, and cancels a drain in progress."""
        with self._locked():
            model = self.store.load()
            group = model.group(target_group)
            wanted = Member(member, Address.parse(address), weight, READY)
            self._save_group(model, group.with_member(wanted))
            return wanted

    def deregister(self, target_group: str, member: str, *, drain_seconds: float) -> Deregistration:
        """Take a member out (BlockTraffic): no new request goes to it at once; the ones it
        has get up to `drain_seconds` to finish, then it is removed."""
        drain = validate_drain_seconds(drain_seconds)
        with self._locked():
            model = self.store.load()
            group = model.group(target_group)
            if not group.has_member(member):
                return Deregistration(member, False, True, 0, 0.0)
            current = group.member(member)
            if current.state == READY:
                self._save_group(model, group.with_member(replace(current, state=DRAIN)))
        # The wait holds no lock: other groups and members change meanwhile.
        waited = self.runtime.wait_until_drained(target_group, member, drain)
        with self._locked():
            model = self.store.load()
            group = model.group(target_group)
            if not group.has_member(member) or group.member(member).state == READY:
                # Removed, or registered again, by someone else meanwhile.
                return Deregistration(member, False, waited.drained, 0, waited.waited_seconds)
            self._remove_server(target_group, member)
            self._save_group(model, group.without_member(member))
        return Deregistration(member, True, waited.drained, waited.remaining, waited.waited_seconds)

    def set_weights(self, target_group: str, weights: Mapping[str, int]) -> None:
        """New weights for some members of a group, at once (a traffic shift)."""
        with self._locked():
            model = self.store.load()
            group = model.group(target_group)
            for name, weight in weights.items():
                group = group.with_member(replace(group.member(name), weight=weight))
            self._save_group(model, group)

    def set_state(self, target_group: str, member: str, state: str) -> None:
        """Force a member's state (ready, drain or maint) without removing it."""
        with self._locked():
            model = self.store.load()
            group = model.group(target_group)
            self._save_group(model, group.with_member(replace(group.member(member), state=state)))

    def members(self, target_group: str) -> list[MemberStatus]:
        """The group's members as HAProxy has them now, in name order."""
        with self._locked():
            self.store.load().group(target_group)
            servers = self.runtime.servers(target_group)
            sessions = {
                stat.name: stat.current_sessions for stat in self.runtime.stats(target_group)
            }
        return [
            MemberStatus(
                name=server.name,
                address=str(Address(server.host, server.port)),
                weight=server.weight,
                state=server.admin_state,
                health=server.health,
                sessions=sessions.get(server.name, 0),
            )
            for server in sorted(servers, key=lambda s: s.name)
        ]

    # Bringing HAProxy to the model.

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The lock every change holds, with HAProxy running and matching the model."""
        with self.store.locked():
            if not self._synced or self.process.master_pid() is None:
                self._converge(self.store.load())
                self._synced = True
            yield

    def _save(self, model: ProxyModel) -> None:
        """Record the model, and keep haproxy.cfg in step with it (a reload or a cold start
        reads the members from there)."""
        self.store.save(model)
        write_atomically(self.layout.config_file, render(model, self.layout, self.options))

    def _save_group(self, model: ProxyModel, group: TargetGroup) -> None:
        wanted = model.with_group(group)
        if wanted != model:
            self._save(wanted)
        self._reconcile_group(group)

    def _change_listeners(self, model: ProxyModel, wanted: ProxyModel) -> None:
        """Reload onto a new set of target groups; on failure the old model stays in force."""
        self._save(wanted)
        try:
            self._converge(wanted)
        except TrafficError:
            self._save(model)
            raise

    def _converge(self, model: ProxyModel) -> None:
        """Start or reload HAProxy if its target groups are not the model's, then bring
        every member to the model through the runtime API."""
        fingerprint = model.listeners_fingerprint()
        running = self.process.is_running()
        if not running or self.store.loaded_listeners() != fingerprint:
            self._load_configuration(model, running=running)
            self.store.record_loaded_listeners(fingerprint)
        for group in model.target_groups:
            self._reconcile_group(group)

    def _load_configuration(self, model: ProxyModel, *, running: bool) -> None:
        self.store.prepare()
        candidate = self.layout.directory / "haproxy.cfg.new"
        candidate.write_text(render(model, self.layout, self.options))
        self.process.check_config(candidate)
        # Live states (drains, failed health checks) carry over a reload; a cold start
        # begins from the configuration alone.
        saved = self.runtime.servers_state_dump() if running else _EMPTY_SERVER_STATE
        write_atomically(self.layout.server_state_file, saved)
        os.replace(candidate, self.layout.config_file)
        if running:
            self.process.reload()
        else:
            self.process.start()

    def _reconcile_group(self, group: TargetGroup) -> None:
        for change in plan_group(group, self.runtime.servers(group.name)):
            self._apply(group.name, change)

    def _apply(self, backend: str, change: Change) -> None:
        if isinstance(change, AddServer):
            member = change.member
            arguments = server_arguments(member, change.check, weight=member.weight)
            self.runtime.add_server(backend, member.name, arguments)
            if change.check is not None:
                self.runtime.enable_health(backend, member.name)
        elif isinstance(change, SetAddress):
            self.runtime.set_address(
                backend, change.server, change.address.host, change.address.port
            )
        elif isinstance(change, SetWeight):
            self.runtime.set_weight(backend, change.server, change.weight)
        elif isinstance(change, SetState):
            self.runtime.set_state(backend, change.server, change.state)
        elif isinstance(change, RemoveServer):
            self._remove_server(backend, change.server)

    def _remove_server(self, backend: str, server: str) -> None:
        """Maintenance, close what it still has, delete. HAProxy deletes a server only once
        its connections are gone, which takes a moment after they are shut."""
        self.runtime.set_state(backend, server, MAINT)
        self.runtime.shutdown_sessions(backend, server)
        deadline = time.monotonic() + _DELETE_PATIENCE_SECONDS
        while True:
            try:
                self.runtime.delete_server(backend, server)
                return
            except RuntimeCommandFailed as error:
                if "no such server" in error.answer.lower():
                    return
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)
