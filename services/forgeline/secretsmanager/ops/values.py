"""Secret values and their versions: GetSecretValue, BatchGetSecretValue, PutSecretValue,
ListSecretVersionIds and UpdateSecretVersionStage.

Reads note the day of last access on the secret and the version read, in a short write
transaction after the read, and only when that day changed.
"""

from __future__ import annotations

import uuid
from typing import Any

from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens
from forgeline.secretsmanager import store
from forgeline.secretsmanager.filters import checked_filters, matching_secrets
from forgeline.secretsmanager.generated import errors, shapes
from forgeline.secretsmanager.ops.members import secret_value
from forgeline.secretsmanager.tables import Secret, SecretVersion

BATCH_PAGE_SIZE = 20
VERSIONS_PAGE_SIZE = 100


class ValueOperations:
    def get_secret_value(
        self, ctx: RequestContext, params: shapes.GetSecretValueRequest
    ) -> shapes.GetSecretValueResponse:
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

    def batch_get_secret_value(
        self, ctx: RequestContext, params: shapes.BatchGetSecretValueRequest
    ) -> shapes.BatchGetSecretValueResponse:
        ids, filters = params.get("SecretIdList"), params.get("Filters")
        if bool(ids) == bool(filters):
            raise errors.InvalidParameterException(
                "Specify either SecretIdList or Filters, but not both."
            )
        if ids and ("MaxResults" in params or "NextToken" in params):
            raise errors.InvalidParameterException(
                "MaxResults and NextToken apply only to a request with Filters."
            )
        problems: list[shapes.APIErrorType] = []
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
                rows, _ = matching_secrets(session, ctx, checked_filters(filters or []), False)
                scope: dict[str, Any] = {"filters": filters}
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
            output: shapes.BatchGetSecretValueResponse = {
                "SecretValues": [_value_entry(secret, version) for secret, version in read],
                "Errors": problems,
            }
            stale = [(s.id, v.version_id) for s, v in read if _stale_access(s, v)]
        if stale:
            _record_access(stale)
        if token:
            output["NextToken"] = token
        return output

    def put_secret_value(
        self, ctx: RequestContext, params: shapes.PutSecretValueRequest
    ) -> shapes.PutSecretValueResponse:
        if params.get("RotationToken"):
            raise errors.InvalidRequestException(
                "RotationToken is not supported by Forgeline's Secrets Manager."
            )
        value = secret_value(params, required=True)
        assert value is not None
        token = params.get("ClientRequestToken") or str(uuid.uuid4())
        stages = list(dict.fromkeys(params.get("VersionStages") or [store.CURRENT]))
        with session_scope() as session:
            secret = store.get_live(
                session, ctx.account_id, ctx.region, params["SecretId"], lock=True
            )
            version, created = store.new_version(session, secret, token, value, stages)
            if created:
                secret.changed_at = utcnow()
            return {
                "ARN": secret.arn,
                "Name": secret.name,
                "VersionId": version.version_id,
                "VersionStages": list(version.stages or []),
            }

    def list_secret_version_ids(
        self, ctx: RequestContext, params: shapes.ListSecretVersionIdsRequest
    ) -> shapes.ListSecretVersionIdsResponse:
        include_deprecated = params.get("IncludeDeprecated", False)
        with session_scope(readonly=True) as session:
            secret = store.get(session, ctx.account_id, ctx.region, params["SecretId"])
            rows = [v for v in store.versions(session, secret) if include_deprecated or v.stages]

            def key(version: SecretVersion) -> list[Any]:
                return [version.created_at.timestamp(), version.version_id]

            scope: dict[str, Any] = {
                "secret": secret.id,
                "deprecated": include_deprecated,
            }
            page, token = request_page_tokens(ctx).page(
                rows,
                key,
                scope,
                params.get("NextToken"),
                params.get("MaxResults") or VERSIONS_PAGE_SIZE,
            )
            output: shapes.ListSecretVersionIdsResponse = {
                "Versions": [_version_entry(secret, version) for version in page]
            }
        if token:
            output["NextToken"] = token
        output["ARN"] = secret.arn
        output["Name"] = secret.name
        return output

    def update_secret_version_stage(
        self, ctx: RequestContext, params: shapes.UpdateSecretVersionStageRequest
    ) -> shapes.UpdateSecretVersionStageResponse:
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


def _value_entry(secret: Secret, version: SecretVersion) -> shapes.SecretValueEntry:
    """A version's value as GetSecretValue answers it (BatchGetSecretValue's entries too)."""
    entry: shapes.SecretValueEntry = {
        "ARN": secret.arn,
        "Name": secret.name,
        "VersionId": version.version_id,
        "VersionStages": list(version.stages or []),
        "CreatedDate": version.created_at,
    }
    value = store.unseal(version)
    if isinstance(value, bytes):
        entry["SecretBinary"] = value
    else:
        entry["SecretString"] = value
    return entry


def _version_entry(secret: Secret, version: SecretVersion) -> shapes.SecretVersionsListEntry:
    entry: shapes.SecretVersionsListEntry = {
        "VersionId": version.version_id,
        "CreatedDate": version.created_at,
        "KmsKeyIds": [secret.kms_key_id or "DefaultEncryptionKey"],
    }
    if version.stages:
        entry["VersionStages"] = list(version.stages)
    if version.accessed_on is not None:
        entry["LastAccessedDate"] = version.accessed_on
    return entry


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
