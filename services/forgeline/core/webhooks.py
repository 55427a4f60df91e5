"""Webhook delivery for triggers whose destination is an http(s) URL (CodeCommit's
repository triggers, CodeDeploy's deployment group triggers).

A delivery is a POST of the JSON document AWS hands to a trigger's SNS topic or Lambda
function, signed so the receiver can tell it came from this installation:
`X-Forgeline-Signature: sha256=<hex HMAC-SHA256 of the body>`, keyed by a secret of the
trigger's owner (a repository's webhook secret: services/forgeline/codecommit/triggers.py).

Deliveries run as background jobs (kind `repo.deliver_webhook`, named when only
repositories had them): the body and headers
are fixed when the job is enqueued, so a retry sends the very same bytes, and the
worker needs no secret. Network errors, timeouts, 408, 429 and 5xx answers are retried
with a growing pause; any other answer is final. Only the configured URL is contacted:
redirects are not followed and proxy settings from the environment are ignored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
import urllib.parse
from typing import Any

import httpx
from sqlalchemy.orm import Session

from forgeline.core.work.jobs import Heartbeat, RetryableJobError, enqueue, job_kind

JOB_KIND = "repo.deliver_webhook"
SIGNATURE_HEADER = "X-Forgeline-Signature"
EVENT_HEADER = "X-Forgeline-Event"
DELIVERY_HEADER = "X-Forgeline-Delivery"
USER_AGENT = "Forgeline-Webhook/1"

MAX_ATTEMPTS = 5
TIMEOUT_SECONDS = 10.0
FIRST_RETRY_PAUSE_SECONDS = 0.5  # then doubling: 0.5, 1, 2, 4 s before attempts 2..5
MAX_URL_CHARS = 2048
_RETRYABLE_STATUSES = {408, 429}


def is_webhook_url(destination: str) -> bool:
    return destination.startswith(("http://", "https://"))


def valid_url(destination: str) -> bool:
    """An absolute http(s) URL with a host and no credentials or whitespace."""
    if len(destination) > MAX_URL_CHARS or any(ch.isspace() for ch in destination):
        return False
    try:
        parts = urllib.parse.urlsplit(destination)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and parts.username is None
        and parts.password is None
    )


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """What a receiver runs: does the signature header match this body?"""
    return signature is not None and hmac.compare_digest(sign(secret, body), signature)


def request_headers(secret: str, body: bytes, event_name: str, delivery_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, body),
        EVENT_HEADER: event_name,
        DELIVERY_HEADER: delivery_id,
    }


@dataclasses.dataclass(frozen=True)
class Outcome:
    ok: bool
    retryable: bool
    message: str
    status: int | None = None


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    """One delivery attempt."""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return Outcome(False, True, f"The request to {url} timed out after {timeout:g} seconds.")
    except httpx.HTTPError as exc:
        return Outcome(False, True, f"Could not deliver to {url}: {exc or type(exc).__name__}.")
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True, False, f"HTTP {status}", status)
    retryable = status >= 500 or status in _RETRYABLE_STATUSES
    return Outcome(False, retryable, f"{url} answered HTTP {status}.", status)


def enqueue_delivery(session: Session, url: str, body: bytes, headers: dict[str, str]) -> str:
    """Queue a delivery in `session`'s transaction; it starts once that commits."""
    payload = {"url": url, "body": body.decode("utf-8"), "headers": headers}
    return enqueue(session, JOB_KIND, payload, max_attempts=MAX_ATTEMPTS)


def retry_pause(attempt: int) -> float:
    return 0.0 if attempt <= 1 else FIRST_RETRY_PAUSE_SECONDS * 2 ** (attempt - 2)


@job_kind(JOB_KIND)
def deliver(payload: dict[str, Any], heartbeat: Heartbeat) -> dict[str, Any]:
    pause = retry_pause(heartbeat.attempt)
    if pause:
        time.sleep(pause)
        heartbeat()
    outcome = post(
        payload["url"], payload["body"].encode("utf-8"), payload["headers"], TIMEOUT_SECONDS
    )
    if outcome.ok:
        return {"status": outcome.status, "attempt": heartbeat.attempt}
    if outcome.retryable:
        raise RetryableJobError(outcome.message)
    raise RuntimeError(outcome.message)
