"""Secrets at rest (secret access keys, later other credentials) encrypted with Fernet.

One server key encrypts them all. It comes from FORGELINE_SERVER_KEY, or is generated
once into <data_dir>/server.key; every process of an installation must use the same key,
so concurrent first starts agree on a single file.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from forgeline.core.settings import Settings

SERVER_KEY_FILE = "server.key"
_READ_ATTEMPTS = 100  # x 20 ms: how long to wait for a key another process is writing


class DecryptionError(Exception):
    """A stored secret does not decrypt under the server key in use."""


def load_server_key(settings: Settings) -> bytes:
    """The Fernet key (urlsafe base64 bytes), generating the key file on first use."""
    if settings.server_key:
        return _validated(settings.server_key.strip().encode("ascii"), "FORGELINE_SERVER_KEY")
    return _load_or_create(Path(settings.data_dir) / SERVER_KEY_FILE)


def _validated(key: bytes, source: str) -> bytes:
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise ValueError(f"{source} is not a valid Fernet key (32 bytes, urlsafe base64)") from None
    return key


def _load_or_create(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(_READ_ATTEMPTS):
        try:
            content = path.read_bytes().strip()
        except FileNotFoundError:
            _create_if_absent(path, Fernet.generate_key())
            continue
        if content:
            return _validated(content, str(path))
        time.sleep(0.02)  # created but not yet written, by the fallback path below
    raise RuntimeError(f"{path} stays empty; remove it to generate a new server key")


def _create_if_absent(path: Path, key: bytes) -> None:
    """Publish `key` at `path` unless a key is already there; never overwrite.

    The key is written to a private temporary file first and then hard-linked into
    place, so readers see either no file or a complete one, and of two processes
    racing, exactly one link succeeds.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    _write_private(temporary, key)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    except OSError:
        # Filesystems without hard links: exclusive create; readers wait for content.
        try:
            _write_private(path, key)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, data + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=8)
def _fernet(key: bytes) -> Fernet:
    return Fernet(key)


def encrypt(key: bytes, plaintext: str) -> str:
    return _fernet(key).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(key: bytes, token: str) -> str:
    try:
        return _fernet(key).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError):
        raise DecryptionError(
            "stored secret cannot be decrypted with this server key (was the server key changed?)"
        ) from None
