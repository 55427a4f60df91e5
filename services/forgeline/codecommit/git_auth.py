"""Who is this git client: HTTP Basic credentials checked as CodeCommit checks them.

Two kinds of credentials are accepted, as on AWS:

* SigV4-derived passwords, made by git-remote-codecommit and by `aws codecommit
  credential-helper`: user = access key id (or `AKID%SESSIONTOKEN`), password =
  `<YYYYmmddTHHMMSS>Z<signature>` over the repository path and host. They expire after
  15 minutes and do not name their region, so every region served is tried.
* HTTPS git credentials (AWS's "service-specific credentials"): a generated user name
  `<user>-at-<account>` and password, created with `forgeline git-credentials create`
  and stored only as a salted scrypt hash.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import hmac
import re
import secrets
import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codecommit.tables.git_credentials import CREDENTIAL_ACTIVE, GitCredential
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core import identity
from forgeline.core.auth import keys, sigv4
from forgeline.core.auth.tables import Account
from forgeline.core.settings import Settings

REALM = "Forgeline CodeCommit"
MAX_CREDENTIALS_PER_USER = 2  # AWS allows two service-specific credentials per user and service
_USER_NAME_RE = re.compile(r"[\w+=,.@-]{1,64}")
_SIGV4_PASSWORD_RE = re.compile(r"\d{8}T\d{6}Z[0-9a-f]{64}")
_HOST_REGION_RE = re.compile(r"git-codecommit(?:-fips)?\.([a-z0-9-]+)\.")
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_VERIFIED_TTL = 300.0  # seconds a checked password skips scrypt (the row is still read)


class GitAuthError(Exception):
    """The request carries no credentials, or ones that are not valid (HTTP 401)."""


@dataclasses.dataclass(frozen=True)
class GitIdentity:
    account_id: str
    principal_arn: str
    # The region the password was signed for; None when the credential names none, and
    # the repository is then looked up in every region (the default region first).
    region: str | None
    access_key_id: str | None = None


# --- the Authorization header --------------------------------------------------------------


def parse_basic(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic Authorization header, None if there is none."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return None
    return user, password


def authenticate(
    session: Session,
    settings: Settings,
    authorization: str | None,
    *,
    repo_path: str,
    host: str,
    repository_name: str,
) -> GitIdentity:
    """The identity behind the request's Basic credentials; GitAuthError if there is none."""
    credentials = parse_basic(authorization)
    if credentials is None:
        raise GitAuthError("Authentication required.")
    user, password = credentials
    if _SIGV4_PASSWORD_RE.fullmatch(password):
        return _sigv4_identity(session, settings, user, password, repo_path, host, repository_name)
    return _service_credential_identity(session, user, password, host)


def _sigv4_identity(
    session: Session,
    settings: Settings,
    user: str,
    password: str,
    repo_path: str,
    host: str,
    repository_name: str,
) -> GitIdentity:
    access_key_id, token = sigv4.split_git_username(user)
    if token is not None and not identity.session_token_accepted(settings):
        raise GitAuthError("The security token included in the request is invalid.")
    from forgeline.core.lifecycle import server_key

    record = keys.lookup_secret(session, access_key_id, server_key(settings))
    if record is None:
        if settings.auth == "permissive" and _fresh(password):
            return GitIdentity(
                account_id=settings.default_account,
                principal_arn=keys.principal_arn(settings.default_account, keys.ROOT_USER),
                region=None,
                access_key_id=access_key_id,
            )
        raise GitAuthError("The access key id is not recognized.")
    regions = _candidate_regions(session, settings, record.account_id, repository_name)
    paths = dict.fromkeys([repo_path, f"/v1/repos/{repository_name}"])
    for path in paths:
        region = sigv4.verify_git_password(record.secret_access_key, password, path, host, regions)
        if region is not None:
            return GitIdentity(
                account_id=record.account_id,
                principal_arn=record.principal_arn,
                region=region,
                access_key_id=access_key_id,
            )
    raise GitAuthError("The password is not valid for this repository, or it has expired.")


def _fresh(password: str) -> bool:
    try:
        sigv4.check_clock_skew(password[:16])
    except (sigv4.RequestExpired, sigv4.IncompleteSignature):
        return False
    return True


@functools.lru_cache(maxsize=8)
def _served_regions(configured: str, default_region: str) -> tuple[str, ...]:
    if configured.strip():
        names = [name.strip() for name in configured.split(",") if name.strip()]
    else:
        import botocore.session

        botocore_session = botocore.session.get_session()
        names = [
            region
            for partition in botocore_session.get_available_partitions()
            for region in botocore_session.get_available_regions("codecommit", partition)
        ]
    return tuple(dict.fromkeys([default_region, *names]))


def served_regions(settings: Settings) -> tuple[str, ...]:
    return _served_regions(settings.git_regions, settings.default_region)


