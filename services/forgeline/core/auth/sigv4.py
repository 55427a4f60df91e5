"""Verification of AWS Signature Version 4 on incoming requests, and CodeCommit git passwords.

Pure functions: no database, no clock unless none is passed. The canonical request is
rebuilt the way botocore's `SigV4Auth` builds it on the client, from the parts of the
request the client said it signed (its SignedHeaders and its X-Amz-Date), so that any
header a proxy adds on the way cannot break a valid signature.

Typical use::

    request = IncomingRequest(method, raw_path, raw_query, headers, body=body)
    parsed = parse_authorization(request)          # MissingAuthentication / IncompleteSignature
    check_request_time(parsed)                     # RequestExpired
    secret = <look up parsed.access_key_id>        # unknown -> UnrecognizedClientException
    if not verify(parsed, secret, request): raise InvalidSignatureException()
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import functools
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from forgeline.core.auth.errors import (
    IncompleteSignatureException,
    MissingAuthenticationTokenException,
    RequestExpired,
)

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
DEFAULT_MAX_SKEW = dt.timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600  # AWS refuses presigned requests valid for over a week

# The names the rest of the code base uses for the two parse failures.
MissingAuthentication = MissingAuthenticationTokenException
IncompleteSignature = IncompleteSignatureException

_QUERY_SAFE = "-_.~"  # unreserved characters of RFC 3986, as in botocore
_PATH_SAFE = "/~"
_PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
# Parameters that mean "this query string carries a signature"; X-Amz-Date alone does not.
_PRESIGN_MARKERS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature")
_AMZ_DATE_RE = re.compile(r"\d{8}T\d{6}Z")
_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}")
_GIT_PASSWORD_RE = re.compile(r"(\d{8}T\d{6})Z([0-9a-f]{64})")


# --- the request as received ---------------------------------------------------------------


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return value


def normalize_headers(headers: Any) -> tuple[tuple[str, str], ...]:
    """(lower-case name, value) pairs, keeping repeated headers.

    Accepts a list of pairs (str or bytes), a plain mapping, or the multi-dicts of
    Starlette (`.raw`), Werkzeug/multidict (`.items()` with repeats) and botocore.
    """
    raw = getattr(headers, "raw", None)
    if isinstance(raw, list):
        # Starlette decodes header bytes as latin-1; the raw bytes let UTF-8 values
        # compare equal to what the client signed.
        items: Iterable[Any] = raw
    elif hasattr(headers, "multi_items"):
        items = headers.multi_items()
    elif hasattr(headers, "items"):
        items = headers.items()
    else:
        items = headers
    return tuple((_text(name).lower(), _text(value)) for name, value in items)


@dataclasses.dataclass(frozen=True)
class IncomingRequest:
    """An HTTP request exactly as it arrived.

    `path` and `query` are the raw, still percent-encoded target (ASGI `raw_path` and
    `query_string`). Give `body`, or `payload_hash` (hex SHA-256 of the body) when the
    body was hashed while streaming; with neither the body counts as empty.
    """

    method: str
    path: str | bytes
    query: str | bytes = ""
    headers: Any = ()
    body: bytes | None = None
    payload_hash: str | None = None
    header_pairs: tuple[tuple[str, str], ...] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "header_pairs", normalize_headers(self.headers))

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.header_pairs if key == name]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    def body_sha256(self) -> str:
        if self.payload_hash is not None:
            return self.payload_hash.lower()
        return hashlib.sha256(self.body or b"").hexdigest()


def _split_query(raw: str | bytes) -> list[tuple[bytes, bytes]]:
    """Decoded (key, value) byte pairs of a raw query string, in order.

    `+` means a space, as in the form encoding botocore's request preparer uses for
    `params`; a literal plus arrives as %2B.
    """
    data = raw.encode("utf-8") if isinstance(raw, str) else raw
    pairs = []
    for piece in data.split(b"&"):
        if not piece:
            continue
        key, _, value = piece.partition(b"=")
        pairs.append(
            (unquote_to_bytes(key.replace(b"+", b" ")), unquote_to_bytes(value.replace(b"+", b" ")))
        )
    return pairs


def _query_params(raw: str | bytes) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in _split_query(raw):
        params.setdefault(_text(key), _text(value))
    return params


# --- parsing ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ParsedAuth:
    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str  # signing time, YYYYMMDDTHHMMSSZ
    session_token: str | None = None
    presigned: bool = False
    expires: int | None = None  # seconds; presigned requests only

    @property
    def credential_scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


def parse_authorization(request: IncomingRequest) -> ParsedAuth:
    """Read SigV4 authentication from the Authorization header or the query string.

    Raises `MissingAuthentication` when the request carries none at all and
    `IncompleteSignature` when what it carries is malformed.
    """
    authorization = request.header("authorization")
    query = _query_params(request.query)
    presigned = any(name in query for name in _PRESIGN_MARKERS)
    if authorization is None and not presigned:
        raise MissingAuthentication()
    if authorization is not None and presigned:
        raise IncompleteSignature(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter "
            "or the Authorization header should be specified"
        )
    if authorization is not None:
        return _parse_header_auth(request, authorization)
    return _parse_query_auth(request, query)


def _parse_header_auth(request: IncomingRequest, authorization: str) -> ParsedAuth:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM and algorithm.startswith("AWS4-"):
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{algorithm}'.")
    fields: dict[str, str] = {}
    if algorithm == ALGORITHM:
        for part in rest.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise IncompleteSignature(
                    f"'{part}' not a valid key=value pair (missing equal-sign) in "
                    f"Authorization header: '{authorization}'."
                )
            fields[name.strip()] = value.strip()
    amz_date = _header_amz_date(request)
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    if amz_date is None:
        problems.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if problems:
        # Echo the header like AWS does, but never another scheme's credentials.
        shown = authorization if algorithm == ALGORITHM else f"{algorithm} ..."
        raise IncompleteSignature(" ".join(problems) + f" Authorization={shown}")
    assert amz_date is not None
    access_key_id, date, region, service = _parse_credential(fields["Credential"], amz_date)
    return ParsedAuth(
        access_key_id=access_key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=_parse_signed_headers(fields["SignedHeaders"]),
        signature=fields["Signature"],
        amz_date=amz_date,
        session_token=request.header("x-amz-security-token"),
    )


def _parse_query_auth(request: IncomingRequest, query: dict[str, str]) -> ParsedAuth:
    missing = [f"'{name}'" for name in (*_PRESIGN_PARAMS, "X-Amz-Expires") if not query.get(name)]
    if missing:
        raise IncompleteSignature(
            f"AWS query-string parameters must include {', '.join(missing)}. "
            "Re-examine the query-string parameters."
        )
    if query["X-Amz-Algorithm"] != ALGORITHM:
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{query['X-Amz-Algorithm']}'.")
    amz_date = _valid_amz_date(query["X-Amz-Date"])
    try:
        expires = int(query["X-Amz-Expires"])
    except ValueError:
        raise IncompleteSignature("X-Amz-Expires should be a number") from None
    if expires < 0:
        raise IncompleteSignature("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES:
        raise IncompleteSignature(
            f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES}"
        )
    access_key_id, date, region, service = _parse_credential(query["X-Amz-Credential"], amz_date)
    return ParsedAuth(
        access_key_id=access_key_id,
        date=date,
        region=region,
        service=service,
        signed_headers=_parse_signed_headers(query["X-Amz-SignedHeaders"]),
        signature=query["X-Amz-Signature"],
        amz_date=amz_date,
        session_token=query.get("X-Amz-Security-Token") or request.header("x-amz-security-token"),
        presigned=True,
        expires=expires,
    )


def _header_amz_date(request: IncomingRequest) -> str | None:
    """The signing time: X-Amz-Date, else the Date header (botocore signs either)."""
    amz_date = request.header("x-amz-date")
    if amz_date is not None:
        return _valid_amz_date(amz_date.strip())
    date = request.header("date")
    if date is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        raise IncompleteSignature(f"Date header is not a valid HTTP date: '{date}'.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime(AMZ_DATE_FORMAT)


def _valid_amz_date(value: str) -> str:
    try:
        _parse_amz_date(value)
    except ValueError:
        raise IncompleteSignature(
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        ) from None
    return value


@functools.lru_cache(maxsize=256)
def _parse_amz_date(value: str) -> dt.datetime:
    # Cached: every request parses its date twice, clients reuse a date for a second,
    # and strptime is a measurable part of a quick API call.
    if not _AMZ_DATE_RE.fullmatch(value):
        raise ValueError(value)
    return dt.datetime(
        int(value[0:4]),
        int(value[4:6]),
        int(value[6:8]),
        int(value[9:11]),
        int(value[11:13]),
        int(value[13:15]),
        tzinfo=dt.UTC,
    )


def _parse_credential(credential: str, amz_date: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5:
        raise IncompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{credential}'"
        )
    access_key_id, date, region, service, terminator = parts
    if not access_key_id or not region or not service:
        raise IncompleteSignature(f"Credential has an empty element: '{credential}'")
    if terminator != TERMINATOR:
        raise IncompleteSignature(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{terminator}'."
        )
    if date != amz_date[:8]:
        raise IncompleteSignature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    return access_key_id, date, region, service


def _parse_signed_headers(value: str) -> tuple[str, ...]:
    names = tuple(value.split(";"))
    if not all(names):
        raise IncompleteSignature(f"SignedHeaders contains an empty header name: '{value}'")
    return names


# --- canonical request --------------------------------------------------------------------


def _remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 dot-segment removal, also dropping empty segments as AWS does."""
    if not path:
        return b"/"
    kept: list[bytes] = []
    for segment in path.split(b"/"):
        if segment in (b"", b"."):
            continue
        if segment == b"..":
            if kept:
                kept.pop()
        else:
            kept.append(segment)
    leading = b"/" if path.startswith(b"/") else b""
    trailing = b"/" if path.endswith(b"/") and kept else b""
    return leading + b"/".join(kept) + trailing


