"""SigV4 verification against requests signed by botocore's own signers, and CodeCommit
git passwords against git-remote-codecommit (the AWS CLI's credential helper, which runs
as a process, is checked in tests/integration/codecommit/test_git_passwords.py)."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
from urllib.parse import unquote, urlsplit

import git_remote_codecommit
import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from forgeline.core.auth import sigv4
from forgeline.core.auth.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
)
from forgeline.core.auth.sigv4 import (
    IncomingRequest,
    IncompleteSignature,
    MissingAuthentication,
    RequestExpired,
    check_clock_skew,
    check_request_time,
    git_password,
    parse_authorization,
    split_git_username,
    verify,
    verify_git_password,
)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CREDS = Credentials(ACCESS_KEY, SECRET)
ENDPOINT = "http://127.0.0.1:4750"
JSON_HEADERS = {
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "CodeBuild_20161006.StartBuild",
}


def _wire(request: AWSRequest, url: str) -> IncomingRequest:
    """The request as a server receives it: prepared by botocore, plus the Host header
    the HTTP client adds, path and query still percent-encoded."""
    prepared = request.prepare()
    split = urlsplit(prepared.url)
    headers = list(prepared.headers.items()) + [("Host", urlsplit(url).netloc)]
    body = prepared.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    return IncomingRequest(
        method=prepared.method,
        path=split.path.encode("utf-8"),
        query=split.query,
        headers=headers,
        body=body or b"",
    )


def signed(
    method: str = "POST",
    url: str = ENDPOINT + "/",
    *,
    headers: dict[str, str] | None = None,
    data: bytes | str = b"",
    params: dict[str, str] | None = None,
    credentials: Credentials = CREDS,
    service: str = "codebuild",
    region: str = "us-east-1",
    context: dict[str, object] | None = None,
) -> IncomingRequest:
    request = AWSRequest(method=method, url=url, headers=headers or {}, data=data, params=params)
    request.context.update(context or {})
    SigV4Auth(credentials, service, region).add_auth(request)
    return _wire(request, url)


def presigned(
    method: str = "GET",
    url: str = ENDPOINT + "/",
    *,
    data: bytes | str = b"",
    params: dict[str, str] | None = None,
    expires: int = 300,
    credentials: Credentials = CREDS,
) -> IncomingRequest:
    request = AWSRequest(method=method, url=url, data=data, params=params)
    SigV4QueryAuth(credentials, "codebuild", "us-east-1", expires=expires).add_auth(request)
    return _wire(request, url)


def accepted(request: IncomingRequest, secret: str = SECRET) -> bool:
    return verify(parse_authorization(request), secret, request)


def replaced(request: IncomingRequest, **changes: object) -> IncomingRequest:
    fields = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": request.headers,
        "body": request.body,
    }
    fields.update(changes)
    return IncomingRequest(**fields)  # type: ignore[arg-type]


def with_header(request: IncomingRequest, name: str, value: str) -> IncomingRequest:
    kept = [(k, v) for k, v in request.header_pairs if k != name.lower()]
    return replaced(request, headers=kept + [(name, value)])


# --- requests botocore signed are accepted ------------------------------------------------


def test_json_post_with_target_is_accepted_and_parsed() -> None:
    request = signed(headers=JSON_HEADERS, data=json.dumps({"projectName": "demo"}))
    parsed = parse_authorization(request)
    assert parsed.access_key_id == ACCESS_KEY
    assert (parsed.region, parsed.service) == ("us-east-1", "codebuild")
    assert parsed.date == parsed.amz_date[:8]
    assert set(parsed.signed_headers) >= {"host", "x-amz-date", "x-amz-target", "content-type"}
    assert parsed.session_token is None and not parsed.presigned
    assert verify(parsed, SECRET, request)


def test_get_with_query_params_is_accepted() -> None:
    params = {"b": "two words", "a": "é/ü=&?", "plus": "1+1", "empty": "", "tilde": "~x-y_z."}
    assert accepted(signed("GET", ENDPOINT + "/list", params=params))


def test_query_already_in_url_is_accepted() -> None:
    url = ENDPOINT + "/items?z=1&a=x%20y&a=b&m=%C3%A9"
    assert accepted(signed("GET", url))


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "/v1/repos/demo",
        "/with%20space/and%2Bplus",
        "/caf%C3%A9/%E6%97%A5%E6%9C%AC",
        "/functions/a%2Fb/config",
        "/emoji/%F0%9F%98%80",
        "/x/./y/../z",
        "//double//slashes/",
        "/~user/a-b_c.d",
        "/trailing/",
        "/caf\u00e9/raw unicode and space",
    ],
)
def test_odd_paths_are_canonicalized_like_botocore(path: str) -> None:
    assert accepted(signed("GET", ENDPOINT + path))


def test_percent_2f_is_not_a_path_separator() -> None:
    request = signed("GET", ENDPOINT + "/functions/a%2Fb/config")
    assert not accepted(replaced(request, path=b"/functions/a/b/config"))


def test_session_token_is_parsed_and_signed() -> None:
    request = signed(
        headers=JSON_HEADERS, data=b"{}", credentials=Credentials(ACCESS_KEY, SECRET, "tok/en+=")
    )
    parsed = parse_authorization(request)
    assert parsed.session_token == "tok/en+="
    assert "x-amz-security-token" in parsed.signed_headers
    assert verify(parsed, SECRET, request)
    assert not accepted(with_header(request, "X-Amz-Security-Token", "other"))


def test_declared_content_sha256_is_used_and_checked_against_the_body() -> None:
    body = b'{"repositoryName": "demo"}'
    digest = hashlib.sha256(body).hexdigest()
    request = signed(headers={**JSON_HEADERS, "X-Amz-Content-SHA256": digest}, data=body)
    assert accepted(request)
    assert accepted(replaced(request, body=None, payload_hash=digest))
    # The signature covers the declared hash; a different body must not ride on it.
    assert not accepted(replaced(request, body=b'{"repositoryName": "evil"}'))


def test_unsigned_payload_leaves_the_body_out_of_the_signature() -> None:
    request = signed(
        url="https://127.0.0.1:4750/upload",
        data=b"first body",
        context={"payload_signing_enabled": False},
    )
    assert request.header("x-amz-content-sha256") == sigv4.UNSIGNED_PAYLOAD
    assert accepted(request)
    assert accepted(replaced(request, body=b"another body"))


def test_date_header_instead_of_x_amz_date() -> None:
    request = signed(headers={**JSON_HEADERS, "Date": "ignored"}, data=b"{}")
    assert request.header("x-amz-date") is None
    parsed = parse_authorization(request)
    expected = email.utils.parsedate_to_datetime(request.header("date") or "")
    assert parsed.amz_date == expected.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    assert verify(parsed, SECRET, request)


def test_only_signed_headers_count() -> None:
    request = signed(headers=JSON_HEADERS, data=b"{}")
    proxied = replaced(
        request,
        headers=list(request.header_pairs)
        + [("X-Forwarded-For", "10.1.2.3"), ("User-Agent", "rewritten"), ("Via", "1.1 proxy")],
    )
    assert accepted(proxied)


def test_header_whitespace_is_trimmed_and_collapsed() -> None:
    request = signed(headers={**JSON_HEADERS, "X-Custom": "  a   lot \t of   space  "}, data=b"{}")
    assert request.header("x-custom") == "  a   lot \t of   space  "
    assert accepted(request)
    assert accepted(with_header(request, "X-Custom", "a lot of space"))
    assert not accepted(with_header(request, "X-Custom", "a lot ofspace"))


def test_repeated_header_values_are_joined_with_commas() -> None:
    url = ENDPOINT + "/"
    request = AWSRequest(method="POST", url=url, data=b"{}")
    request.headers["X-Multi"] = "first"
    request.headers["X-Multi"] = "second"  # HTTPHeaders appends: two header lines
    SigV4Auth(CREDS, "codebuild", "us-east-1").add_auth(request)
    pairs = list(request.headers.items()) + [("Host", "127.0.0.1:4750")]
    incoming = IncomingRequest("POST", b"/", b"", pairs, b"{}")
    assert incoming.header_values("x-multi") == ["first", "second"]
    assert accepted(incoming)
    only_first = [(k, v) for k, v in pairs if not (k == "X-Multi" and v == "second")]
    assert not accepted(replaced(incoming, headers=only_first))


def test_header_containers_of_every_kind() -> None:
    request = signed(headers=JSON_HEADERS, data=b'{"a": 1}')
    pairs = request.header_pairs
    raw = [(k.encode("latin-1"), v.encode("utf-8")) for k, v in pairs]
    for headers in (pairs, raw, dict(pairs), Headers(raw=raw)):
        assert accepted(replaced(request, headers=headers)), type(headers)


def test_aws_test_suite_get_vanilla_vector() -> None:
    # "get-vanilla" from AWS's published SigV4 test suite: independent of botocore.
    request = IncomingRequest(
        "GET",
        "/",
        "",
        [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                "aws4_request, SignedHeaders=host;x-amz-date, "
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ],
    )
    assert accepted(request, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


segment = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    segments=st.lists(segment, min_size=0, max_size=4),
    params=st.dictionaries(segment, st.text(st.characters(exclude_categories=("Cs",))), max_size=4),
    body=st.binary(max_size=64),
)
def test_any_path_query_and_body_botocore_signs_is_accepted(
    segments: list[str], params: dict[str, str], body: bytes
) -> None:
    # Path labels encoded as botocore's REST serializer encodes them.
    path = "".join("/" + percent_encode(part) for part in segments)
    request = signed("PUT", ENDPOINT + path, params=params, data=body)
    assert accepted(request)
    assert not accepted(request, SECRET[:-1] + "x")


# --- presigned query-string auth -----------------------------------------------------------


def test_presigned_get_is_accepted() -> None:
    request = presigned(url=ENDPOINT + "/v1/download", params={"name": "a b", "n": "1"})
    parsed = parse_authorization(request)
    assert parsed.presigned and parsed.expires == 300
    assert parsed.access_key_id == ACCESS_KEY
    assert parsed.signed_headers == ("host",)
    assert verify(parsed, SECRET, request)
    assert not accepted(replaced(request, query=str(request.query).replace("n=1", "n=2")))
    assert not accepted(request, "wrong-secret")


def test_presigned_json_post_moves_the_body_into_the_query() -> None:
    request = presigned("POST", data=json.dumps({"projectName": "demo"}))
    assert "projectName=demo" in str(request.query)
    assert accepted(request)


def test_presigned_with_unsigned_payload() -> None:
    # S3-style presigning signs UNSIGNED-PAYLOAD instead of the body's hash.
    url = ENDPOINT + "/bucket/key"
    request = AWSRequest(method="PUT", url=url)
    S3SigV4QueryAuth(CREDS, "s3", "us-east-1", expires=60).add_auth(request)
    incoming = replaced(_wire(request, url), body=b"content chosen after signing")
    assert accepted(incoming)
    assert not accepted(incoming, "wrong-secret")


def test_x_amz_params_alone_do_not_mean_query_auth() -> None:
    request = signed("GET", ENDPOINT + "/", params={"X-Amz-Date": "", "X-Amz-Expires": "1"})
    assert not parse_authorization(request).presigned
    assert accepted(request)


def test_presigned_with_session_token() -> None:
    request = presigned(credentials=Credentials(ACCESS_KEY, SECRET, "session-token"))
    parsed = parse_authorization(request)
    assert parsed.session_token == "session-token"
    assert verify(parsed, SECRET, request)


def test_presigned_expiry_window() -> None:
    request = presigned(expires=300)
    parsed = parse_authorization(request)
    signed_at = dt.datetime.strptime(parsed.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    check_request_time(parsed, now=signed_at + dt.timedelta(seconds=300))
    with pytest.raises(RequestExpired, match="Signature expired"):
        check_request_time(parsed, now=signed_at + dt.timedelta(seconds=301))


# --- tampering is rejected -----------------------------------------------------------------


@pytest.fixture
def json_request() -> IncomingRequest:
    return signed(headers=JSON_HEADERS, data=b'{"projectName": "demo"}')


def test_tampered_body(json_request: IncomingRequest) -> None:
    assert accepted(json_request)
    assert not accepted(replaced(json_request, body=b'{"projectName": "demo2"}'))


def test_tampered_signed_header(json_request: IncomingRequest) -> None:
    tampered = with_header(json_request, "X-Amz-Target", "CodeBuild_20161006.DeleteProject")
    assert not accepted(tampered)


def test_tampered_date(json_request: IncomingRequest) -> None:
    amz_date = json_request.header("x-amz-date") or ""
    later = amz_date[:-3] + ("00Z" if amz_date[-3:-1] != "00" else "01Z")
    assert not accepted(with_header(json_request, "X-Amz-Date", later))


def test_wrong_secret(json_request: IncomingRequest) -> None:
    assert not accepted(json_request, SECRET.lower())


def test_tampered_method_path_and_query(json_request: IncomingRequest) -> None:
    assert not accepted(replaced(json_request, method="PUT"))
    assert not accepted(replaced(json_request, path=b"/other"))
    assert not accepted(replaced(json_request, query="extra=1"))


def test_tampered_credential_scope(json_request: IncomingRequest) -> None:
    authorization = json_request.header("authorization") or ""
    other_region = authorization.replace("/us-east-1/", "/eu-west-1/")
    assert not accepted(with_header(json_request, "Authorization", other_region))


def test_missing_signed_header_or_unsigned_host(json_request: IncomingRequest) -> None:
    without_target = [(k, v) for k, v in json_request.header_pairs if k != "x-amz-target"]
    assert not accepted(replaced(json_request, headers=without_target))
    authorization = json_request.header("authorization") or ""
    no_host = authorization.replace(
        "SignedHeaders=content-type;host;", "SignedHeaders=content-type;"
    )
    assert no_host != authorization
    assert not accepted(with_header(json_request, "Authorization", no_host))


class _HostlessSigner(SigV4Auth):
    """botocore's signer, told to leave the Host header out of the signature."""

    def headers_to_sign(self, request):  # type: ignore[no-untyped-def]
        headers = super().headers_to_sign(request)
        del headers["host"]
        return headers


