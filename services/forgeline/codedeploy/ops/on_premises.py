"""On-premises instances: RegisterOnPremisesInstance, DeregisterOnPremisesInstance,
GetOnPremisesInstance, BatchGetOnPremisesInstances, ListOnPremisesInstances, and the
instances' own tags (AddTagsToOnPremisesInstances, RemoveTagsFromOnPremisesInstances).

An instance is registered with the IAM identity its agent signs with: an IAM user ARN or an
IAM session ARN of the caller's own account (an agent of another account could never
authenticate as it). One identity belongs to one registered instance.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.codedeploy import arns, tag_matching
from forgeline.codedeploy.generated import errors, shapes
from forgeline.codedeploy.ops.lookups import (
    find_instance,
    instance_name_param,
    instance_not_registered,
)
from forgeline.codedeploy.tables.instances import OnPremisesInstance
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens
from forgeline.core.protocol.errors import AwsError

# AWS's rules for instance names and tags (the AWS CLI's `deploy register` checks the same).
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]{1,100}")
_USER_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:iam::(\d{12}):user/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}"
)
_SESSION_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:sts::(\d{12}):assumed-role/[\w+=,.@-]{1,64}/[\w+=,.@-]{2,64}"
)
MAX_TAGS_PER_INSTANCE = 10
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
# Instances one tag call and one BatchGetOnPremisesInstances call may name.
MAX_INSTANCES_PER_CALL = 100
LIST_PAGE_SIZE = 100


def check_instance_name(name: str) -> str:
    if not _INSTANCE_NAME.fullmatch(name):
        raise errors.InvalidInstanceNameException(
            f"{name!r} is not a valid instance name: use 1 to 100 letters, digits and + = , . @ _ -."
        )
    return name


def instance_info(instance: OnPremisesInstance) -> shapes.InstanceInfo:
    info: shapes.InstanceInfo = {
        "instanceName": instance.name,
        "instanceArn": instance.instance_arn,
        "registerTime": instance.registered_at,
        "tags": [{"Key": tag["Key"], "Value": tag["Value"]} for tag in instance.tags],
    }
    if instance.iam_user_arn:
        info["iamUserArn"] = instance.iam_user_arn
    if instance.iam_session_arn:
        info["iamSessionArn"] = instance.iam_session_arn
    if instance.deregistered_at is not None:
        info["deregisterTime"] = instance.deregistered_at
    return info


class OnPremisesOperations:
    def register_on_premises_instance(
        self, ctx: RequestContext, params: shapes.RegisterOnPremisesInstanceInput
    ) -> None:
        name = check_instance_name(params["instanceName"])
        user_arn, session_arn = params.get("iamUserArn"), params.get("iamSessionArn")
        if user_arn and session_arn:
            raise errors.MultipleIamArnsProvidedException(
                "Give either iamUserArn or iamSessionArn, not both."
            )
        if not user_arn and not session_arn:
            raise errors.IamArnRequiredException(
                "Registering an on-premises instance needs its iamUserArn or iamSessionArn."
            )
        if user_arn:
            _check_identity(ctx, user_arn, _USER_ARN, errors.InvalidIamUserArnException, "user")
        if session_arn:
            _check_identity(
                ctx, session_arn, _SESSION_ARN, errors.InvalidIamSessionArnException, "session"
            )
        try:
            with session_scope() as session:
                _check_identity_free(session, ctx, user_arn, session_arn)
                instance = find_instance(session, ctx.account_id, ctx.region, name, for_update=True)
                if instance is not None and instance.registered:
                    raise _name_taken(name)
                if instance is None:
                    instance = OnPremisesInstance(
                        id=str(uuid.uuid4()),
                        account_id=ctx.account_id,
                        region=ctx.region,
                        name=name,
                        instance_arn=arns.instance_arn(ctx.region, ctx.account_id, name),
                    )
                    session.add(instance)
                # A deregistered name registers afresh: a new identity, no old tags.
                instance.iam_user_arn = user_arn or None
                instance.iam_session_arn = session_arn or None
                instance.registered_at = utcnow()
                instance.deregistered_at = None
                instance.tags = []
                session.flush()
        except IntegrityError:
            raise _name_taken(name) from None

    def deregister_on_premises_instance(
        self, ctx: RequestContext, params: shapes.DeregisterOnPremisesInstanceInput
    ) -> None:
        name = check_instance_name(instance_name_param(params["instanceName"]))
        with session_scope() as session:
            instance = find_instance(session, ctx.account_id, ctx.region, name, for_update=True)
            # Deregistering twice, or an instance never registered, changes nothing.
            if instance is not None and instance.registered:
                instance.deregistered_at = utcnow()

    def get_on_premises_instance(
        self, ctx: RequestContext, params: shapes.GetOnPremisesInstanceInput
    ) -> shapes.GetOnPremisesInstanceOutput:
        name = instance_name_param(params["instanceName"])
        with session_scope(readonly=True) as session:
            instance = find_instance(session, ctx.account_id, ctx.region, name)
            if instance is None:
                raise instance_not_registered(name)
            return {"instanceInfo": instance_info(instance)}

    def batch_get_on_premises_instances(
        self, ctx: RequestContext, params: shapes.BatchGetOnPremisesInstancesInput
    ) -> shapes.BatchGetOnPremisesInstancesOutput:
        names = _instance_names(params["instanceNames"], errors.BatchLimitExceededException)
        with session_scope(readonly=True) as session:
            rows = {row.name: row for row in _instances_named(session, ctx, names)}
            # Names of no instance are left out, as AWS does.
            return {"instanceInfos": [instance_info(rows[name]) for name in names if name in rows]}

    def list_on_premises_instances(
        self, ctx: RequestContext, params: shapes.ListOnPremisesInstancesInput
    ) -> shapes.ListOnPremisesInstancesOutput:
        status = params.get("registrationStatus")
        tag_filters = [_tag_filter(tag_filter) for tag_filter in params.get("tagFilters") or []]
        with session_scope(readonly=True) as session:
            rows = session.scalars(
                select(OnPremisesInstance)
                .where(
                    OnPremisesInstance.account_id == ctx.account_id,
                    OnPremisesInstance.region == ctx.region,
                )
                .order_by(OnPremisesInstance.name)
            )
            names = [
                row.name
                for row in rows
                if _status_matches(row, status)
                and (not tag_filters or tag_matching.any_filter_matches(tag_filters, row.tags))
            ]
        scope: dict[str, Any] = {"status": status, "tagFilters": tag_filters}
        page, token = request_page_tokens(ctx).page(
            names, lambda name: name, scope, params.get("nextToken"), LIST_PAGE_SIZE
        )
        output: shapes.ListOnPremisesInstancesOutput = {"instanceNames": page}
        if token:
            output["nextToken"] = token
        return output

    def add_tags_to_on_premises_instances(
        self, ctx: RequestContext, params: shapes.AddTagsToOnPremisesInstancesInput
    ) -> None:
        tags = _tags(params["tags"])

        def add(current: list[dict[str, str]]) -> list[dict[str, str]]:
            merged = {tag["Key"]: tag["Value"] for tag in current}
            merged.update(tags)
            if len(merged) > MAX_TAGS_PER_INSTANCE:
                raise errors.TagLimitExceededException(
                    f"An on-premises instance can have at most {MAX_TAGS_PER_INSTANCE} tags."
                )
            return [{"Key": key, "Value": value} for key, value in merged.items()]

        self._retag(ctx, params["instanceNames"], add)

    def remove_tags_from_on_premises_instances(
        self, ctx: RequestContext, params: shapes.RemoveTagsFromOnPremisesInstancesInput
    ) -> None:
        if not params["tags"]:
            raise errors.TagRequiredException("Name at least one tag to remove.")
        removed = [(tag.get("Key"), tag.get("Value")) for tag in params["tags"]]
        if any(not key for key, _ in removed):
            raise errors.InvalidTagException("Every tag to remove needs its Key.")

        def remove(current: list[dict[str, str]]) -> list[dict[str, str]]:
            # A tag given with a value is removed only where the instance has that value.
            return [
                tag
                for tag in current
                if not any(
                    tag["Key"] == key and (value is None or tag["Value"] == value)
                    for key, value in removed
                )
            ]

        self._retag(ctx, params["instanceNames"], remove)

    def _retag(
        self,
        ctx: RequestContext,
        instance_names: list[str],
        change: Callable[[list[dict[str, str]]], list[dict[str, str]]],
    ) -> None:
        names = _instance_names(instance_names, errors.InstanceLimitExceededException)
        with session_scope() as session:
            rows = {row.name: row for row in _instances_named(session, ctx, names, for_update=True)}
            missing = [name for name in names if name not in rows or not rows[name].registered]
            if missing:
                raise errors.InstanceNotRegisteredException(
                    "These on-premises instances are not registered: " + ", ".join(missing)
                )
            for name in names:
                rows[name].tags = change(list(rows[name].tags))


def _check_identity(
    ctx: RequestContext,
    arn: str,
    pattern: re.Pattern[str],
    error: Callable[[str], AwsError],
    what: str,
) -> None:
    match = pattern.fullmatch(arn)
    if match is None:
        example = (
            "arn:aws:iam::<account>:user/<name>"
            if what == "user"
            else "arn:aws:sts::<account>:assumed-role/<role>/<session>"
        )
        raise error(f"{arn!r} is not an IAM {what} ARN ({example}).")
    if match.group(1) != ctx.account_id:
        raise error(
            f"The IAM {what} ARN {arn} belongs to account {match.group(1)}; an instance "
            f"registered in account {ctx.account_id} must use an identity of that account."
        )


def _check_identity_free(
    session: Session, ctx: RequestContext, user_arn: str | None, session_arn: str | None
) -> None:
    """One IAM identity registers one instance at a time."""
    column = OnPremisesInstance.iam_user_arn if user_arn else OnPremisesInstance.iam_session_arn
    holder = session.scalars(
        select(OnPremisesInstance.name).where(
            OnPremisesInstance.account_id == ctx.account_id,
            OnPremisesInstance.region == ctx.region,
            OnPremisesInstance.deregistered_at.is_(None),
            column == (user_arn or session_arn),
        )
    ).first()
    if holder is None:
        return
    if user_arn:
        raise errors.IamUserArnAlreadyRegisteredException(
            f"The IAM user ARN {user_arn} is already registered with instance {holder}."
        )
    raise errors.IamSessionArnAlreadyRegisteredException(
        f"The IAM session ARN {session_arn} is already registered with instance {holder}."
    )


def _name_taken(name: str) -> errors.InstanceNameAlreadyRegisteredException:
    return errors.InstanceNameAlreadyRegisteredException(
        f"An on-premises instance named {name} is already registered."
    )


def _instance_names(names: list[str], too_many: Callable[[str], AwsError]) -> list[str]:
    names = list(dict.fromkeys(names))
    if not names:
        raise errors.InstanceNameRequiredException("Name at least one on-premises instance.")
    if len(names) > MAX_INSTANCES_PER_CALL:
        raise too_many(f"A call can name at most {MAX_INSTANCES_PER_CALL} on-premises instances.")
    for name in names:
        check_instance_name(name)
    return names


def _instances_named(
    session: Session, ctx: RequestContext, names: list[str], *, for_update: bool = False
) -> list[OnPremisesInstance]:
    query = select(OnPremisesInstance).where(
        OnPremisesInstance.account_id == ctx.account_id,
        OnPremisesInstance.region == ctx.region,
        OnPremisesInstance.name.in_(names),
    )
    if for_update:
        query = query.with_for_update()
    return list(session.scalars(query))


def _tags(tags: list[shapes.Tag]) -> dict[str, str]:
    if not tags:
        raise errors.TagRequiredException("Name at least one tag to add.")
    pairs: dict[str, str] = {}
    for tag in tags:
        key, value = tag.get("Key"), tag.get("Value")
        if not key or value is None:
            raise errors.InvalidTagException(
                "Every tag needs a Key and a Value (value-only tags are not allowed)."
            )
        if len(key) > MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise errors.InvalidTagException(
                f"Tag keys are at most {MAX_TAG_KEY} and values at most {MAX_TAG_VALUE} "
                "characters long."
            )
        pairs[key] = value
    if len(pairs) > MAX_TAGS_PER_INSTANCE:
        raise errors.TagLimitExceededException(
            f"An on-premises instance can have at most {MAX_TAGS_PER_INSTANCE} tags."
        )
    return pairs


def _tag_filter(tag_filter: shapes.TagFilter) -> shapes.TagFilter:
    key, value = tag_filter.get("Key"), tag_filter.get("Value")
    kind = tag_filter.get("Type") or (
        "KEY_AND_VALUE" if key and value else "KEY_ONLY" if key else "VALUE_ONLY"
    )
    if kind != "VALUE_ONLY" and not key:
        raise errors.InvalidTagFilterException(f"A {kind} tag filter needs a Key.")
    if kind != "KEY_ONLY" and not value:
        raise errors.InvalidTagFilterException(f"A {kind} tag filter needs a Value.")
    normalized: shapes.TagFilter = {"Type": kind}
    if key:
        normalized["Key"] = key
    if value:
        normalized["Value"] = value
    return normalized


def _status_matches(instance: OnPremisesInstance, status: str | None) -> bool:
    if status == "Registered":
        return instance.registered
    if status == "Deregistered":
        return not instance.registered
    return True
