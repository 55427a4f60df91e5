"""Secrets Manager: secret lookup by name or ARN, versions, staging labels, encrypted values.

Shared by the Secrets Manager API (secretsmanager/ops/) and the build engine's secret
resolution (codebuild/secret_values.py), so both read secrets by the same rules.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets as random_source
import string

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.core.auth import crypto
from forgeline.core.db import utcnow
from forgeline.core.lifecycle import server_key
from forgeline.core.settings import get_settings
from forgeline.core.tagging import TagErrors
from forgeline.secretsmanager.generated import errors
from forgeline.secretsmanager.tables import Secret, SecretVersion

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
PENDING = "AWSPENDING"
MAX_VERSIONS = 100  # beyond this, the oldest versions without a staging label are removed
MAX_STAGES_PER_VERSION = 20
ARN_SUFFIX_LENGTH = 6

TAG_ERRORS = TagErrors(
    too_many="InvalidParameterException",
    reserved_key="InvalidParameterException",
    invalid="InvalidParameterException",
)

NOT_FOUND_MESSAGE = "Secrets Manager can't find the specified secret."
MARKED_FOR_DELETION_MESSAGE = (
    "You can't perform this operation on the secret because it was marked for deletion."
)

_NAME = re.compile(r"[A-Za-z0-9/_+=.@\-]+")
_SUFFIX_ALPHABET = string.ascii_letters + string.digits


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise errors.InvalidParameterException(
            f"Invalid name {name!r}: a secret name can contain only ASCII letters, numbers "
            "and the characters /_+=.@-"
        )


def new_arn(account_id: str, region: str, name: str) -> str:
    # The random suffix makes a recreated secret's ARN differ from the deleted one's.
    suffix = "".join(random_source.choice(_SUFFIX_ALPHABET) for _ in range(ARN_SUFFIX_LENGTH))
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}-{suffix}"


def is_expired(secret: Secret, now: dt.datetime | None = None) -> bool:
    """A secret whose recovery window has passed is gone, even before its row is purged."""
    due = secret.deletion_due_at
    return due is not None and due <= (now or utcnow())


def find(
    session: Session, account_id: str, region: str, secret_id: str, *, lock: bool = False
) -> Secret | None:
    """The secret a SecretId names: its name, its full ARN, or its ARN without the suffix.

    `lock` holds the row until commit (Postgres; SQLite writers are serialized anyway), so
    concurrent writers of one secret's versions and labels take turns.
    """
    base = select(Secret).where(Secret.account_id == account_id, Secret.region == region)
    if lock:
        base = base.with_for_update()
    if secret_id.startswith("arn:"):
        prefix = f"arn:aws:secretsmanager:{region}:{account_id}:secret:"
        if not secret_id.startswith(prefix):
            return None
        row = session.scalars(base.where(Secret.arn == secret_id)).one_or_none()
        if row is None:  # a partial ARN: the name without the random suffix
            name = secret_id.removeprefix(prefix)
            row = session.scalars(base.where(Secret.name == name)).one_or_none()
    else:
        row = session.scalars(base.where(Secret.name == secret_id)).one_or_none()
    if row is None or is_expired(row):
        return None
    return row


def get(
    session: Session, account_id: str, region: str, secret_id: str, *, lock: bool = False
) -> Secret:
    secret = find(session, account_id, region, secret_id, lock=lock)
    if secret is None:
        raise errors.ResourceNotFoundException(NOT_FOUND_MESSAGE)
    return secret


def get_live(
    session: Session, account_id: str, region: str, secret_id: str, *, lock: bool = False
) -> Secret:
    """The secret, which must not be scheduled for deletion."""
    secret = get(session, account_id, region, secret_id, lock=lock)
    if secret.deleted_at is not None:
        raise errors.InvalidRequestException(MARKED_FOR_DELETION_MESSAGE)
    return secret


def versions(session: Session, secret: Secret) -> list[SecretVersion]:
    return list(
        session.scalars(
            select(SecretVersion)
            .where(SecretVersion.secret_id == secret.id)
            .order_by(SecretVersion.created_at, SecretVersion.version_id)
        )
    )


def select_version(
    session: Session, secret: Secret, version_id: str | None, stage: str | None
) -> SecretVersion:
    """The version GetSecretValue's VersionId and VersionStage pick (default AWSCURRENT)."""
    if version_id is not None:
        version = session.get(SecretVersion, (secret.id, version_id))
        if version is None:
            raise errors.ResourceNotFoundException(
                f"Secrets Manager can't find the specified secret value for VersionId: {version_id}"
            )
        if stage is not None and stage not in (version.stages or []):
            raise errors.InvalidRequestException(
                "You provided a VersionStage that is not associated to the provided VersionId."
            )
        return version
    wanted = stage or CURRENT
    for version in versions(session, secret):
        if wanted in (version.stages or []):
            return version
    raise errors.ResourceNotFoundException(
        f"Secrets Manager can't find the specified secret value for staging label: {wanted}"
    )


