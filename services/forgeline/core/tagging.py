"""Resource tags, the same rules for every service: at most 50, `aws:` keys reserved.

Each service names its own error codes (CodeCommit's TooManyTagsException, CodeBuild's
InvalidInputException, …), so the checks take a `TagErrors` naming them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from forgeline.core.protocol.errors import AwsError
from forgeline.core.resources import ResourceTag

MAX_TAGS = 50


@dataclasses.dataclass(frozen=True)
class TagErrors:
    too_many: str
    reserved_key: str
    invalid: str


def validate_tags(tags: Mapping[str, str], errors: TagErrors, existing: Iterable[str] = ()) -> None:
    """Raise if the tags would break AWS's rules once merged with `existing` keys."""
    for key, value in tags.items():
        if key.lower().startswith("aws:"):
            raise AwsError(
                f"Tag key {key!r} is invalid: keys starting with 'aws:' are reserved for system use.",
                code=errors.reserved_key,
            )
        if not 1 <= len(key) <= 128:
            raise AwsError(
                f"Tag key {key!r} must be 1 to 128 characters long.", code=errors.invalid
            )
        if value is None or len(value) > 256:
            raise AwsError(
                f"The value of tag {key!r} must be at most 256 characters long.",
                code=errors.invalid,
            )
    merged = set(existing) | set(tags)
    if len(merged) > MAX_TAGS:
        raise AwsError(
            f"A resource can have at most {MAX_TAGS} tags; this request would give it {len(merged)}.",
            code=errors.too_many,
        )


def get_tags(session: Session, resource_arn: str) -> dict[str, str]:
    rows = session.scalars(
        select(ResourceTag)
        .where(ResourceTag.resource_arn == resource_arn)
        .order_by(ResourceTag.key)
    )
    return {row.key: row.value for row in rows}


def put_tags(
    session: Session, account_id: str, resource_arn: str, tags: Mapping[str, str], errors: TagErrors
) -> None:
    validate_tags(tags, errors, existing=get_tags(session, resource_arn))
    for key, value in tags.items():
        session.merge(
            ResourceTag(resource_arn=resource_arn, key=key, value=value, account_id=account_id)
        )
    session.flush()


def remove_tags(
    session: Session, resource_arn: str, keys: Iterable[str], errors: TagErrors
) -> None:
    keys = list(keys)
    for key in keys:
        if key.lower().startswith("aws:"):
            raise AwsError(f"Tag key {key!r} is reserved for system use.", code=errors.reserved_key)
    session.execute(
        delete(ResourceTag).where(
            ResourceTag.resource_arn == resource_arn, ResourceTag.key.in_(keys)
        )
    )


def delete_all_tags(session: Session, resource_arn: str) -> None:
    session.execute(delete(ResourceTag).where(ResourceTag.resource_arn == resource_arn))


def tag_list(
    tags: Mapping[str, str], key_name: str = "key", value_name: str = "value"
) -> list[dict[str, str]]:
    """Tags as the list-of-pairs shape some models use ([{"key":…, "value":…}])."""
    return [{key_name: k, value_name: v} for k, v in tags.items()]