def canonical_uri(raw_path: str | bytes) -> str:
    """The path as botocore puts it in the canonical request.

    botocore signs the already percent-encoded path and encodes it once more, so a
    `%2F` the client sent is `%252F` here.
    """
    path = raw_path.encode("utf-8") if isinstance(raw_path, str) else raw_path
    return quote(_remove_dot_segments(path), safe=_PATH_SAFE)


def canonical_query(raw_query: str | bytes, *, exclude: Iterable[str] = ()) -> str:
    excluded = {name.encode("utf-8") for name in exclude}
    encoded = sorted(
        (quote(key, safe=_QUERY_SAFE), quote(value, safe=_QUERY_SAFE))
        for key, value in _split_query(raw_query)
        if key not in excluded
    )
    return "&".join(f"{key}={value}" for key, value in encoded)


def canonical_headers(request: IncomingRequest, signed_headers: Iterable[str]) -> str | None:
    """`name:value` lines of the signed headers, or None if one of them is absent."""
    lines = []
    for name in signed_headers:
        values = request.header_values(name)
        if not values:
            return None
        joined = ",".join(" ".join(value.split()) for value in values)
        lines.append(f"{name.lower()}:{joined}")
    return "\n".join(lines)


def canonical_request(
    parsed: ParsedAuth, request: IncomingRequest, payload_hash: str
) -> str | None:
    """The canonical request the client signed, if it could have signed this request."""
    headers = canonical_headers(request, parsed.signed_headers)
    if headers is None:
        return None
    exclude = ("X-Amz-Signature",) if parsed.presigned else ()
    return "\n".join(
        (
            request.method.upper(),
            canonical_uri(request.path),
            canonical_query(request.query, exclude=exclude),
            headers + "\n",
            ";".join(parsed.signed_headers),
            payload_hash,
        )
    )