# -- values ----------------------------------------------------------------------------------
def _key() -> bytes:
    return server_key(get_settings())


def seal(value: str | bytes) -> tuple[str, str]:
    """(kind, ciphertext) for a SecretString (str) or SecretBinary (bytes)."""
    if isinstance(value, bytes):
        return "binary", crypto.encrypt(_key(), base64.b64encode(value).decode("ascii"))
    return "string", crypto.encrypt(_key(), value)


def unseal(version: SecretVersion) -> str | bytes:
    plain = crypto.decrypt(_key(), version.value_encrypted)
    return base64.b64decode(plain) if version.value_kind == "binary" else plain


def same_value(version: SecretVersion, value: str | bytes) -> bool:
    return unseal(version) == value


def new_version(
    session: Session, secret: Secret, token: str, value: str | bytes, stages: list[str]
) -> tuple[SecretVersion, bool]:
    """The version `token` names, created with `value` and given `stages` unless a retry
    already made it; and whether it was created now."""
    existing = session.get(SecretVersion, (secret.id, token))
    if existing is not None:
        if not same_value(existing, value):
            raise errors.ResourceExistsException(
                "You can't modify an existing version, you can only create a new version."
            )
        return existing, False
    kind, sealed = seal(value)
    version = SecretVersion(
        secret_id=secret.id,
        version_id=token,
        value_kind=kind,
        value_encrypted=sealed,
        stages=[],
        created_at=utcnow(),
    )
    session.add(version)
    session.flush()
    attach_stages(session, secret, version, stages)
    prune_versions(session, secret)
    session.flush()
    return version, True


# -- staging labels --------------------------------------------------------------------------
def attach_stages(
    session: Session, secret: Secret, target: SecretVersion, stages: list[str]
) -> None:
    """Move each label in `stages` to `target`; the version losing AWSCURRENT gets AWSPREVIOUS."""
    others = [v for v in versions(session, secret) if v.version_id != target.version_id]
    for stage in stages:
        losing = [other for other in others if stage in (other.stages or [])]
        for other in losing:
            other.stages = [s for s in other.stages if s != stage]
        if stage == CURRENT and losing:
            for version in [*others, target]:
                version.stages = [s for s in version.stages or [] if s != PREVIOUS]
            for other in losing:
                other.stages = [*other.stages, PREVIOUS]
        if stage not in (target.stages or []):
            target.stages = [*(target.stages or []), stage]
    if len(target.stages) > MAX_STAGES_PER_VERSION:
        raise errors.LimitExceededException(
            f"A version can have at most {MAX_STAGES_PER_VERSION} staging labels."
        )


def prune_versions(session: Session, secret: Secret) -> None:
    """Drop the oldest versions without a staging label once there are more than AWS keeps."""
    every = versions(session, secret)
    excess = len(every) - MAX_VERSIONS
    for version in every:
        if excess <= 0:
            break
        if not version.stages:
            session.delete(version)
            excess -= 1


def stage_map(session: Session, secret: Secret) -> dict[str, list[str]]:
    """VersionIdsToStages: only versions with a label (the rest are deprecated)."""
    return {v.version_id: list(v.stages) for v in versions(session, secret) if v.stages}


def day_of(moment: dt.datetime) -> dt.datetime:
    """Secrets Manager records last access to the day."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)