def test_signature_without_host_is_refused() -> None:
    url = ENDPOINT + "/"
    request = AWSRequest(method="POST", url=url, headers=dict(JSON_HEADERS), data=b"{}")
    _HostlessSigner(CREDS, "codebuild", "us-east-1").add_auth(request)
    incoming = _wire(request, url)
    assert "host" not in parse_authorization(incoming).signed_headers
    assert not accepted(incoming)


# --- malformed or missing authentication -------------------------------------------------


def test_no_authentication_at_all() -> None:
    request = IncomingRequest("POST", "/", "", [("Host", "h"), ("X-Amz-Date", "20260101T000000Z")])
    with pytest.raises(MissingAuthentication) as caught:
        parse_authorization(request)
    error = caught.value
    assert isinstance(error, MissingAuthenticationTokenException)
    assert (error.code, error.status) == ("MissingAuthenticationTokenException", 403)
    assert error.message == "Missing Authentication Token"


def _parse_with(authorization: str, *extra: tuple[str, str]) -> IncompleteSignatureException:
    headers = [("Host", "h"), ("Authorization", authorization), *extra]
    with pytest.raises(IncompleteSignature) as caught:
        parse_authorization(IncomingRequest("POST", "/", "", headers))
    assert (caught.value.code, caught.value.status) == ("IncompleteSignatureException", 403)
    return caught.value