def _candidate_regions(
    session: Session, settings: Settings, account_id: str, repository_name: str
) -> list[str]:
    # Regions where this account keeps a repository of that name count even when the
    # operator's region list misses them.
    owned = session.scalars(
        select(Repository.region).where(
            Repository.account_id == account_id, Repository.name == repository_name
        )
    )
    return list(dict.fromkeys([*owned, *served_regions(settings)]))


def region_hint(host: str) -> str | None:
    """The region in an AWS-style git host name (git-codecommit.<region>.amazonaws.com)."""
    match = _HOST_REGION_RE.match(host.lower())
    return match.group(1) if match else None


# --- HTTPS git credentials -----------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(
        [
            "scrypt",
            str(_SCRYPT_N),
            str(_SCRYPT_R),
            str(_SCRYPT_P),
            base64.b64encode(salt).decode("ascii"),
            base64.b64encode(digest).decode("ascii"),
        ]
    )


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(expected, actual)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=64 * 1024 * 1024
    )


class _VerifiedPasswords:
    """Recently checked (user, password) pairs, so each git request does not pay scrypt.

    Holds a keyed fingerprint, never the password, and the hash it was checked against:
    a deleted or re-issued credential stops matching at once because the row is re-read.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[str, float]] = {}

    def _fingerprint(self, user: str, password: str) -> str:
        return hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).hexdigest()

    def matches(self, user: str, password: str, stored_hash: str) -> bool:
        with self._lock:
            entry = self._entries.get(self._fingerprint(user, password))
        return entry is not None and entry[0] == stored_hash and entry[1] > time.monotonic()

    def remember(self, user: str, password: str, stored_hash: str) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[self._fingerprint(user, password)] = (
                stored_hash,
                time.monotonic() + _VERIFIED_TTL,
            )


_verified = _VerifiedPasswords()


def _service_credential_identity(
    session: Session, user: str, password: str, host: str
) -> GitIdentity:
    credential = session.scalars(
        select(GitCredential).where(
            GitCredential.service_user_name == user, GitCredential.status == CREDENTIAL_ACTIVE
        )
    ).first()
    if credential is None:
        raise GitAuthError("The user name or password is not valid.")
    stored = credential.password_hash
    if not _verified.matches(user, password, stored):
        if not check_password(password, stored):
            raise GitAuthError("The user name or password is not valid.")
        _verified.remember(user, password, stored)
    return GitIdentity(
        account_id=credential.account_id,
        principal_arn=keys.principal_arn(credential.account_id, credential.user_name),
        region=region_hint(host),
    )


def _new_credential_id() -> str:
    # Shaped like AWS's ServiceSpecificCredentialId: "ACCA" and 17 upper-case characters.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "ACCA" + "".join(secrets.choice(alphabet) for _ in range(17))


def _service_user_name(session: Session, account_id: str, user_name: str) -> str:
    taken = set(
        session.scalars(
            select(GitCredential.service_user_name).where(
                GitCredential.account_id == account_id, GitCredential.user_name == user_name
            )
        )
    )
    for index in range(MAX_CREDENTIALS_PER_USER):
        suffix = "" if index == 0 else f"+{index}"
        candidate = f"{user_name}{suffix}-at-{account_id}"
        if candidate not in taken:
            return candidate
    raise ValueError(
        f"user {user_name} already has {MAX_CREDENTIALS_PER_USER} git credentials; delete one first"
    )


def create_credential(
    session: Session, account_id: str, user_name: str
) -> tuple[GitCredential, str]:
    """A new credential for `user_name` in the account; returns it and its password.

    The password is returned only here: the database keeps its hash.
    """
    if not _USER_NAME_RE.fullmatch(user_name):
        raise ValueError(f"{user_name!r} is not a valid user name (1-64 of [A-Za-z0-9+=,.@_-])")
    if session.get(Account, account_id) is None:
        raise keys.AccountNotFound(f"account {account_id} does not exist")
    password = secrets.token_urlsafe(33)  # 44 characters, like AWS's generated passwords
    credential = GitCredential(
        id=_new_credential_id(),
        account_id=account_id,
        user_name=user_name,
        service_user_name=_service_user_name(session, account_id, user_name),
        password_hash=hash_password(password),
        status=CREDENTIAL_ACTIVE,
    )
    session.add(credential)
    session.flush()
    return credential, password


def list_credentials(
    session: Session, account_id: str | None = None, user_name: str | None = None
) -> list[GitCredential]:
    query = select(GitCredential).order_by(GitCredential.created_at, GitCredential.id)
    if account_id is not None:
        query = query.where(GitCredential.account_id == account_id)
    if user_name is not None:
        query = query.where(GitCredential.user_name == user_name)
    return list(session.scalars(query))


def delete_credentials(
    session: Session, account_id: str, user_name: str, credential_id: str | None = None
) -> list[str]:
    """Delete one credential of the user (or all of them); returns the ids deleted."""
    doomed = [
        credential
        for credential in list_credentials(session, account_id, user_name)
        if credential_id is None or credential.id == credential_id
    ]
    for credential in doomed:
        session.delete(credential)
    session.flush()
    return [credential.id for credential in doomed]
