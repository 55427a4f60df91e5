"""SigV4 for S3: who signed a request, and the chunk signatures of streamed uploads.

S3 signs differently from the JSON services in three ways: the canonical URI is the path
encoded once (not twice), the payload hash is whatever `x-amz-content-sha256` declares
(a hex digest, `UNSIGNED-PAYLOAD` or a `STREAMING-…` mode), and presigned URLs sign no
payload at all. The shared pieces (parsing, canonical query and headers, signing keys,
clock checks, key lookup) come from forgeline.core.auth.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote_to_bytes

from forgeline.core.auth import keys, sigv4
from forgeline.core.auth.errors import (
    IncompleteSignatureException,
    MissingAuthenticationTokenException,
    RequestExpired,
)
from forgeline.core.db import get_engine, session_scope
from forgeline.core.settings import Settings
from forgeline.s3 import auth_v2
from forgeline.s3.errors import S3Error, access_denied

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_MODES = (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_UNSIGNED_TRAILER)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SCOPE_MARKERS = ("/s3/aws4_request", "%2Fs3%2Faws4_request", "%2fs3%2faws4_request")


@dataclasses.dataclass(frozen=True)
class S3Caller:
    account_id: str
    principal_arn: str
    access_key_id: str
    region: str
    payload_mode: str  # a hex digest, UNSIGNED-PAYLOAD or one of STREAMING_MODES
    chunk_signer: ChunkSigner | None  # None when the secret is unknown (permissive mode)


def is_s3_signed(authorization: str | None, query_string: str) -> bool:
    """True when the request's credential scope names the `s3` service (or it carries
    S3's legacy signature, which no other service uses)."""
    if auth_v2.uses_v2(authorization, query_string):
        return True
    if authorization is not None:
        return "/s3/aws4_request" in authorization
    return "X-Amz-Credential=" in query_string and any(
        marker in query_string for marker in _SCOPE_MARKERS
    )


def authenticate(
    *,
    method: str,
    raw_path: str,
    query_string: str,
    headers: Iterable[tuple[str, str]],
    settings: Settings,
) -> S3Caller:
    """Verify the request's signature (the body is checked later, while it streams)."""
    header_list = list(headers)
    request = sigv4.IncomingRequest(
        method=method, path=raw_path, query=query_string, headers=header_list
    )
    if auth_v2.uses_v2(request.header("authorization"), query_string):
        return _authenticate_v2(method, raw_path, query_string, header_list, settings)
    try:
        parsed = sigv4.parse_authorization(request)
    except MissingAuthenticationTokenException:
        raise access_denied() from None
    except IncompleteSignatureException as error:
        raise _malformed(request, error.message) from None
    if parsed.service != "s3":
        raise _malformed(
            request,
            f"Credential should be scoped to correct service: 's3', not '{parsed.service}'.",
        )
    payload_mode = _payload_mode(request, parsed)
    try:
        sigv4.check_request_time(parsed)
    except RequestExpired as error:
        if parsed.presigned:
            raise access_denied("Request has expired") from None
        raise S3Error("RequestTimeTooSkewed", error.message, 403) from None
    record = _lookup(parsed.access_key_id, settings)
    if record is None:
        return _permissive(parsed.access_key_id, parsed.region, payload_mode, settings)
    key = sigv4.signing_key(record.secret_access_key, parsed.date, parsed.region, "s3")
    if not signature_matches(parsed, request, payload_mode, key):
        raise _mismatch(parsed.access_key_id)
    return S3Caller(
        account_id=record.account_id,
        principal_arn=record.principal_arn,
        access_key_id=parsed.access_key_id,
        region=parsed.region,
        payload_mode=payload_mode,
        chunk_signer=ChunkSigner(key, parsed.amz_date, parsed.credential_scope, parsed.signature),
    )


def _authenticate_v2(
    method: str,
    raw_path: str,
    query_string: str,
    headers: list[tuple[str, str]],
    settings: Settings,
) -> S3Caller:
    signed = auth_v2.parse_v2(method, raw_path, query_string, headers)
    auth_v2.check_time(signed)
    region = settings.default_region  # version 2 signatures name no region
    record = _lookup(signed.access_key_id, settings)
    if record is None:
        return _permissive(signed.access_key_id, region, UNSIGNED_PAYLOAD, settings)
    if not auth_v2.verify(signed, record.secret_access_key):
        raise _mismatch(signed.access_key_id)
    return S3Caller(
        account_id=record.account_id,
        principal_arn=record.principal_arn,
        access_key_id=signed.access_key_id,
        region=region,
        payload_mode=UNSIGNED_PAYLOAD,
        chunk_signer=None,
    )