DATE = ("X-Amz-Date", "20260101T000000Z")
GOOD_CREDENTIAL = "Credential=AKID/20260101/us-east-1/codebuild/aws4_request"


def test_missing_parts_are_all_named() -> None:
    error = _parse_with(f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}")
    assert "requires 'Signature' parameter" in error.message
    assert "requires 'SignedHeaders' parameter" in error.message
    assert "requires existence of either a 'X-Amz-Date' or a 'Date' header" in error.message


def test_malformed_authorization_headers() -> None:
    assert "missing equal-sign" in _parse_with("AWS4-HMAC-SHA256 Credential", DATE).message
    assert "Unsupported" in _parse_with("AWS4-HMAC-SHA512 Credential=a", DATE).message
    basic = _parse_with("Basic dXNlcjpwYXNz", DATE).message
    assert "requires 'Credential'" in basic
    assert "dXNlcjpwYXNz" not in basic
    short = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1, SignedHeaders=host, Signature=00"
    assert "exactly 5 slash-delimited" in _parse_with(short, DATE).message
    wrong_terminator = short.replace("us-east-1", "us-east-1/codebuild/aws5_request")
    assert "valid terminator" in _parse_with(wrong_terminator, DATE).message
    wrong_day = short.replace("20260101/us-east-1", "20260102/us-east-1/codebuild/aws4_request")
    assert "does not match" in _parse_with(wrong_day, DATE).message
    bad_date = ("X-Amz-Date", "2026-01-01T00:00:00Z")
    full = f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}, SignedHeaders=host, Signature=00"
    assert "ISO-8601" in _parse_with(full, bad_date).message


