"""ListSecrets' and BatchGetSecretValue's Filters: which of an account's secrets pass them.

Each filter passes a secret when any of its values matches; a value starting with '!'
matches when the secret does not. Every filter must pass.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import utcnow
from forgeline.secretsmanager import store
from forgeline.secretsmanager.generated import errors, shapes
from forgeline.secretsmanager.tables import Secret

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def checked_filters(filters: list[shapes.Filter]) -> list[shapes.Filter]:
    for item in filters:
        if "Key" not in item or not item.get("Values"):
            raise errors.InvalidParameterException(
                "Each filter needs a Key and at least one value."
            )
    return filters


def matching_secrets(
    session: Session,
    ctx: RequestContext,
    filters: list[shapes.Filter],
    include_deleted: bool,
) -> tuple[list[Secret], dict[str, dict[str, str]]]:
    """The account's secrets that pass every (checked) filter, and each one's tags (by
    secret id)."""
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


def _filter_accepts(item: shapes.Filter, secret: Secret, tags: dict[str, str]) -> bool:
    """One filter: any of its values matches (a value starting '!' negates)."""
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


def _words(text: str) -> list[str]:
    """Split as the console search does: at case changes, letter/digit changes, punctuation."""
    return [word.lower() for word in _WORD.findall(text)]
