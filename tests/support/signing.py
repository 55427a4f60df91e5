"""Raw, SigV4-signed HTTP requests, for what boto3 will not send (bad JSON, wrong types, …)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def signed_headers(
    url: str,
    body: bytes,
    *,
    target: str | None,
    signing_name: str,
    credentials: tuple[str, str],
    region: str = "us-east-1",
    content_type: str = "application/x-amz-json-1.1",
    when: dt.datetime | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    headers = {"Content-Type": content_type, **(extra or {})}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=url + "/", data=body, headers=headers)
    signer = SigV4Auth(Credentials(*credentials), signing_name, region)
    if when is not None:
        # botocore stamps the request with "now"; sign at another time to test clock skew.
        import botocore.auth

        original = botocore.auth.datetime.datetime

        class FrozenDatetime(original):  # type: ignore[misc, valid-type]
            @classmethod
            def utcnow(cls) -> Any:
                return when.replace(tzinfo=None)

            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return when if tz else when.replace(tzinfo=None)

        botocore.auth.datetime.datetime = FrozenDatetime
        try:
            signer.add_auth(request)
        finally:
            botocore.auth.datetime.datetime = original
    else:
        signer.add_auth(request)
    return dict(request.headers.items())


def signed_post(
    url: str,
    body: bytes,
    *,
    target: str | None,
    signing_name: str,
    credentials: tuple[str, str],
    **kwargs: Any,
) -> httpx.Response:
    headers = signed_headers(
        url, body, target=target, signing_name=signing_name, credentials=credentials, **kwargs
    )
    return httpx.post(url + "/", content=body, headers=headers, timeout=30)