def _payload_hashes(parsed: ParsedAuth, request: IncomingRequest) -> list[str]:
    """Payload hashes the client may have signed with; empty if the body was altered."""
    declared = request.header("x-amz-content-sha256")
    actual = request.body_sha256()
    if declared is not None:
        declared = declared.strip()
        if _HEX64_RE.fullmatch(declared) and declared.lower() != actual:
            return []  # the signature covers the declared hash, not this body
        return [declared]
    if parsed.presigned:
        # Presigned URLs are often signed without knowing the body (S3 style).
        return [actual, UNSIGNED_PAYLOAD]
    return [actual]


# --- signing ------------------------------------------------------------------------------


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


# A key is valid for a whole day and scope, so clients reuse it for every request:
# cached, the four HMACs run once a day per key instead of per request.
@functools.lru_cache(maxsize=1024)
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(f"AWS4{secret_key}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, TERMINATOR)


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def _signature(secret_key: str, date: str, region: str, service: str, to_sign: str) -> str:
    key = signing_key(secret_key, date, region, service)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def verify(parsed: ParsedAuth, secret_key: str, request: IncomingRequest) -> bool:
    """True when `parsed.signature` is this request's signature under `secret_key`."""
    if "host" not in (name.lower() for name in parsed.signed_headers):
        return False  # AWS requires the Host header to be signed
    matched = False
    for payload_hash in _payload_hashes(parsed, request):
        canonical = canonical_request(parsed, request, payload_hash)
        if canonical is None:
            return False
        to_sign = string_to_sign(parsed.amz_date, parsed.credential_scope, canonical)
        expected = _signature(secret_key, parsed.date, parsed.region, parsed.service, to_sign)
        # Keep comparing after a match so timing does not reveal which candidate hit.
        matched = _same(expected, parsed.signature) or matched
    return matched


# --- signing time -------------------------------------------------------------------------


def _utc(now: dt.datetime | None) -> dt.datetime:
    """`now` in UTC (naive means UTC), or the current time."""
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.UTC)
    return now.astimezone(dt.UTC)


