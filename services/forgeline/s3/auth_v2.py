"""S3's legacy signature (version 2), which botocore still uses for presigned URLs.

`generate_presigned_url` on an s3 client without `signature_version="s3v4"` makes
`?AWSAccessKeyId=…&Signature=…&Expires=…` URLs; AWS still accepts them, so this does
too. The signature is base64(HMAC-SHA1(secret, string to sign)) over the method, three
standard headers, the `x-amz-*` headers and the resource (path plus S3 subresources).
"""

from __future__ import annotations

import base64
import dataclasses
import email.utils
import hashlib
import hmac
import time
from urllib.parse import unquote

from forgeline.s3.errors import S3Error, access_denied

# Query parameters that are part of the signed resource (the list AWS documents).
SIGNED_SUBRESOURCES = frozenset(
    (
        "accelerate acl analytics cors defaultObjectAcl delete inventory lifecycle location "
        "logging metrics notification object-lock partNumber policy replication "
        "requestPayment response-cache-control response-content-disposition "
        "response-content-encoding response-content-language response-content-type "
        "response-expires restore select select-type storageClass tagging torrent uploadId "
        "uploads versionId versioning versions website"
    ).split()
)
MAX_SKEW_SECONDS = 15 * 60


@dataclasses.dataclass(frozen=True)
class V2Auth:
    access_key_id: str
    signature: str
    string_to_sign: str
    presigned: bool
    expires: int | None  # epoch seconds, presigned URLs only
    date: str | None  # the Date header, header-signed requests only


def uses_v2(authorization: str | None, query_string: str) -> bool:
    if authorization is not None:
        return authorization.startswith("AWS ")
    return "AWSAccessKeyId=" in query_string and "Signature=" in query_string


def _query_pairs(query_string: str) -> list[tuple[str, str]]:
    pairs = []
    for piece in query_string.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def parse_v2(
    method: str, raw_path: str, query_string: str, headers: list[tuple[str, str]]
) -> V2Auth:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(value.strip())
    query = _query_pairs(query_string)
    params = dict(query)
    authorization = values.get("authorization", [None])[0]
    if authorization is not None:
        credential = authorization[len("AWS ") :]
        access_key_id, sep, signature = credential.rpartition(":")
        if not sep or not access_key_id or not signature:
            raise S3Error(
                "InvalidArgument",
                "AWS authorization header is invalid.",
                ArgumentName="Authorization",
                ArgumentValue=authorization,
            )
        date = values.get("date", [""])[0]
        if "x-amz-date" in values:
            date = ""  # x-amz-date takes the Date header's place, and is signed below
        presigned, expires = False, None
        date_line = date
    else:
        access_key_id, signature = params["AWSAccessKeyId"], params["Signature"]
        expires_text = params.get("Expires", "")
        if not expires_text.isdigit():
            raise S3Error(
                "AuthorizationQueryParametersError",
                "Query-string authentication requires the Expires parameter.",
            )
        presigned, expires, date = True, int(expires_text), None
        date_line = expires_text

    def standard(name: str) -> str:
        found = values.get(name)
        if found:
            return found[0]
        return params.get(name, "") if presigned else ""

    amz = {name: ",".join(found) for name, found in values.items() if name.startswith("x-amz-")}
    if presigned:
        for name, value in query:
            if name.lower().startswith("x-amz-"):
                amz.setdefault(name.lower(), value)
    lines = [method.upper(), standard("content-md5"), standard("content-type"), date_line]
    lines += [f"{name}:{amz[name]}" for name in sorted(amz)]
    subresources = sorted(
        (name, value) for name, value in _raw_pairs(query_string) if name in SIGNED_SUBRESOURCES
    )
    resource = raw_path or "/"
    if subresources:
        resource += "?" + "&".join(
            name if value is None else f"{name}={value}" for name, value in subresources
        )
    return V2Auth(
        access_key_id=access_key_id,
        signature=signature,
        string_to_sign="\n".join([*lines, resource]),
        presigned=presigned,
        expires=expires,
        date=date,
    )


def _raw_pairs(query_string: str) -> list[tuple[str, str | None]]:
    """Subresource (name, decoded value or None when it has no '=') pairs, as signed."""
    pairs: list[tuple[str, str | None]] = []
    for piece in query_string.split("&"):
        if not piece:
            continue
        name, sep, value = piece.partition("=")
        pairs.append((name, unquote(value) if sep else None))
    return pairs


def check_time(auth: V2Auth, now: float | None = None) -> None:
    now = time.time() if now is None else now
    if auth.presigned:
        assert auth.expires is not None
        if auth.expires < now:
            raise access_denied("Request has expired")
        return
    if auth.date:
        try:
            signed_at = email.utils.parsedate_to_datetime(auth.date).timestamp()
        except (TypeError, ValueError):
            raise access_denied("AWS authentication requires a valid Date header") from None
        if abs(signed_at - now) > MAX_SKEW_SECONDS:
            raise S3Error(
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
                403,
            )


def verify(auth: V2Auth, secret: str) -> bool:
    digest = hmac.new(secret.encode(), auth.string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    expected = base64.b64encode(digest).decode("ascii")
    return hmac.compare_digest(expected, auth.signature)
