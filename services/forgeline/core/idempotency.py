"""`clientRequestToken` idempotency: the same token returns the same result, never a duplicate.

The first call with a token stores its response next to a hash of its parameters in the
same transaction as the work; a repeat with the same parameters returns the stored
response, with different parameters it gets the service's mismatch error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.core.context import RequestContext
from forgeline.core.protocol.errors import AwsError
from forgeline.core.resources import IdempotencyRecord


def request_hash(params: Mapping[str, Any], token_member: str) -> str:
    relevant = {k: v for k, v in params.items() if k != token_member}
    canonical = json.dumps(relevant, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent(
    session: Session,
    ctx: RequestContext,
    token: str | None,
    params: Mapping[str, Any],
    compute: Callable[[], dict[str, Any]],
    *,
    mismatch_error: str,
    token_member: str = "clientRequestToken",
) -> dict[str, Any]:
    """Run `compute` once per (account, region, operation, token)."""
    if not token:
        return compute()
    digest = request_hash(params, token_member)
    lookup = select(IdempotencyRecord).where(
        IdempotencyRecord.account_id == ctx.account_id,
        IdempotencyRecord.region == ctx.region,
        IdempotencyRecord.operation == ctx.operation,
        IdempotencyRecord.token == token,
    )
    existing = session.scalars(lookup).first()
    if existing is not None:
        return _replay(existing, digest, token, mismatch_error)
    response = compute()
    record = IdempotencyRecord(
        account_id=ctx.account_id,
        region=ctx.region,
        operation=ctx.operation,
        token=token,
        request_hash=digest,
        response=json.loads(json.dumps(response, default=str)),
    )
    try:
        with session.begin_nested():
            session.add(record)
    except IntegrityError:
        # A concurrent call with the same token won; its result stands and ours is undone.
        session.rollback()
        existing = session.scalars(lookup).one()
        return _replay(existing, digest, token, mismatch_error)
    return response


def _replay(
    record: IdempotencyRecord, digest: str, token: str, mismatch_error: str
) -> dict[str, Any]:
    if record.request_hash != digest:
        raise AwsError(
            f"The client request token {token!r} was already used with different parameters.",
            code=mismatch_error,
        )
    return record.response
