"""Where the proxy keeps its files: one directory (by default `<data-dir>/traffic`).

- haproxy.cfg: the configuration HAProxy runs (rendered from the model);
- haproxy.pid: the master process's id;
- haproxy.log: HAProxy's own messages (start, reload and their failures);
- master.sock: the master CLI (reload, show proc);
- runtime.sock: the runtime API, level admin (servers, weights, states). HAProxy takes
  socket paths of at most 97 bytes: where the directory is too deep for that, both sockets
  live in /tmp/forgeline-traffic-<digest of the directory>/ instead (private to its owner);
  every process sharing the directory finds them there;
- server-state: servers' live state, saved just before a reload and read by the new
  worker, so a drained or failed member stays so across it;
- state.json: the desired model, the truth the proxy returns to after a restart;
- listeners.sha256: the target groups (frontends) the running HAProxy loaded, so an
  adopted proxy is reloaded only when they differ from the model's;
- lock: serializes changes from every process sharing the directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from forgeline.codedeploy.traffic.errors import InvalidTrafficConfig

# A unix socket path must fit sockaddr_un's sun_path (108 bytes with its terminating NUL),
# and HAProxy binds at "<path>.<pid>.tmp" first: it takes at most 97 bytes.
MAX_SOCKET_PATH = 97
# Not tempfile.gettempdir(): every process sharing the directory must agree, whatever TMPDIR.
SHORT_SOCKET_ROOT = Path("/tmp")
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

    @property
    def socket_directory(self) -> Path:
        """The directory, unless its socket paths would be too long for HAProxy."""
        if len(str(self.directory / "runtime.sock").encode()) <= MAX_SOCKET_PATH:
            return self.directory
        digest = hashlib.sha256(str(self.directory).encode()).hexdigest()[:16]
        return SHORT_SOCKET_ROOT / f"forgeline-traffic-{digest}"

    def prepare_socket_directory(self) -> None:
        """Make the short socket directory, refusing one another user could have planted."""
        folder = self.socket_directory
        if folder == self.directory:
            return
        folder.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
            raise InvalidTrafficConfig(
                f"{folder} (where the proxy's sockets go, as the traffic proxy directory "
                f"{self.directory} is too deep for them) is not a private directory of this "
                "user: remove it, or use a shorter data directory"
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
        return self.socket_directory / "master.sock"

    @property
    def runtime_socket(self) -> Path:
        return self.socket_directory / "runtime.sock"

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
