"""Where the proxy keeps its files: one directory (by default `<data-dir>/traffic`).

- haproxy.cfg: the configuration HAProxy runs (rendered from the model);
- haproxy.pid: the master process's id;
- haproxy.log: HAProxy's own messages (start, reload and their failures);
- master.sock: the master CLI (reload, show proc);
- runtime.sock: the runtime API, level admin (servers, weights, states);
- server-state: servers' live state, saved just before a reload and read by the new
  worker, so a drained or failed member stays so across it;
- state.json: the desired model, the truth the proxy returns to after a restart;
- listeners.sha256: the target groups (frontends) the running HAProxy loaded, so an
  adopted proxy is reloaded only when they differ from the model's;
- lock: serializes changes from every process sharing the directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from forgeline.codedeploy.traffic.errors import InvalidTrafficConfig

# A unix socket path must fit sockaddr_un's sun_path (108 bytes with its terminating NUL).
MAX_SOCKET_PATH = 107
# Paths go into haproxy.cfg and onto the `-S path,mode,600` argument: keep them to
# characters neither reads specially.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_./+@=-]+")


@dataclass(frozen=True)
class ProxyLayout:
    directory: Path

    def __post_init__(self) -> None:
        directory = Path(self.directory).absolute()
        object.__setattr__(self, "directory", directory)
        if not _PLAIN_PATH.fullmatch(str(directory)):
            raise InvalidTrafficConfig(
                f"traffic proxy directory {str(directory)!r} may hold only letters, digits and "
                "'_./+@=-' (HAProxy reads spaces, commas, quotes and '#' specially)"
            )
        for socket in (self.master_socket, self.runtime_socket):
            if len(str(socket).encode()) > MAX_SOCKET_PATH:
                raise InvalidTrafficConfig(
                    f"socket path {str(socket)!r} is longer than {MAX_SOCKET_PATH} bytes, the "
                    "limit of unix sockets: use a shorter traffic proxy directory"
                )

    @property
    def config_file(self) -> Path:
        return self.directory / "haproxy.cfg"

    @property
    def pid_file(self) -> Path:
        return self.directory / "haproxy.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "haproxy.log"

    @property
    def master_socket(self) -> Path:
        return self.directory / "master.sock"

    @property
    def runtime_socket(self) -> Path:
        return self.directory / "runtime.sock"

    @property
    def server_state_file(self) -> Path:
        return self.directory / "server-state"

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def loaded_listeners_file(self) -> Path:
        return self.directory / "listeners.sha256"

    @property
    def lock_file(self) -> Path:
        return self.directory / "lock"
