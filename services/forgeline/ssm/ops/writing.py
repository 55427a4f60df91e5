"""Writing parameters: PutParameter (a new parameter or a new version of one),
DeleteParameter and DeleteParameters."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.ssm import parameters as store
from forgeline.ssm.generated import errors, shapes
from forgeline.ssm.tables import SsmParameter, SsmParameterVersion

_WRITE_ATTEMPTS = 3  # concurrent first puts of one name collide on the unique name; retry


class WriteOperations:
    def put_parameter(
        self, ctx: RequestContext, params: shapes.PutParameterRequest
    ) -> shapes.PutParameterResult:
        store.check_name(ctx.account_id, ctx.region, params["Name"])
        if params["Value"] == "":
            raise errors.ValidationException("Parameter value must not be empty.")
        if params.get("Policies"):
            raise errors.InvalidPolicyTypeException(
                "Parameter policies (Expiration, ExpirationNotification, NoChangeNotification) "
                "are not supported by Forgeline."
            )
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                with session_scope() as session:
                    return _put(session, ctx, params)
            except IntegrityError:
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise errors.TooManyUpdates(
                        "There are concurrent updates for the resource that you're trying "
                        "to update. Retry the request."
                    ) from None
        raise AssertionError("unreachable")

    def delete_parameter(
        self, ctx: RequestContext, params: shapes.DeleteParameterRequest
    ) -> shapes.DeleteParameterResult:
        with session_scope() as session:
            if not _delete(session, ctx, params["Name"]):
                raise store.not_found(params["Name"])
        return {}

    def delete_parameters(
        self, ctx: RequestContext, params: shapes.DeleteParametersRequest
    ) -> shapes.DeleteParametersResult:
        deleted: list[str] = []
        invalid: list[str] = []
        with session_scope() as session:
            for name in params["Names"]:
                (deleted if _delete(session, ctx, name) else invalid).append(name)
        return {"DeletedParameters": deleted, "InvalidParameters": invalid}


def _put(
    session: Session, ctx: RequestContext, params: shapes.PutParameterRequest
) -> shapes.PutParameterResult:
    name, value = params["Name"], params["Value"]
    parameter = store.find(session, ctx.account_id, ctx.region, (name,), lock=True)
    overwrite = params.get("Overwrite", False)
    tags = {tag["Key"]: tag["Value"] for tag in params.get("Tags") or []}
    if parameter is not None and tags and overwrite:
        raise errors.ValidationException(
            "Invalid request: tags and overwrite can't be used together. To create a parameter "
            "with tags, remove the overwrite flag. To update the tags of an existing parameter, "
            "use AddTagsToResource or RemoveTagsFromResource."
        )
    if parameter is not None and not overwrite:
        raise errors.ParameterAlreadyExists(
            "The parameter already exists. To overwrite this value, set the overwrite option "
            "in the request to true."
        )
    previous = store.version_row(session, parameter, parameter.version) if parameter else None

    kind = params.get("Type") or (previous.type if previous else None)
    if kind is None:
        raise errors.ValidationException(
            "A parameter type is required when you create a parameter."
        )
    tier = _tier(params.get("Tier"), previous, value)
    if len(value) > store.MAX_VALUE_LENGTH[tier]:
        raise errors.ValidationException(
            f"{tier} tier parameters support a maximum parameter value of "
            f"{store.MAX_VALUE_LENGTH[tier]} characters; this value has {len(value)}."
            + (" To store a larger value, use the Advanced tier." if tier == "Standard" else "")
        )
    key_id = params.get("KeyId")
    if key_id and kind != "SecureString":
        raise errors.ValidationException(
            f"KeyId applies to SecureString parameters only; this parameter's type is {kind}."
        )
    if kind == "SecureString" and not key_id:
        keep = previous is not None and previous.type == "SecureString"
        key_id = previous.key_id if keep and previous else store.DEFAULT_SECURE_KEY_ID
    # Attributes a request leaves out carry over from the version it replaces.
    description = (
        params["Description"]
        if "Description" in params
        else (previous.description if previous else None)
    )
    pattern = (
        params["AllowedPattern"]
        if "AllowedPattern" in params
        else (previous.allowed_pattern if previous else None)
    )
    _check_pattern(pattern, value)
    data_type = params.get("DataType") or (previous.data_type if previous else "text")
    store.check_data_type(data_type, value)

    if parameter is None:
        _check_parameter_count(session, ctx)
        parameter = store.new_parameter(ctx.account_id, ctx.region, name)
        session.add(parameter)
        session.flush()
        if tags:
            tagging.put_tags(
                session, ctx.account_id, store.arn_of(parameter), tags, store.PUT_TAG_ERRORS
            )
    store.add_version(
        session,
        parameter,
        SsmParameterVersion(
            type=kind,
            value_encrypted=store.seal(value),
            description=description or None,
            allowed_pattern=pattern or None,
            key_id=key_id,
            tier=tier,
            data_type=data_type,
            labels=[],
            modified_at=utcnow(),
            modified_by=ctx.principal_arn,
        ),
    )
    session.flush()
    return {"Version": parameter.version, "Tier": tier}


def _check_parameter_count(session: Session, ctx: RequestContext) -> None:
    count = session.scalar(
        select(func.count())
        .select_from(SsmParameter)
        .where(SsmParameter.account_id == ctx.account_id, SsmParameter.region == ctx.region)
    )
    if (count or 0) >= store.MAX_PARAMETERS:
        raise errors.ParameterLimitExceeded(
            f"You have reached the limit of {store.MAX_PARAMETERS} parameters in this account "
            "and region. Delete parameters you no longer need and try again."
        )


def _tier(requested: str | None, previous: SsmParameterVersion | None, value: str) -> str:
    was_advanced = previous is not None and previous.tier == "Advanced"
    if requested == "Intelligent-Tiering":
        # Standard when it fits, Advanced when the value needs it (and never back down).
        needs_advanced = len(value) > store.MAX_VALUE_LENGTH["Standard"]
        return "Advanced" if needs_advanced or was_advanced else "Standard"
    tier = requested or (previous.tier if previous else "Standard")
    if was_advanced and tier == "Standard":
        raise errors.ValidationException(
            "This parameter uses the advanced-parameter tier. You can't downgrade a parameter "
            "from the advanced-parameter tier to the standard-parameter tier. If necessary, "
            "delete the advanced parameter and recreate it as a standard parameter."
        )
    return tier


def _check_pattern(pattern: str | None, value: str) -> None:
    if not pattern:
        return
    try:
        compiled = re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        raise errors.InvalidAllowedPatternException(
            f"The allowed pattern {pattern!r} is not a valid regular expression: {exc}."
        ) from None
    if not compiled.fullmatch(value):
        raise errors.ParameterPatternMismatchException(
            f"Parameter value, cannot be validated against allowedPattern: {pattern}"
        )


def _delete(session: Session, ctx: RequestContext, name: str) -> bool:
    parameter = store.find_exact(session, ctx.account_id, ctx.region, name)
    if parameter is None:
        return False
    tagging.delete_all_tags(session, store.arn_of(parameter))
    session.delete(parameter)
    session.flush()
    return True
