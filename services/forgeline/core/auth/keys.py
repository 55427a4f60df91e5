"""Accounts and access keys: create, list, delete, and the secret lookup behind every request.

Secrets are stored encrypted (crypto.py) and handed out in plaintext exactly twice: when a
key is created and, decrypted, to the signature check. That check runs on every API call,
so `lookup_secret` keeps what it found for a few seconds in-process; deleting or
deactivating a key here drops it from this process's cache at once, and other processes
stop accepting it when their entry expires.
"""

from __future__ import annotations

import base64
import collections
import configparser
import dataclasses
import datetime as dt
import io
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.core import db
from forgeline.core.auth.crypto import decrypt, encrypt
from forgeline.core.auth.tables import KEY_ACTIVE, KEY_INACTIVE, AccessKey, Account
from forgeline.core.settings import Settings

CREDENTIALS_FILE = "credentials"
CREDENTIALS_PROFILE = "forgeline"
BOOTSTRAP_USER = "admin"
ROOT_USER = "root"

_ACCOUNT_ID_RE = re.compile(r"\d{12}")
_KEY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # the base32 letters AWS key ids use
_MAX_KEY_ID_LENGTH = 128


class AccountNotFound(LookupError):
    """The account named does not exist."""


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    """What authentication needs to know about an active access key."""

    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)
    account_id: str
    principal_arn: str


@dataclasses.dataclass(frozen=True)
class AccessKeyInfo:
    """An access key as listed: everything but the secret."""

    access_key_id: str
    account_id: str
    principal_arn: str
    status: str
    created_at: dt.datetime


# --- accounts -----------------------------------------------------------------------------


def create_account(session: Session, name: str, account_id: str | None = None) -> Account:
    """Add an account; a random unused 12-digit id unless `account_id` is given."""
    if account_id is None:
        account_id = _unused_account_id(session)
    elif not _ACCOUNT_ID_RE.fullmatch(account_id):
        raise ValueError(f"account id must be 12 digits, not {account_id!r}")
    account = Account(id=account_id, name=name)
    session.add(account)
    session.flush()  # a duplicate id fails here, where the caller can tell
    return account


def _unused_account_id(session: Session) -> str:
    while True:
        candidate = f"{secrets.randbelow(10**12):012d}"
        if session.get(Account, candidate) is None:
            return candidate


def _get_or_create_account(session: Session, account_id: str, name: str) -> Account:
    account = session.get(Account, account_id)
    if account is not None:
        return account
    try:
        with session.begin_nested():
            return create_account(session, name, account_id)
    except IntegrityError:
        # Another process created it between our read and our insert.
        account = session.get(Account, account_id)
        if account is None:
            raise
        return account


# --- access keys --------------------------------------------------------------------------


def principal_arn(account_id: str, user_name: str) -> str:
    if user_name == ROOT_USER:
        return f"arn:aws:iam::{account_id}:root"
    return f"arn:aws:iam::{account_id}:user/{user_name}"


def new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    # 30 random bytes are exactly 40 base64 characters, the length of AWS secrets.
    return base64.b64encode(secrets.token_bytes(30)).decode("ascii")


def create_access_key(
    session: Session, account_id: str, user_name: str = BOOTSTRAP_USER, *, server_key: bytes
) -> tuple[str, str]:
    """Create an active key for `user_name` ("root" for the account itself).

    Returns (access key id, secret access key): the only time the secret is shown.
    """
    if session.get(Account, account_id) is None:
        raise AccountNotFound(f"account {account_id} does not exist")
    access_key_id = new_access_key_id()
    while session.get(AccessKey, access_key_id) is not None:
        access_key_id = new_access_key_id()
    secret = new_secret_access_key()
    session.add(
        AccessKey(
            access_key_id=access_key_id,
            secret_encrypted=encrypt(server_key, secret),
            account_id=account_id,
            principal_arn=principal_arn(account_id, user_name),
            status=KEY_ACTIVE,
        )
    )
    session.flush()
    return access_key_id, secret


def list_access_keys(session: Session, account_id: str | None = None) -> list[AccessKeyInfo]:
    query = select(AccessKey).order_by(AccessKey.created_at, AccessKey.access_key_id)
    if account_id is not None:
        query = query.where(AccessKey.account_id == account_id)
    return [
        AccessKeyInfo(
            access_key_id=key.access_key_id,
            account_id=key.account_id,
            principal_arn=key.principal_arn,
            status=key.status,
            created_at=key.created_at,
        )
        for key in session.scalars(query)
    ]


def delete_access_key(session: Session, access_key_id: str) -> bool:
    """Delete a key; False if there was none."""
    key = session.get(AccessKey, access_key_id)
    if key is None:
        return False
    session.delete(key)
    session.flush()
    _invalidate_on_commit(session, access_key_id)
    return True