def _permissive(access_key_id: str, region: str, payload_mode: str, settings: Settings) -> S3Caller:
    """An unknown key: the default account in permissive mode, else InvalidAccessKeyId."""
    if settings.auth != "permissive":
        raise S3Error(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            403,
            AWSAccessKeyId=access_key_id,
        )
    account = settings.default_account
    return S3Caller(
        account_id=account,
        principal_arn=f"arn:aws:iam::{account}:root",
        access_key_id=access_key_id,
        region=region,
        payload_mode=payload_mode,
        chunk_signer=None,
    )


def _mismatch(access_key_id: str) -> S3Error:
    return S3Error(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        403,
        AWSAccessKeyId=access_key_id,
    )


def _lookup(access_key_id: str, settings: Settings) -> keys.KeyRecord | None:
    from forgeline.core.lifecycle import server_key

    record = keys.secret_cache.get(str(get_engine().url), access_key_id)
    if record is None:
        with session_scope(readonly=True) as session:
            record = keys.lookup_secret(session, access_key_id, server_key(settings))
    return record


def _malformed(request: sigv4.IncomingRequest, message: str) -> S3Error:
    if request.header("authorization") is not None:
        return S3Error("AuthorizationHeaderMalformed", message)
    return S3Error("AuthorizationQueryParametersError", message)


def _payload_mode(request: sigv4.IncomingRequest, parsed: sigv4.ParsedAuth) -> str:
    declared = request.header("x-amz-content-sha256")
    if declared is None:
        if parsed.presigned:
            return UNSIGNED_PAYLOAD
        raise S3Error(
            "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
        )
    declared = declared.strip()
    if declared in (UNSIGNED_PAYLOAD, *STREAMING_MODES):
        return declared
    if _HEX64.fullmatch(declared.lower()):
        return declared.lower()
    raise S3Error(
        "InvalidArgument",
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a "
        "valid sha256 value.",
        ArgumentName="x-amz-content-sha256",
        ArgumentValue=declared,
    )


def canonical_uris(raw_path: str) -> list[str]:
    """The path as the client may have signed it: as sent, and as S3 re-encodes it.

    S3 encodes each segment once; clients that escape a little more or less than
    RFC 3986's unreserved set (`~`, `=`, `@` …) sign the path exactly as they sent it.
    """
    path = raw_path or "/"
    reencoded = quote(unquote_to_bytes(path), safe="/~")
    return list(dict.fromkeys([path, reencoded]))


def signature_matches(
    parsed: sigv4.ParsedAuth, request: sigv4.IncomingRequest, payload_mode: str, key: bytes
) -> bool:
    if "host" not in (name.lower() for name in parsed.signed_headers):
        return False
    headers = sigv4.canonical_headers(request, parsed.signed_headers)
    if headers is None:
        return False
    exclude = ("X-Amz-Signature",) if parsed.presigned else ()
    query = sigv4.canonical_query(request.query, exclude=exclude)
    matched = False
    for uri in canonical_uris(_text(request.path)):
        canonical = "\n".join(
            (
                request.method.upper(),
                uri,
                query,
                headers + "\n",
                ";".join(parsed.signed_headers),
                payload_mode,
            )
        )
        to_sign = sigv4.string_to_sign(parsed.amz_date, parsed.credential_scope, canonical)
        expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        # Compare every candidate so timing does not tell which one matched.
        matched = hmac.compare_digest(expected, parsed.signature) or matched
    return matched


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


class ChunkSigner:
    """The signatures an aws-chunked body must carry, each chained to the previous one."""

    def __init__(self, key: bytes, amz_date: str, scope: str, seed_signature: str) -> None:
        self._key = key
        self._amz_date = amz_date
        self._scope = scope
        self.previous = seed_signature

    def _sign(self, to_sign: str) -> str:
        return hmac.new(self._key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()

    def check_chunk_digest(self, chunk_sha256: str, signature: str) -> bool:
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256-PAYLOAD",
                self._amz_date,
                self._scope,
                self.previous,
                EMPTY_SHA256,
                chunk_sha256,
            )
        )
        expected = self._sign(to_sign)
        self.previous = expected
        return hmac.compare_digest(expected, signature)

    def check_trailer(self, trailer_text: bytes, signature: str) -> bool:
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256-TRAILER",
                self._amz_date,
                self._scope,
                self.previous,
                hashlib.sha256(trailer_text).hexdigest(),
            )
        )
        return hmac.compare_digest(self._sign(to_sign), signature)
