"""Opaque, tamper-proof pagination tokens with stable ordering.

A token carries the sort key of the last item returned, the query it belongs to (a
fingerprint of operation, account, region and filters) and when it was issued, signed
with HMAC-SHA256 under a key derived from the server key. A forged token, one from
another query or account, or one older than a day gets the model's invalid-token error.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from forgeline.core.context import RequestContext
from forgeline.core.protocol.errors import AwsError

T = TypeVar("T")

TOKEN_LIFETIME_SECONDS = 24 * 3600


class PageTokens:
    def __init__(self, server_key: bytes, invalid_token_error: str) -> None:
        self._key = hashlib.sha256(b"forgeline-pagination\0" + server_key).digest()
        self.invalid_token_error = invalid_token_error
        # Scope every token of this signer carries besides the caller's (see for_request).
        self._bound: dict[str, Any] = {}

    def for_request(self, ctx: RequestContext) -> PageTokens:
        """This signer bound to one request's API, operation, account and region: a token
        made for one of them is refused by every other, without each handler spelling them
        out; callers add only their query's own parameters (sort order, filters, the
        resource listed) to the scope."""
        bound = copy.copy(self)
        bound._bound = {
            "api": ctx.service,
            "op": ctx.operation,
            "account": ctx.account_id,
            "region": ctx.region,
        }
        return bound

    def _fingerprint(self, scope: dict[str, Any]) -> str:
        canonical = json.dumps(
            {**scope, **self._bound}, sort_keys=True, default=str, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def encode(self, scope: dict[str, Any], position: Any) -> str:
        payload = json.dumps(
            {"p": position, "q": self._fingerprint(scope), "t": int(time.time())},
            separators=(",", ":"),
            default=str,
        ).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")

    def decode(self, scope: dict[str, Any], token: str) -> Any:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise self._invalid() from None
        payload, mac = raw[:-16], raw[-16:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        if len(raw) <= 16 or not hmac.compare_digest(mac, expected):
            raise self._invalid()
        document = json.loads(payload)
        if document.get("q") != self._fingerprint(scope):
            raise self._invalid()
        if time.time() - document.get("t", 0) > TOKEN_LIFETIME_SECONDS:
            raise self._invalid("The pagination token has expired.")
        return document["p"]

    def _invalid(self, message: str = "The pagination token is invalid.") -> AwsError:
        return AwsError(message, code=self.invalid_token_error)

    def page(
        self,
        items: Sequence[T],
        sort_key: Callable[[T], Any],
        scope: dict[str, Any],
        token: str | None,
        limit: int,
        descending: bool = False,
    ) -> tuple[list[T], str | None]:
        """One page of `items` (already sorted by `sort_key`) after the token's position.

        The position is the last key returned, not an offset, so items created or
        deleted between pages neither repeat nor shift the rest.
        """
        start = 0
        if token:
            last = self.decode(scope, token)
            start = next(
                (i for i, item in enumerate(items) if _after(sort_key(item), last, descending)),
                len(items),
            )
        chunk = list(items[start : start + limit])
        more = start + limit < len(items)
        next_token = self.encode(scope, _jsonable(sort_key(chunk[-1]))) if more and chunk else None
        return chunk, next_token


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _after(key: Any, last: Any, descending: bool) -> bool:
    key = list(key) if isinstance(key, tuple) else key
    return key < last if descending else key > last


def page_size(
    value: int | None,
    *,
    default: int,
    maximum: int,
    member: str,
    invalid: Callable[[str], Exception],
) -> int:
    """A page-size member (maxResults): absent gives `default`, above the maximum gives the
    maximum (AWS's documented behaviour), below 1 raises the operation's own error."""
    if value is None:
        return default
    if value < 1:
        raise invalid(f"{member} must be a positive integer; got {value}.")
    return min(value, maximum)


_tokens: dict[tuple[str, str], PageTokens] = {}


def page_tokens(invalid_token_error: str) -> PageTokens:
    """The process's token signer, keyed by the server key of the current settings."""
    from forgeline.core.lifecycle import server_key
    from forgeline.core.settings import get_settings

    settings = get_settings()
    cache_key = (str(settings.data_dir), invalid_token_error)
    signer = _tokens.get(cache_key)
    if signer is None:
        signer = _tokens[cache_key] = PageTokens(server_key(settings), invalid_token_error)
    return signer


def request_page_tokens(ctx: RequestContext) -> PageTokens:
    """The token signer for this request, refusing tokens with the API's own error code."""
    from forgeline.core.protocol.catalog import api_spec

    return page_tokens(api_spec(ctx.service).invalid_token_error).for_request(ctx)
