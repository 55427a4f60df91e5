"""SSM Parameter Store, the subset builds use: put, get (by name, names, path), describe,
history, labels, tags and delete. Every other SSM operation answers 501."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens
from forgeline.ssm import parameters as store
from forgeline.ssm.filters import ParameterFilter, legacy_filters, parse_filters
from forgeline.ssm.generated import errors
from forgeline.ssm.generated.api import SSMApi
from forgeline.ssm.tables import SsmParameter, SsmParameterVersion

BY_PATH_PAGE_SIZE = 10
DESCRIBE_PAGE_SIZE = 50
HISTORY_PAGE_SIZE = 50
_WRITE_ATTEMPTS = 3  # concurrent first puts of one name collide on the unique name; retry


class SsmOperations:
    # -- writing -------------------------------------------------------------------------
    def put_parameter(self, ctx: RequestContext, params: Any) -> Any:
        name = params["Name"]
        store.check_name(ctx.account_id, ctx.region, name)
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

    def delete_parameter(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            if not _delete(session, ctx, params["Name"]):
                raise store.not_found(params["Name"])
        return {}

    def delete_parameters(self, ctx: RequestContext, params: Any) -> Any:
        deleted: list[str] = []
        invalid: list[str] = []
        with session_scope() as session:
            for name in params["Names"]:
                (deleted if _delete(session, ctx, name) else invalid).append(name)
        return {"DeletedParameters": deleted, "InvalidParameters": invalid}

    def label_parameter_version(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            parameter, version = _version_for_labels(session, ctx, params)
            labels = list(dict.fromkeys(params["Labels"]))
            invalid = [label for label in labels if store.label_problem(label)]
            valid = [label for label in labels if label not in invalid]
            merged = list(dict.fromkeys([*(version.labels or []), *valid]))
            if len(merged) > store.MAX_LABELS_PER_VERSION:
                raise errors.ParameterVersionLabelLimitExceeded(
                    f"A parameter version can have at most {store.MAX_LABELS_PER_VERSION} labels; "
                    f"version {version.version} of {parameter.name} would have {len(merged)}."
                )
            # A label names one version: attaching it here moves it off any other.
            for other in store.versions(session, parameter):
                if other.version != version.version and set(other.labels or []) & set(valid):
                    other.labels = [label for label in other.labels if label not in valid]
            version.labels = merged
            return {"InvalidLabels": invalid, "ParameterVersion": version.version}

    def unlabel_parameter_version(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            _, version = _version_for_labels(session, ctx, params)
            requested = list(dict.fromkeys(params["Labels"]))
            present = set(version.labels or [])
            version.labels = [label for label in version.labels or [] if label not in requested]
            return {
                "RemovedLabels": [label for label in requested if label in present],
                "InvalidLabels": [label for label in requested if label not in present],
            }

    # -- reading -------------------------------------------------------------------------
    def get_parameter(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope(readonly=True) as session:
            parameter, version, reference = store.resolve(
                session, ctx.account_id, ctx.region, params["Name"]
            )
            return {
                "Parameter": store.parameter_output(
                    parameter, version, reference, params.get("WithDecryption", False)
                )
            }

    def get_parameters(self, ctx: RequestContext, params: Any) -> Any:
        found, invalid = [], []
        decrypt = params.get("WithDecryption", False)
        with session_scope(readonly=True) as session:
            for requested in dict.fromkeys(params["Names"]):
                try:
                    parameter, version, reference = store.resolve(
                        session, ctx.account_id, ctx.region, requested
                    )
                except (errors.ParameterNotFound, errors.ParameterVersionNotFound):
                    invalid.append(requested)
                    continue
                found.append(store.parameter_output(parameter, version, reference, decrypt))
        return {"Parameters": found, "InvalidParameters": invalid}

    def get_parameters_by_path(self, ctx: RequestContext, params: Any) -> Any:
        path = params["Path"]
        _check_path(path)
        prefix = path if path.endswith("/") else path + "/"
        recursive = params.get("Recursive", False)
        filters = parse_filters(params.get("ParameterFilters") or [], by_path=True)
        decrypt = params.get("WithDecryption", False)
        labels = {value for f in filters if f.key == "Label" for value in f.values}
        with session_scope(readonly=True) as session:
            rows = [
                (parameter, version)
                for parameter, version in _current_rows(session, ctx, prefix)
                if recursive or "/" not in parameter.name[len(prefix) :]
            ]
            if labels:
                # A Label filter returns the labelled version, not the current one.
                rows = _labelled_versions(session, rows, labels)
            rows = [(p, v) for p, v in rows if _matches(session, filters, p, v)]
            scope = _scope(path, recursive, params)
            page, token = request_page_tokens(ctx).page(
                rows,
                lambda row: row[0].name,
                scope,
                params.get("NextToken"),
                params.get("MaxResults") or BY_PATH_PAGE_SIZE,
            )
            output = [store.parameter_output(p, v, None, decrypt) for p, v in page]
        return {"Parameters": output, "NextToken": token}

    def describe_parameters(self, ctx: RequestContext, params: Any) -> Any:
        if params.get("Filters") and params.get("ParameterFilters"):
            raise errors.ValidationException(
                "You can use either Filters or ParameterFilters in a single request, not both."
            )
        filters = legacy_filters(params.get("Filters") or []) + parse_filters(
            params.get("ParameterFilters") or [], by_path=False
        )
        if params.get("Shared"):
            return {"Parameters": []}  # no parameter is ever shared with another account here
        with session_scope(readonly=True) as session:
            rows = [
                (parameter, version)
                for parameter, version in _current_rows(session, ctx, "")
                if _matches(session, filters, parameter, version)
            ]
            scope = _scope("", False, params)
            page, token = request_page_tokens(ctx).page(
                rows,
                lambda row: row[0].name,
                scope,
                params.get("NextToken"),
                params.get("MaxResults") or DESCRIBE_PAGE_SIZE,
            )
            output = [store.metadata_output(p, v) for p, v in page]
        return {"Parameters": output, "NextToken": token}

    def get_parameter_history(self, ctx: RequestContext, params: Any) -> Any:
        decrypt = params.get("WithDecryption", False)
        with session_scope(readonly=True) as session:
            parameter = _exact(session, ctx, params["Name"])
            if parameter is None:
                raise store.not_found(params["Name"])
            scope = _scope(parameter.id, False, params)
            page, token = request_page_tokens(ctx).page(
                store.versions(session, parameter),
                lambda version: version.version,
                scope,
                params.get("NextToken"),
                params.get("MaxResults") or HISTORY_PAGE_SIZE,
            )
            output = [store.history_output(parameter, version, decrypt) for version in page]
        return {"Parameters": output, "NextToken": token}

    # -- tags ------------------------------------------------------------------------------
    def add_tags_to_resource(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            parameter = _tagged_parameter(session, ctx, params)
            tagging.put_tags(
                session,
                ctx.account_id,
                _arn(parameter),
                {tag["Key"]: tag["Value"] for tag in params["Tags"]},
                store.TAG_ERRORS,
            )
        return {}

    def remove_tags_from_resource(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            parameter = _tagged_parameter(session, ctx, params)
            tagging.remove_tags(session, _arn(parameter), params["TagKeys"], store.TAG_ERRORS)
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope(readonly=True) as session:
            parameter = _tagged_parameter(session, ctx, params)
            tags = tagging.get_tags(session, _arn(parameter))
        return {"TagList": tagging.tag_list(tags, "Key", "Value")}


class SsmProvider(SsmOperations, SSMApi):
    """SSM as Forgeline serves it: Parameter Store only."""


# -- helpers -----------------------------------------------------------------------------------
def _arn(parameter: SsmParameter) -> str:
    return store.arn(parameter.account_id, parameter.region, parameter.name)


def _put(session: Session, ctx: RequestContext, params: Any) -> dict[str, Any]:
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
        params["Description"] if "Description" in params else _prior(previous, "description")
    )
    pattern = (
        params["AllowedPattern"]
        if "AllowedPattern" in params
        else _prior(previous, "allowed_pattern")
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
            tagging.put_tags(session, ctx.account_id, _arn(parameter), tags, store.PUT_TAG_ERRORS)
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


def _prior(previous: SsmParameterVersion | None, attribute: str) -> Any:
    return getattr(previous, attribute) if previous is not None else None


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


def _exact(
    session: Session, ctx: RequestContext, requested: str, *, lock: bool = False
) -> SsmParameter | None:
    """The parameter a name or ARN names, without a version or label selector."""
    reference = store.parse_reference(ctx.account_id, ctx.region, requested)
    if reference is None or reference.selector is not None:
        return None
    return store.find(session, ctx.account_id, ctx.region, reference.candidates, lock=lock)


def _delete(session: Session, ctx: RequestContext, name: str) -> bool:
    parameter = _exact(session, ctx, name)
    if parameter is None:
        return False
    tagging.delete_all_tags(session, _arn(parameter))
    session.delete(parameter)
    session.flush()
    return True


def _version_for_labels(
    session: Session, ctx: RequestContext, params: Any
) -> tuple[SsmParameter, SsmParameterVersion]:
    parameter = _exact(session, ctx, params["Name"], lock=True)
    if parameter is None:
        raise store.not_found(params["Name"])
    number = params["ParameterVersion"] if "ParameterVersion" in params else parameter.version
    version = store.version_row(session, parameter, number)
    if version is None:
        raise errors.ParameterVersionNotFound(
            f"Systems Manager could not find version {number} of {parameter.name}. "
            "Verify the version and try again."
        )
    return parameter, version


def _tagged_parameter(session: Session, ctx: RequestContext, params: Any) -> SsmParameter:
    if params["ResourceType"] != "Parameter":
        raise errors.InvalidResourceType(
            f"Forgeline's SSM supports tags on parameters only, not {params['ResourceType']}."
        )
    parameter = _exact(session, ctx, params["ResourceId"])
    if parameter is None:
        raise errors.InvalidResourceId(f"The parameter {params['ResourceId']} does not exist.")
    return parameter


def _check_path(path: str) -> None:
    if not path.startswith("/"):
        raise errors.ValidationException(
            f"The path {path!r} is not valid: a parameter path must begin with '/'."
        )
    levels = [segment for segment in path.strip("/").split("/") if segment]
    if len(levels) > store.MAX_HIERARCHY_LEVELS:
        raise errors.ValidationException(
            f"The path {path!r} has {len(levels)} levels; a hierarchy has at most "
            f"{store.MAX_HIERARCHY_LEVELS}."
        )
    if "//" in path.rstrip("/") or not all(store.SEGMENT.fullmatch(s) for s in levels):
        raise errors.ValidationException(
            f"The path {path!r} is not valid: each level can contain only letters, numbers "
            "and the symbols . - _, separated by single slashes."
        )


def _current_rows(
    session: Session, ctx: RequestContext, prefix: str
) -> list[tuple[SsmParameter, SsmParameterVersion]]:
    query = (
        select(SsmParameter, SsmParameterVersion)
        .join(
            SsmParameterVersion,
            (SsmParameterVersion.parameter_id == SsmParameter.id)
            & (SsmParameterVersion.version == SsmParameter.version),
        )
        .where(SsmParameter.account_id == ctx.account_id, SsmParameter.region == ctx.region)
        .order_by(SsmParameter.name)
    )
    if prefix:
        query = query.where(SsmParameter.name.startswith(prefix, autoescape=True))
    # SQLite's LIKE ignores case, and collations may not order by code point: names are
    # case-sensitive and pages need one order, so both are settled here.
    rows = [
        (parameter, version)
        for parameter, version in session.execute(query).all()
        if parameter.name.startswith(prefix)
    ]
    return sorted(rows, key=lambda row: row[0].name)


def _labelled_versions(
    session: Session, rows: list[tuple[SsmParameter, SsmParameterVersion]], labels: set[str]
) -> list[tuple[SsmParameter, SsmParameterVersion]]:
    chosen = []
    for parameter, current in rows:
        candidates = [current, *reversed(store.versions(session, parameter))]
        labelled = next((v for v in candidates if labels & set(v.labels or [])), None)
        if labelled is not None:
            chosen.append((parameter, labelled))
    return chosen


def _matches(
    session: Session,
    filters: list[ParameterFilter],
    parameter: SsmParameter,
    version: SsmParameterVersion,
) -> bool:
    tags: dict[str, str] | None = None
    for parameter_filter in filters:
        if parameter_filter.needs_tags and tags is None:
            tags = tagging.get_tags(session, _arn(parameter))
        if not parameter_filter.accepts(parameter.name, version, tags or {}):
            return False
    return True


def _scope(subject: str, recursive: bool, params: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "recursive": recursive,
        "filters": params.get("ParameterFilters"),
        "legacy": params.get("Filters"),
        "decrypt": params.get("WithDecryption", False),
    }
