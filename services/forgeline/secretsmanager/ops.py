"""Secrets Manager, the subset builds use: secrets, their versions and staging labels,
scheduled deletion and restore, tags. Every other operation answers 501."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens
from forgeline.secretsmanager import store as store
from forgeline.secretsmanager.generated import errors
from forgeline.secretsmanager.generated.api import SecretsManagerApi
from forgeline.secretsmanager.tables import Secret, SecretVersion

LIST_PAGE_SIZE = 100
BATCH_PAGE_SIZE = 20
RECOVERY_WINDOW_DAYS = (7, 30)
DEFAULT_RECOVERY_WINDOW_DAYS = 30


class SecretsManagerOperations:
    # -- secrets ---------------------------------------------------------------------------
    def create_secret(self, ctx: RequestContext, params: Any) -> Any:
        name = params["Name"]
        store.check_name(name)
        for unsupported in ("AddReplicaRegions", "CrossAccountPrimaryARN", "Type"):
            if params.get(unsupported):
                raise errors.InvalidRequestException(
                    f"{unsupported} is not supported by Forgeline's Secrets Manager."
                )
        value = _value(params, required=False)
        tags = _tags(params.get("Tags") or [])
        tagging.validate_tags(tags, store.TAG_ERRORS)
        token = params.get("ClientRequestToken") or str(uuid.uuid4())
        try:
            with session_scope() as session:
                return _create(session, ctx, params, value, tags, token)
        except IntegrityError:
            # A concurrent create of the same name won.
            raise errors.ResourceExistsException(
                f"The operation failed because the secret {name} already exists."
            ) from None

    def describe_secret(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope(readonly=True) as session:
            secret = store.get(session, ctx.account_id, ctx.region, params["SecretId"])
            output = _summary(session, secret)
            output["VersionIdsToStages"] = output.pop("SecretVersionsToStages")
            return output

    def update_secret(self, ctx: RequestContext, params: Any) -> Any:
        value = _value(params, required=False)
        for unsupported in ("Type",):
            if params.get(unsupported):
                raise errors.InvalidRequestException(
                    f"{unsupported} is not supported by Forgeline's Secrets Manager."
                )
        with session_scope() as session:
            secret = store.get_live(
                session, ctx.account_id, ctx.region, params["SecretId"], lock=True
            )
            if "Description" in params:
                secret.description = params["Description"]
            if "KmsKeyId" in params:
                secret.kms_key_id = params["KmsKeyId"] or None
            output: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
            if value is not None:
                token = params.get("ClientRequestToken") or str(uuid.uuid4())
                version, _ = _new_version(session, secret, token, value, [store.CURRENT])
                output["VersionId"] = version.version_id
            secret.changed_at = utcnow()
            return output

    def delete_secret(self, ctx: RequestContext, params: Any) -> Any:
        force = params.get("ForceDeleteWithoutRecovery", False)
        window = params.get("RecoveryWindowInDays")
        if force and window is not None:
            raise errors.InvalidParameterException(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
            )
        if window is not None and not RECOVERY_WINDOW_DAYS[0] <= window <= RECOVERY_WINDOW_DAYS[1]:
            raise errors.InvalidParameterException(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
            )
        with session_scope() as session:
            secret = store.get(session, ctx.account_id, ctx.region, params["SecretId"], lock=True)
            now = utcnow()
            output = {"ARN": secret.arn, "Name": secret.name}
            if force:
                tagging.delete_all_tags(session, secret.arn)
                session.delete(secret)
                return {**output, "DeletionDate": now}
            if secret.deleted_at is not None:
                raise errors.InvalidRequestException(store.MARKED_FOR_DELETION_MESSAGE)
            secret.deleted_at = now
            secret.deletion_due_at = now + dt.timedelta(days=window or DEFAULT_RECOVERY_WINDOW_DAYS)
            return {**output, "DeletionDate": secret.deletion_due_at}

    def restore_secret(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            secret = store.get(session, ctx.account_id, ctx.region, params["SecretId"], lock=True)
            secret.deleted_at = None
            secret.deletion_due_at = None
            return {"ARN": secret.arn, "Name": secret.name}

    def list_secrets(self, ctx: RequestContext, params: Any) -> Any:
        include_deleted = params.get("IncludePlannedDeletion", False)
        filters = _checked_filters(params.get("Filters") or [])
        sort_by = params.get("SortBy", "created-date")
        descending = params.get("SortOrder", "asc") == "desc"
        with session_scope(readonly=True) as session:
            rows, tags = _matching_secrets(session, ctx, filters, include_deleted)

            def key(secret: Secret) -> list[Any]:
                return [_sort_value(secret, sort_by), secret.id]

            rows.sort(key=key, reverse=descending)
            scope = {
                "filters": filters,
                "sort": [sort_by, descending],
                "deleted": include_deleted,
            }
            page, token = request_page_tokens(ctx).page(
                rows,
                key,
                scope,
                params.get("NextToken"),
                params.get("MaxResults") or LIST_PAGE_SIZE,
                descending,
            )
            entries = [_summary(session, secret, tags[secret.id]) for secret in page]
        return {"SecretList": entries, "NextToken": token}

    # -- values ----------------------------------------------------------------------------
    def get_secret_value(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope(readonly=True) as session:
            secret = store.get_live(session, ctx.account_id, ctx.region, params["SecretId"])
            version = store.select_version(
                session, secret, params.get("VersionId"), params.get("VersionStage")
            )
            output = _value_entry(secret, version)
            stale = _stale_access(secret, version)
        if stale:
            _record_access([(secret.id, version.version_id)])
        return output

    def batch_get_secret_value(self, ctx: RequestContext, params: Any) -> Any:
        ids, filters = params.get("SecretIdList"), params.get("Filters")
        if bool(ids) == bool(filters):
            raise errors.InvalidParameterException(
                "Specify either SecretIdList or Filters, but not both."
            )
        if ids and ("MaxResults" in params or "NextToken" in params):
            raise errors.InvalidParameterException(
                "MaxResults and NextToken apply only to a request with Filters."
            )
        entries: list[dict[str, Any]] = []
        problems: list[dict[str, str]] = []
        token = None
        read: list[tuple[Secret, SecretVersion]] = []
        with session_scope(readonly=True) as session:
            if ids:
                for secret_id in dict.fromkeys(ids):
                    try:
                        secret = store.get_live(session, ctx.account_id, ctx.region, secret_id)
                        read.append((secret, store.select_version(session, secret, None, None)))
                    except (
                        errors.ResourceNotFoundException,
                        errors.InvalidRequestException,
                    ) as exc:
                        problems.append(
                            {"SecretId": secret_id, "ErrorCode": exc.code, "Message": exc.message}
                        )
            else:
                rows, _ = _matching_secrets(session, ctx, _checked_filters(filters), False)
                scope = {
                    "filters": filters,
                }
                page, token = request_page_tokens(ctx).page(
                    sorted(rows, key=lambda secret: secret.name),
                    lambda secret: secret.name,
                    scope,
                    params.get("NextToken"),
                    params.get("MaxResults") or BATCH_PAGE_SIZE,
                )
                for secret in page:
                    try:
                        read.append((secret, store.select_version(session, secret, None, None)))
                    except errors.ResourceNotFoundException as exc:  # a secret without a value
                        problems.append(
                            {"SecretId": secret.arn, "ErrorCode": exc.code, "Message": exc.message}
                        )
            entries = [_value_entry(secret, version) for secret, version in read]
            stale = [(s.id, v.version_id) for s, v in read if _stale_access(s, v)]
        if stale:
            _record_access(stale)
        return {"SecretValues": entries, "Errors": problems, "NextToken": token}

    def put_secret_value(self, ctx: RequestContext, params: Any) -> Any:
        if params.get("RotationToken"):
            raise errors.InvalidRequestException(
                "RotationToken is not supported by Forgeline's Secrets Manager."
            )
        value = _value(params, required=True)
        assert value is not None
        token = params.get("ClientRequestToken") or str(uuid.uuid4())
        stages = list(dict.fromkeys(params.get("VersionStages") or [store.CURRENT]))
        with session_scope() as session:
            secret = store.get_live(
                session, ctx.account_id, ctx.region, params["SecretId"], lock=True
            )
            version, created = _new_version(session, secret, token, value, stages)
            if created:
                secret.changed_at = utcnow()
            return {
                "ARN": secret.arn,
                "Name": secret.name,
                "VersionId": version.version_id,
                "VersionStages": list(version.stages or []),
            }

    def list_secret_version_ids(self, ctx: RequestContext, params: Any) -> Any:
        include_deprecated = params.get("IncludeDeprecated", False)
        with session_scope(readonly=True) as session:
            secret = store.get(session, ctx.account_id, ctx.region, params["SecretId"])
            rows = [v for v in store.versions(session, secret) if include_deprecated or v.stages]

            def key(version: SecretVersion) -> list[Any]:
                return [version.created_at.timestamp(), version.version_id]

            scope = {
                "secret": secret.id,
                "deprecated": include_deprecated,
            }
            page, token = request_page_tokens(ctx).page(
                rows, key, scope, params.get("NextToken"), params.get("MaxResults") or 100
            )
            entries = []
            for version in page:
                entry: dict[str, Any] = {
                    "VersionId": version.version_id,
                    "CreatedDate": version.created_at,
                    "KmsKeyIds": [secret.kms_key_id or "DefaultEncryptionKey"],
                }
                if version.stages:
                    entry["VersionStages"] = list(version.stages)
                if version.accessed_on is not None:
                    entry["LastAccessedDate"] = version.accessed_on
                entries.append(entry)
        return {"Versions": entries, "NextToken": token, "ARN": secret.arn, "Name": secret.name}

    def update_secret_version_stage(self, ctx: RequestContext, params: Any) -> Any:
        stage = params["VersionStage"]
        remove_from, move_to = params.get("RemoveFromVersionId"), params.get("MoveToVersionId")
        with session_scope() as session:
            secret = store.get_live(
                session, ctx.account_id, ctx.region, params["SecretId"], lock=True
            )
            every = {v.version_id: v for v in store.versions(session, secret)}
            for version_id in (remove_from, move_to):
                if version_id is not None and version_id not in every:
                    raise errors.ResourceNotFoundException(
                        f"Secrets Manager can't find the specified secret value for VersionId: {version_id}"
                    )
            holder = next((v for v in every.values() if stage in (v.stages or [])), None)
            if (
                holder is not None
                and holder.version_id != remove_from
                and holder.version_id != move_to
            ):
                raise errors.InvalidParameterException(
                    f"The staging label {stage} is currently attached to version "
                    f"{holder.version_id}, so you must explicitly reference that version in "
                    "RemoveFromVersionId."
                )
            if remove_from is not None and (holder is None or holder.version_id != remove_from):
                raise errors.InvalidParameterException(
                    f"The staging label {stage} is not attached to version {remove_from}."
                )
            if move_to is not None:
                store.attach_stages(session, secret, every[move_to], [stage])
            elif remove_from is not None:
                if stage == store.CURRENT:
                    raise errors.InvalidParameterException(
                        "You can't remove the staging label AWSCURRENT from a version without "
                        "moving it to another version (MoveToVersionId)."
                    )
                every[remove_from].stages = [s for s in every[remove_from].stages if s != stage]
            secret.changed_at = utcnow()
            return {"ARN": secret.arn, "Name": secret.name}

    # -- tags --------------------------------------------------------------------------------
    def tag_resource(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            secret = store.get_live(
                session, ctx.account_id, ctx.region, params["SecretId"], lock=True
            )
            tagging.put_tags(
                session, ctx.account_id, secret.arn, _tags(params["Tags"]), store.TAG_ERRORS
            )
        return {}

    def untag_resource(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            secret = store.get_live(
                session, ctx.account_id, ctx.region, params["SecretId"], lock=True
            )
            tagging.remove_tags(session, secret.arn, params["TagKeys"], store.TAG_ERRORS)
        return {}


class SecretsManagerProvider(SecretsManagerOperations, SecretsManagerApi):
    """Secrets Manager as Forgeline serves it."""


# -- helpers -----------------------------------------------------------------------------------
def _value(params: Any, *, required: bool) -> str | bytes | None:
    has_string, has_binary = "SecretString" in params, "SecretBinary" in params
    if has_string and has_binary:
        raise errors.InvalidParameterException(
            "You can't specify both a binary secret value and a string secret value in the "
            "same secret."
        )
    if required and not (has_string or has_binary):
        raise errors.InvalidRequestException(
            "You must provide either SecretString or SecretBinary."
        )
    if has_binary:
        return bytes(params["SecretBinary"])
    return params.get("SecretString")


def _tags(raw: list[dict[str, str]]) -> dict[str, str]:
    for tag in raw:
        if "Key" not in tag or "Value" not in tag:
            raise errors.InvalidParameterException("Each tag needs a Key and a Value.")
    return {tag["Key"]: tag["Value"] for tag in raw}


def _create(
    session: Session,
    ctx: RequestContext,
    params: Any,
    value: str | bytes | None,
    tags: dict[str, str],
    token: str,
) -> dict[str, Any]:
    name = params["Name"]
    existing = session.scalars(
        select(Secret).where(
            Secret.account_id == ctx.account_id, Secret.region == ctx.region, Secret.name == name
        )
    ).one_or_none()
    if existing is not None and store.is_expired(existing):
        tagging.delete_all_tags(session, existing.arn)
        session.delete(existing)
        session.flush()
        existing = None
    if existing is not None:
        if existing.deleted_at is not None:
            raise errors.InvalidRequestException(
                "You can't create this secret because a secret with this name is already "
                "scheduled for deletion."
            )
        # A retried create (same token, same value) answers as the first one did.
        replay = session.get(SecretVersion, (existing.id, token))
        if replay is not None and value is not None and store.same_value(replay, value):
            return {"ARN": existing.arn, "Name": existing.name, "VersionId": token}
        raise errors.ResourceExistsException(
            f"The operation failed because the secret {name} already exists."
        )
    now = utcnow()
    secret = Secret(
        id=str(uuid.uuid4()),
        account_id=ctx.account_id,
        region=ctx.region,
        name=name,
        arn=store.new_arn(ctx.account_id, ctx.region, name),
        description=params.get("Description"),
        kms_key_id=params.get("KmsKeyId") or None,
        created_at=now,
        changed_at=now,
    )
    session.add(secret)
    session.flush()
    if tags:
        tagging.put_tags(session, ctx.account_id, secret.arn, tags, store.TAG_ERRORS)
    output: dict[str, Any] = {"ARN": secret.arn, "Name": secret.name}
    if value is not None:
        version, _ = _new_version(session, secret, token, value, [store.CURRENT])
        output["VersionId"] = version.version_id
    return output


def _new_version(
    session: Session, secret: Secret, token: str, value: str | bytes, stages: list[str]
) -> tuple[SecretVersion, bool]:
    """The version `token` names, created with `value` unless a retry already made it."""
    existing = session.get(SecretVersion, (secret.id, token))
    if existing is not None:
        if not store.same_value(existing, value):
            raise errors.ResourceExistsException(
                "You can't modify an existing version, you can only create a new version."
            )
        return existing, False
    kind, sealed = store.seal(value)
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
    store.attach_stages(session, secret, version, stages)
    store.prune_versions(session, secret)
    session.flush()
    return version, True


def _value_entry(secret: Secret, version: SecretVersion) -> dict[str, Any]:
    value = store.unseal(version)
    return {
        "ARN": secret.arn,
        "Name": secret.name,
        "VersionId": version.version_id,
        "VersionStages": list(version.stages or []),
        "CreatedDate": version.created_at,
        "SecretBinary" if isinstance(value, bytes) else "SecretString": value,
    }


def _stale_access(secret: Secret, version: SecretVersion) -> bool:
    today = store.day_of(utcnow())
    return secret.accessed_on != today or version.accessed_on != today


def _record_access(reads: list[tuple[str, str]]) -> None:
    """Note today as the last access of each (secret id, version id) read."""
    today = store.day_of(utcnow())
    with session_scope() as session:
        for secret_id, version_id in reads:
            secret = session.get(Secret, secret_id)
            version = session.get(SecretVersion, (secret_id, version_id))
            if secret is not None:
                secret.accessed_on = today
            if version is not None:
                version.accessed_on = today


def _checked_filters(filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in filters:
        if "Key" not in item or not item.get("Values"):
            raise errors.InvalidParameterException(
                "Each filter needs a Key and at least one value."
            )
    return filters


def _matching_secrets(
    session: Session,
    ctx: RequestContext,
    filters: list[dict[str, Any]],
    include_deleted: bool,
) -> tuple[list[Secret], dict[str, dict[str, str]]]:
    """The account's secrets that pass every filter, and each one's tags (by secret id)."""
    now = utcnow()
    rows = [
        secret
        for secret in session.scalars(
            select(Secret).where(Secret.account_id == ctx.account_id, Secret.region == ctx.region)
        )
        if not store.is_expired(secret, now) and (include_deleted or secret.deleted_at is None)
    ]
    tags = {secret.id: tagging.get_tags(session, secret.arn) for secret in rows}
    rows = [s for s in rows if all(_filter_accepts(f, s, tags[s.id]) for f in filters)]
    return rows, tags


def _summary(
    session: Session, secret: Secret, tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """The fields DescribeSecret and ListSecrets share (ListSecrets' names)."""
    tags = tagging.get_tags(session, secret.arn) if tags is None else tags
    output: dict[str, Any] = {
        "ARN": secret.arn,
        "Name": secret.name,
        "LastChangedDate": secret.changed_at,
        "CreatedDate": secret.created_at,
        "SecretVersionsToStages": store.stage_map(session, secret),
    }
    optional = {
        "Description": secret.description,
        "KmsKeyId": secret.kms_key_id,
        "LastAccessedDate": secret.accessed_on,
        "DeletedDate": secret.deleted_at,
    }
    output.update({key: value for key, value in optional.items() if value is not None})
    if tags:
        output["Tags"] = tagging.tag_list(tags, "Key", "Value")
    return output


def _sort_value(secret: Secret, sort_by: str) -> Any:
    if sort_by == "name":
        return secret.name
    moment = {
        "created-date": secret.created_at,
        "last-changed-date": secret.changed_at,
        "last-accessed-date": secret.accessed_on,
    }[sort_by]
    return moment.timestamp() if moment is not None else 0.0


_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _words(text: str) -> list[str]:
    """Split as the console search does: at case changes, letter/digit changes, punctuation."""
    return [word.lower() for word in _WORD.findall(text)]


def _filter_accepts(item: dict[str, Any], secret: Secret, tags: dict[str, str]) -> bool:
    """One ListSecrets filter: any of its values matches (a value starting '!' negates)."""
    key = item["Key"]
    for raw in item["Values"]:
        negate = raw.startswith("!")
        value = raw[1:] if negate else raw
        if _value_matches(key, value, secret, tags) != negate:
            return True
    return False


def _value_matches(key: str, value: str, secret: Secret, tags: dict[str, str]) -> bool:
    if key == "name":
        return secret.name.startswith(value)
    if key == "description":
        return (secret.description or "").lower().startswith(value.lower())
    if key == "tag-key":
        return any(tag.startswith(value) for tag in tags)
    if key == "tag-value":
        return any(tag_value.startswith(value) for tag_value in tags.values())
    if key == "all":
        haystack = _words(" ".join([secret.name, secret.description or "", *tags, *tags.values()]))
        return any(any(word.startswith(needle) for word in haystack) for needle in _words(value))
    return False  # primary-region, owning-service: no secret here is replicated or service-owned