def test_header_and_query_auth_together_are_refused() -> None:
    request = presigned()
    both = with_header(request, "Authorization", f"AWS4-HMAC-SHA256 {GOOD_CREDENTIAL}")
    with pytest.raises(IncompleteSignature, match="Only one auth mechanism"):
        parse_authorization(both)


def test_incomplete_presigned_query() -> None:
    request = presigned()
    without_expires = "&".join(
        part for part in str(request.query).split("&") if not part.startswith("X-Amz-Expires")
    )
    with pytest.raises(IncompleteSignature, match="'X-Amz-Expires'"):
        parse_authorization(replaced(request, query=without_expires))
    too_long = str(request.query).replace("X-Amz-Expires=300", "X-Amz-Expires=604801")
    with pytest.raises(IncompleteSignature, match="less than a week"):
        parse_authorization(replaced(request, query=too_long))


# --- clock skew -----------------------------------------------------------------------------


def at(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)


def test_expired_signature_message_matches_aws() -> None:
    with pytest.raises(RequestExpired) as caught:
        check_clock_skew("20260101T000000Z", at("20260101T002500Z"))
    error = caught.value
    assert isinstance(error, InvalidSignatureException)
    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    assert error.message == (
        "Signature expired: 20260101T000000Z is now earlier than 20260101T001000Z "
        "(20260101T002500Z - 15 min.)"
    )


