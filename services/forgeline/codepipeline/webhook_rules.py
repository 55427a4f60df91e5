"""A pipeline webhook's rules (pure): who may call it, and which calls start the pipeline.

- Authentication: GITHUB_HMAC checks GitHub's signature header (`X-Hub-Signature-256`,
  HMAC-SHA256 of the body under SecretToken, or the older SHA-1 `X-Hub-Signature`); IP
  checks the caller's address against AllowedIPRange (a CIDR block); UNAUTHENTICATED
  accepts any call.
- Filters: every filter's jsonPath must select a value of the JSON body, equal to its
  matchEquals (when given) once `{Key}` in it is replaced by the target action's
  configuration value of Key (AWS's example: `$.ref` equals `refs/heads/{Branch}`).

JSON paths are the subset AWS's examples use: `$`, then `.name` or `['name']` members and
`[n]` indexes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\['([^']*)'\]|\[(\d+)\]")
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
_MISSING = object()


class FilterPatternError(ValueError):
    """A jsonPath outside the supported subset."""


class AuthenticationError(ValueError):
    """The call did not prove it may trigger the webhook."""


def parse_path(path: str) -> tuple[str | int, ...]:
    """The members and indexes of a JSON path (FilterPatternError when it is not one)."""
    if not path.startswith("$"):
        raise FilterPatternError(f"JSON path {path!r} must start with '$'")
    steps: list[str | int] = []
    position = 1
    while position < len(path):
        found = _STEP.match(path, position)
        if found is None:
            raise FilterPatternError(
                f"JSON path {path!r} is not supported at {path[position:]!r}: use .member, "
                "['member'] and [index] steps"
            )
        member, quoted, index = found.groups()
        steps.append(int(index) if index is not None else (member if member else quoted))
        position = found.end()
    return tuple(steps)


def select(document: Any, path: str) -> Any:
    """The value the path selects, or _MISSING."""
    value = document
    for step in parse_path(path):
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return _MISSING
            value = value[step]
        else:
            if not isinstance(value, dict) or step not in value:
                return _MISSING
            value = value[step]
    return value


def expand(match_equals: str, configuration: Mapping[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: configuration.get(m.group(1), m.group(0)), match_equals)


def matches(
    body: Any, filters: Sequence[Mapping[str, str]], configuration: Mapping[str, str]
) -> bool:
    for rule in filters:
        value = select(body, rule["jsonPath"])
        if value is _MISSING:
            return False
        wanted = rule.get("matchEquals")
        if wanted is not None:
            shown = value if isinstance(value, str) else json.dumps(value)
            if shown != expand(wanted, configuration):
                return False
    return True


def authenticate(
    kind: str,
    configuration: Mapping[str, str],
    body: bytes,
    headers: Mapping[str, str],
    client_ip: str,
) -> None:
    if kind == "UNAUTHENTICATED":
        return
    if kind == "IP":
        network = ipaddress.ip_network(configuration["AllowedIPRange"], strict=False)
        if ipaddress.ip_address(client_ip) not in network:
            raise AuthenticationError(f"{client_ip} is not in {network}")
        return
    secret = configuration.get("SecretToken", "").encode()
    for header, algorithm in (
        ("x-hub-signature-256", hashlib.sha256),
        ("x-hub-signature", hashlib.sha1),
    ):
        given = headers.get(header)
        if given is not None:
            prefix, _, digest = given.partition("=")
            expected = hmac.new(secret, body, algorithm).hexdigest()
            if prefix in ("sha256", "sha1") and hmac.compare_digest(digest, expected):
                return
            raise AuthenticationError("the signature does not match the webhook's secret")
    raise AuthenticationError("the call carries no X-Hub-Signature-256 signature")


def check_definition(authentication: str, configuration: Mapping[str, str]) -> str | None:
    """What is wrong with the authentication settings (None when nothing)."""
    if authentication == "GITHUB_HMAC" and not configuration.get("SecretToken"):
        return "GITHUB_HMAC authentication needs a SecretToken."
    if authentication == "IP":
        allowed = configuration.get("AllowedIPRange")
        if not allowed:
            return "IP authentication needs an AllowedIPRange (a CIDR block)."
        try:
            ipaddress.ip_network(allowed, strict=False)
        except ValueError:
            return f"AllowedIPRange {allowed!r} is not a CIDR block."
    return None
