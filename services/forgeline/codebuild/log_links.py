"""Links to a build's log text on this server: `Build.logs.deepLink`.

AWS points deepLink at the CloudWatch console; here it is a URL this server answers
with the log as plain text (services/forgeline/codebuild/http.py). The link carries a token made with
the server key, so knowing a build id is not enough to read its log.
"""

from __future__ import annotations

import hashlib
import hmac

from forgeline.core.settings import Settings

ROUTE_PREFIX = "/logs/builds"


def base_url(settings: Settings) -> str:
    """Where clients reach this server (as clone URLs do)."""
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def log_token(key: bytes, build_id: str) -> str:
    return hmac.new(key, f"build-log:{build_id}".encode(), hashlib.sha256).hexdigest()[:40]


def token_matches(key: bytes, build_id: str, token: str) -> bool:
    return hmac.compare_digest(log_token(key, build_id), token)


def deep_link(settings: Settings, key: bytes, build_id: str, build_uuid: str) -> str:
    token = log_token(key, build_id)
    return f"{base_url(settings)}{ROUTE_PREFIX}/{build_uuid}?token={token}"