def test_future_signature_message_matches_aws() -> None:
    with pytest.raises(RequestExpired) as caught:
        check_clock_skew("20260101T003000Z", at("20260101T000500Z"))
    assert caught.value.message == (
        "Signature not yet current: 20260101T003000Z is still later than 20260101T002000Z "
        "(20260101T000500Z + 15 min.)"
    )


def test_skew_window_edges() -> None:
    check_clock_skew("20260101T000000Z", at("20260101T001500Z"))
    check_clock_skew("20260101T003000Z", at("20260101T001500Z"))
    check_clock_skew("20260101T000000Z", at("20260101T000400Z"), max_skew=dt.timedelta(minutes=5))
    with pytest.raises(RequestExpired, match=r"- 5 min\.\)"):
        check_clock_skew(
            "20260101T000000Z", at("20260101T000501Z"), max_skew=dt.timedelta(minutes=5)
        )


def test_request_signed_now_passes_the_skew_check() -> None:
    parsed = parse_authorization(signed(headers=JSON_HEADERS, data=b"{}"))
    check_request_time(parsed)
    with pytest.raises(RequestExpired):
        check_request_time(parsed, now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20))


# --- CodeCommit git passwords -----------------------------------------------------------------

REPO_PATH = "/v1/repos/demo"


def _stamp_of(password: str) -> dt.datetime:
    return dt.datetime.strptime(password[:15], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)