def _span(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds // 60} min." if seconds % 60 == 0 else f"{seconds} sec."


def _check_window(
    amz_date: str, now: dt.datetime | None, past: dt.timedelta, future: dt.timedelta
) -> None:
    try:
        signed_at = _parse_amz_date(amz_date)
    except ValueError:
        raise IncompleteSignature(
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'."
        ) from None
    now = _utc(now).replace(microsecond=0)
    stamp = now.strftime(AMZ_DATE_FORMAT)
    earliest = now - past
    if signed_at < earliest:
        raise RequestExpired(
            f"Signature expired: {amz_date} is now earlier than "
            f"{earliest.strftime(AMZ_DATE_FORMAT)} ({stamp} - {_span(past)})"
        )
    latest = now + future
    if signed_at > latest:
        raise RequestExpired(
            f"Signature not yet current: {amz_date} is still later than "
            f"{latest.strftime(AMZ_DATE_FORMAT)} ({stamp} + {_span(future)})"
        )


def check_clock_skew(
    amz_date: str, now: dt.datetime | None = None, max_skew: dt.timedelta = DEFAULT_MAX_SKEW
) -> None:
    """Raise `RequestExpired` unless `amz_date` is within `max_skew` of `now`."""
    _check_window(amz_date, now, max_skew, max_skew)


def check_request_time(
    parsed: ParsedAuth, now: dt.datetime | None = None, max_skew: dt.timedelta = DEFAULT_MAX_SKEW
) -> None:
    """Clock-skew check for header auth; X-Amz-Expires window for presigned requests."""
    if parsed.presigned and parsed.expires is not None:
        _check_window(parsed.amz_date, now, dt.timedelta(seconds=parsed.expires), max_skew)
    else:
        check_clock_skew(parsed.amz_date, now, max_skew)


# --- CodeCommit git credentials -----------------------------------------------------------


def _git_signature(secret_key: str, repo_path: str, host: str, region: str, stamp: str) -> str:
    # The timestamp in the string to sign has no trailing Z here, unlike API requests:
    # both AWS clients that make these passwords sign it that way.
    canonical = f"GIT\n{repo_path}\n\nhost:{host}\n\nhost\n"
    scope = f"{stamp[:8]}/{region}/codecommit/{TERMINATOR}"
    return _signature(
        secret_key, stamp[:8], region, "codecommit", string_to_sign(stamp, scope, canonical)
    )


def git_password(
    secret_key: str, repo_path: str, host: str, region: str, now: dt.datetime | None = None
) -> str:
    """The HTTP Basic password CodeCommit's git clients compute for a repository.

    `repo_path` is the path of the clone URL (`/v1/repos/<name>`), `host` the host the
    client signed (with the port for git-remote-codecommit, without it for the AWS CLI's
    credential helper).
    """
    stamp = _utc(now).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}Z{_git_signature(secret_key, repo_path, host, region, stamp)}"


def _host_variants(host: str) -> list[str]:
    hostname = host
    if host.startswith("["):
        hostname = host[: host.find("]") + 1] or host
    elif host.count(":") == 1:
        hostname = host.split(":", 1)[0]
    # The AWS CLI helper cuts at the first colon whatever the host looks like.
    variants = [host, hostname, host.split(":", 1)[0]]
    return list(dict.fromkeys(variants))


def verify_git_password(
    secret_key: str,
    password: str,
    repo_path: str,
    host: str,
    regions: str | Iterable[str],
    now: dt.datetime | None = None,
    max_skew: dt.timedelta = DEFAULT_MAX_SKEW,
) -> str | None:
    """The region the password was made for, or None if it is not valid.

    The password does not name its region, so every region served is tried, each with
    the Host as received and without its port.
    """
    match = _GIT_PASSWORD_RE.fullmatch(password)
    if match is None:
        return None
    stamp, signature = match.groups()
    try:
        check_clock_skew(f"{stamp}Z", now, max_skew)
    except (RequestExpired, IncompleteSignature):
        return None
    found = None
    for region in [regions] if isinstance(regions, str) else regions:
        for candidate in _host_variants(host):
            expected = _git_signature(secret_key, repo_path, candidate, region, stamp)
            if _same(expected, signature) and found is None:
                found = region
    return found


def split_git_username(username: str) -> tuple[str, str | None]:
    """(access key id, session token) from a git user name `AKID` or `AKID%TOKEN`."""
    access_key_id, sep, token = username.partition("%")
    return access_key_id, (token if sep else None)
