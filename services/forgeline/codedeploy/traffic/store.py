"""The proxy's files that outlive a process: the desired model (state.json), the
fingerprint of what the running HAProxy loaded, and the lock every change holds.

Files are replaced atomically (temporary file, fsync, rename), so a crash leaves the old
version or the new one, never half of one. The lock is an flock on its own file: it
serializes changes between Forgeline processes and between threads of one process (each
holder opens the file anew).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from forgeline.codedeploy.traffic.errors import InvalidTrafficConfig
from forgeline.codedeploy.traffic.layout import ProxyLayout
from forgeline.codedeploy.traffic.model import ProxyModel


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class StateStore:
    def __init__(self, layout: ProxyLayout) -> None:
        self.layout = layout

    def prepare(self) -> None:
        self.layout.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.layout.prepare_socket_directory()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.prepare()
        with self.layout.lock_file.open("a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def load(self) -> ProxyModel:
        path = self.layout.state_file
        try:
            text = path.read_text()
        except FileNotFoundError:
            return ProxyModel()
        try:
            return ProxyModel.from_document(json.loads(text))
        except InvalidTrafficConfig as error:
            raise InvalidTrafficConfig(f"{path} is not usable: {error}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InvalidTrafficConfig(
                f"{path} is damaged ({type(error).__name__}: {error}): restore it or remove it "
                "to start with no target groups"
            ) from None

    def save(self, model: ProxyModel) -> None:
        self.prepare()
        write_atomically(self.layout.state_file, json.dumps(model.to_document(), indent=2) + "\n")

    def loaded_listeners(self) -> str | None:
        try:
            return self.layout.loaded_listeners_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def record_loaded_listeners(self, fingerprint: str) -> None:
        write_atomically(self.layout.loaded_listeners_file, fingerprint + "\n")
