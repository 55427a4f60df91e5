"""Secrets: CreateSecret, DescribeSecret, UpdateSecret, DeleteSecret (scheduled or forced),
RestoreSecret and ListSecrets."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens
from forgeline.secretsmanager import store
from forgeline.secretsmanager.filters import checked_filters, matching_secrets
from forgeline.secretsmanager.generated import errors, shapes
from forgeline.secretsmanager.ops.members import secret_value, tag_map
from forgeline.secretsmanager.tables import Secret, SecretVersion

LIST_PAGE_SIZE = 100
RECOVERY_WINDOW_DAYS = (7, 30)
DEFAULT_RECOVERY_WINDOW_DAYS = 30


class SecretOperations:
    def create_secret(
        self, ctx: RequestContext, params: shapes.CreateSecretRequest
    ) -> shapes.CreateSecretResponse:
        name = params["Name"]
        store.check_name(name)
        for unsupported in ("AddReplicaRegions", "CrossAccountPrimaryARN", "Type"):
            if params.get(unsupported):
                raise errors.InvalidRequestException(
                    f"{unsupported} is not supported by Forgeline's Secrets Manager."
                )
        value = secret_value(params, required=False)
        tags = tag_map(params.get("Tags") or [])
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

    def describe_secret(
        self, ctx: RequestContext, params: shapes.DescribeSecretRequest
    ) -> shapes.DescribeSecretResponse:
        with session_scope(readonly=True) as session:
            secret = store.get(session, ctx.account_id, ctx.region, params["SecretId"])
            output: shapes.DescribeSecretResponse = {
                "ARN": secret.arn,
                "Name": secret.name,
                "LastChangedDate": secret.changed_at,
                "CreatedDate": secret.created_at,
            }
            _add_details(output, secret, tagging.get_tags(session, secret.arn))
            output["VersionIdsToStages"] = store.stage_map(session, secret)
            return output

    def update_secret(
        self, ctx: RequestContext, params: shapes.UpdateSecretRequest
    ) -> shapes.UpdateSecretResponse:
        value = secret_value(params, required=False)
        if params.get("Type"):
            raise errors.InvalidRequestException(
                "Type is not supported by Forgeline's Secrets Manager."
            )
        with session_scope() as session:
            secret = store.get_live(
                session, ctx.account_id, ctx.region, params["SecretId"], lock=True
            )
            if "Description" in params:
                secret.description = params["Description"]
            if "KmsKeyId" in params:
                secret.kms_key_id = params["KmsKeyId"] or None
            output: shapes.UpdateSecretResponse = {"ARN": secret.arn, "Name": secret.name}
            if value is not None:
                token = params.get("ClientRequestToken") or str(uuid.uuid4())
                version, _ = store.new_version(session, secret, token, value, [store.CURRENT])
                output["VersionId"] = version.version_id
            secret.changed_at = utcnow()
            return output

    def delete_secret(
        self, ctx: RequestContext, params: shapes.DeleteSecretRequest
    ) -> shapes.DeleteSecretResponse:
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
            if force:
                tagging.delete_all_tags(session, secret.arn)
                session.delete(secret)
                return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": now}
            if secret.deleted_at is not None:
                raise errors.InvalidRequestException(store.MARKED_FOR_DELETION_MESSAGE)
            due = now + dt.timedelta(days=window or DEFAULT_RECOVERY_WINDOW_DAYS)
            secret.deleted_at = now
            secret.deletion_due_at = due
            return {"ARN": secret.arn, "Name": secret.name, "DeletionDate": due}

    def restore_secret(
        self, ctx: RequestContext, params: shapes.RestoreSecretRequest
    ) -> shapes.RestoreSecretResponse:
        with session_scope() as session:
            secret = store.get(session, ctx.account_id, ctx.region, params["SecretId"], lock=True)
            secret.deleted_at = None
            secret.deletion_due_at = None
            return {"ARN": secret.arn, "Name": secret.name}

    def list_secrets(
        self, ctx: RequestContext, params: shapes.ListSecretsRequest
    ) -> shapes.ListSecretsResponse:
        include_deleted = params.get("IncludePlannedDeletion", False)
        filters = checked_filters(params.get("Filters") or [])
        sort_by = params.get("SortBy", "created-date")
        descending = params.get("SortOrder", "asc") == "desc"
        with session_scope(readonly=True) as session:
            rows, tags = matching_secrets(session, ctx, filters, include_deleted)

            def key(secret: Secret) -> list[str | float]:
                return [_sort_value(secret, sort_by), secret.id]

            rows.sort(key=key, reverse=descending)
            scope: dict[str, Any] = {
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
            output: shapes.ListSecretsResponse = {
                "SecretList": [_list_entry(session, secret, tags[secret.id]) for secret in page]
            }
        if token:
            output["NextToken"] = token
        return output


def _create(
    session: Session,
    ctx: RequestContext,
    params: shapes.CreateSecretRequest,
    value: str | bytes | None,
    tags: dict[str, str],
    token: str,
) -> shapes.CreateSecretResponse:
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
    output: shapes.CreateSecretResponse = {"ARN": secret.arn, "Name": secret.name}
    if value is not None:
        version, _ = store.new_version(session, secret, token, value, [store.CURRENT])
        output["VersionId"] = version.version_id
    return output


def _list_entry(session: Session, secret: Secret, tags: dict[str, str]) -> shapes.SecretListEntry:
    entry: shapes.SecretListEntry = {
        "ARN": secret.arn,
        "Name": secret.name,
        "LastChangedDate": secret.changed_at,
        "CreatedDate": secret.created_at,
        "SecretVersionsToStages": store.stage_map(session, secret),
    }
    _add_details(entry, secret, tags)
    return entry


def _add_details(
    output: shapes.SecretListEntry | shapes.DescribeSecretResponse,
    secret: Secret,
    tags: dict[str, str],
) -> None:
    """The members DescribeSecret and ListSecrets both carry when they are set."""
    if secret.description is not None:
        output["Description"] = secret.description
    if secret.kms_key_id is not None:
        output["KmsKeyId"] = secret.kms_key_id
    if secret.accessed_on is not None:
        output["LastAccessedDate"] = secret.accessed_on
    if secret.deleted_at is not None:
        output["DeletedDate"] = secret.deleted_at
    if tags:
        output["Tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]


def _sort_value(secret: Secret, sort_by: str) -> str | float:
    if sort_by == "name":
        return secret.name
    moment = {
        "created-date": secret.created_at,
        "last-changed-date": secret.changed_at,
        "last-accessed-date": secret.accessed_on,
    }[sort_by]
    return moment.timestamp() if moment is not None else 0.0
