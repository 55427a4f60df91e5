"""Who is calling: SigV4 verification of an API request, mapped to an account and region.

FORGELINE_AUTH=enforce verifies every request against the stored secret. `permissive`
(loopback only, for test suites) still requires well-formed SigV4, verifies keys it
knows, and maps unknown keys to the default account.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable

from forgeline.core.auth import errors, keys, sigv4
from forgeline.core.db import get_engine, session_scope
from forgeline.core.settings import Settings


@dataclasses.dataclass(frozen=True)
class Identity:
    account_id: str
    principal_arn: str
    access_key_id: str | None
    region: str


def new_request_id() -> str:
    return str(uuid.uuid4())


def session_token_accepted(settings: Settings) -> bool:
    """Whether a request may carry a session token (X-Amz-Security-Token).

    Forgeline issues no temporary credentials yet, so in enforce mode every session token
    is one it never issued and AWS's answer is to refuse it. Permissive mode, for test
    suites with made-up credentials, lets them through.
    """
    return settings.auth == "permissive"


def authenticate(
    *,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    signing_name: str,
    settings: Settings,
) -> Identity:
    request = sigv4.IncomingRequest(
        method=method, path=raw_path, query=query_string, headers=list(headers), body=body
    )
    parsed = sigv4.parse_authorization(request)
    if parsed.service != signing_name:
        raise errors.InvalidSignatureException(
            f"Credential should be scoped to correct service: '{signing_name}'. "
        )
    sigv4.check_request_time(parsed)
    if parsed.session_token is not None and not session_token_accepted(settings):
        raise errors.UnrecognizedClientException()
    from forgeline.core.lifecycle import server_key

    # The hot path: a key seen in the last few seconds needs no database session at all.
    record = keys.secret_cache.get(str(get_engine().url), parsed.access_key_id)
    if record is None:
        with session_scope(readonly=True) as session:
            record = keys.lookup_secret(session, parsed.access_key_id, server_key(settings))
    if record is None:
        if settings.auth == "permissive":
            return Identity(
                account_id=settings.default_account,
                principal_arn=f"arn:aws:iam::{settings.default_account}:root",
                access_key_id=parsed.access_key_id,
                region=parsed.region,
            )
        raise errors.UnrecognizedClientException()
    if not sigv4.verify(parsed, record.secret_access_key, request):
        raise errors.InvalidSignatureException()
    return Identity(
        account_id=record.account_id,
        principal_arn=record.principal_arn,
        access_key_id=parsed.access_key_id,
        region=parsed.region,
    )