def set_access_key_status(session: Session, access_key_id: str, status: str) -> bool:
    """Make a key Active or Inactive; False if there is no such key."""
    if status not in (KEY_ACTIVE, KEY_INACTIVE):
        raise ValueError(f"status must be {KEY_ACTIVE} or {KEY_INACTIVE}, not {status!r}")
    key = session.get(AccessKey, access_key_id)
    if key is None:
        return False
    key.status = status
    session.flush()
    _invalidate_on_commit(session, access_key_id)
    return True


# --- lookup and its cache -----------------------------------------------------------------


class SecretCache:
    """Key records by (database, access key id), each kept for `ttl` seconds."""

    def __init__(
        self,
        ttl: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[tuple[str, str], tuple[float, KeyRecord]] = (
            collections.OrderedDict()
        )

    def get(self, database: str, access_key_id: str) -> KeyRecord | None:
        with self._lock:
            entry = self._entries.get((database, access_key_id))
            if entry is None:
                return None
            expires_at, record = entry
            if self._clock() >= expires_at:
                del self._entries[(database, access_key_id)]
                return None
            return record

    def put(self, database: str, record: KeyRecord) -> None:
        with self._lock:
            self._entries[(database, record.access_key_id)] = (self._clock() + self.ttl, record)
            self._entries.move_to_end((database, record.access_key_id))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(self, access_key_id: str | None = None) -> None:
        """Forget one key (in every database), or everything."""
        with self._lock:
            if access_key_id is None:
                self._entries.clear()
                return
            for cache_key in [k for k in self._entries if k[1] == access_key_id]:
                del self._entries[cache_key]


secret_cache = SecretCache()


def invalidate_cached_key(access_key_id: str | None = None) -> None:
    secret_cache.invalidate(access_key_id)


def _invalidate_on_commit(session: Session, access_key_id: str) -> None:
    # Now, and again once the change is visible to others, so a lookup racing with this
    # transaction cannot re-cache the old state until the TTL runs out.
    secret_cache.invalidate(access_key_id)
    db.on_commit(
        session, lambda: secret_cache.invalidate(access_key_id), key=f"secret-cache:{access_key_id}"
    )


def _database_of(session: Session) -> str:
    return str(session.get_bind().engine.url)


def lookup_secret(
    session: Session,
    access_key_id: str,
    server_key: bytes,
    *,
    cache: SecretCache | None = None,
) -> KeyRecord | None:
    """The active key with this id, its secret decrypted; None if unknown or inactive."""
    if not access_key_id or len(access_key_id) > _MAX_KEY_ID_LENGTH:
        return None
    cache = secret_cache if cache is None else cache
    database = _database_of(session)
    record = cache.get(database, access_key_id)
    if record is not None:
        return record
    # Columns rather than the entity: always fresh, whatever the session has loaded.
    row = session.execute(
        select(
            AccessKey.secret_encrypted,
            AccessKey.account_id,
            AccessKey.principal_arn,
            AccessKey.status,
        ).where(AccessKey.access_key_id == access_key_id)
    ).one_or_none()
    if row is None or row.status != KEY_ACTIVE:
        return None
    record = KeyRecord(
        access_key_id=access_key_id,
        secret_access_key=decrypt(server_key, row.secret_encrypted),
        account_id=row.account_id,
        principal_arn=row.principal_arn,
    )
    cache.put(database, record)
    return record


# --- first start ------------------------------------------------------------------------


def ensure_bootstrap_credentials(session: Session, settings: Settings, server_key: bytes) -> Path:
    """Make sure <data_dir>/credentials holds a key that exists; return its path.

    On first start this creates the default account (settings.default_account) and an
    admin key for it, and writes them as profile [forgeline] of an AWS shared-credentials
    file (mode 0600). A file whose key is still in the database is left alone. The key
    is flushed, not committed: the caller's unit of work commits it.
    """
    path = Path(settings.data_dir) / CREDENTIALS_FILE
    existing = _profile_access_key_id(path)
    if existing is not None and session.get(AccessKey, existing) is not None:
        return path
    account = _get_or_create_account(session, settings.default_account, "default")
    access_key_id, secret = create_access_key(
        session, account.id, BOOTSTRAP_USER, server_key=server_key
    )
    _write_credentials(path, access_key_id, secret, settings.default_region)
    return path


def _profile_access_key_id(path: Path) -> str | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        if not parser.read(path):
            return None
    except configparser.Error:
        return None  # unreadable: replace it with a working one
    return parser.get(CREDENTIALS_PROFILE, "aws_access_key_id", fallback=None)


def _write_credentials(path: Path, access_key_id: str, secret: str, region: str) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser[CREDENTIALS_PROFILE] = {
        "aws_access_key_id": access_key_id,
        "aws_secret_access_key": secret,
        "region": region,
    }
    text = io.StringIO()
    parser.write(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written privately beside the target, then renamed over it: never half a file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.getvalue().encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