def test_git_password_shape_and_round_trip() -> None:
    now = at("20260101T120000Z")
    password = git_password(SECRET, REPO_PATH, "git.example:4750", "eu-west-1", now)
    assert password.startswith("20260101T120000Z") and len(password) == 16 + 64
    regions = ["us-east-1", "eu-west-1"]
    assert verify_git_password(SECRET, password, REPO_PATH, "git.example:4750", regions, now)
    assert verify_git_password(SECRET, password, REPO_PATH, "git.example:4750", "eu-west-1", now)
    assert (
        verify_git_password("other", password, REPO_PATH, "git.example:4750", regions, now) is None
    )
    assert (
        verify_git_password(SECRET, password, "/v1/repos/x", "git.example:4750", regions, now)
        is None
    )
    assert (
        verify_git_password(SECRET, password, REPO_PATH, "git.example:4750", "us-east-1", now)
        is None
    )
    late = now + dt.timedelta(minutes=16)
    assert (
        verify_git_password(SECRET, password, REPO_PATH, "git.example:4750", regions, late) is None
    )
    assert verify_git_password(SECRET, "garbage", REPO_PATH, "git.example", regions, now) is None


def test_naive_times_are_utc() -> None:
    naive = dt.datetime(2026, 1, 1, 12, 0, 0)
    assert git_password(SECRET, REPO_PATH, "h", "us-east-1", naive).startswith("20260101T120000Z")
    check_clock_skew("20260101T120000Z", naive, max_skew=dt.timedelta(seconds=1))


def test_git_password_host_variants() -> None:
    now = at("20260101T120000Z")
    for signed_host, received_host in [
        ("git.example", "git.example:4750"),
        ("[::1]", "[::1]:4750"),
        ("[::1]:4750", "[::1]:4750"),
    ]:
        password = git_password(SECRET, REPO_PATH, signed_host, "us-east-1", now)
        found = verify_git_password(SECRET, password, REPO_PATH, received_host, "us-east-1", now)
        assert found == "us-east-1", (signed_host, received_host)
    password = git_password(SECRET, REPO_PATH, "other.example", "us-east-1", now)
    assert verify_git_password(SECRET, password, REPO_PATH, "git.example", "us-east-1", now) is None


def test_git_password_matches_git_remote_codecommit(monkeypatch: pytest.MonkeyPatch) -> None:
    host = "127.0.0.1:4750"
    password = git_remote_codecommit.sign(host, REPO_PATH, "eu-west-1", CREDS)
    assert password == git_password(SECRET, REPO_PATH, host, "eu-west-1", _stamp_of(password))

    # The URL it hands to git: user and password as git will send them.
    monkeypatch.setenv("CODE_COMMIT_ENDPOINT", host)
    token_creds = Credentials(ACCESS_KEY, SECRET, "session/token")
    url = urlsplit(git_remote_codecommit.git_url("demo", "v1", "eu-west-1", token_creds))
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", 4750, REPO_PATH)
    assert split_git_username(unquote(url.username or "")) == (ACCESS_KEY, "session/token")
    region = verify_git_password(
        SECRET, unquote(url.password or ""), REPO_PATH, host, ["us-east-1", "eu-west-1"]
    )
    assert region == "eu-west-1"


def test_split_git_username() -> None:
    assert split_git_username("AKIDONLY") == ("AKIDONLY", None)
    assert split_git_username("AKID%token%with%percent") == ("AKID", "token%with%percent")
