"""The pure parts of the S3 endpoint: signatures (checked against botocore's signers and
AWS's published examples), aws-chunked decoding, listing pages and byte ranges."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import zlib
from urllib.parse import urlsplit

import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from forgeline.core.auth import sigv4
from forgeline.s3 import auth, auth_v2
from forgeline.s3.body import AwsChunkedReader, CheckedReader
from forgeline.s3.errors import S3Error
from forgeline.s3.listing import list_page
from forgeline.s3.ranges import parse_range

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CREDENTIALS = Credentials("AKIAIOSFODNN7EXAMPLE", SECRET)


# -- SigV4 as S3 signs it ----------------------------------------------------------------


def _incoming(request: AWSRequest) -> sigv4.IncomingRequest:
    split = urlsplit(request.url)
    return sigv4.IncomingRequest(
        method=request.method,
        path=split.path,
        query=split.query,
        headers=[
            ("Host", split.netloc),
            *((k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()),
        ],
    )


def _check(incoming: sigv4.IncomingRequest, secret: str = SECRET) -> bool:
    parsed = sigv4.parse_authorization(incoming)
    key = sigv4.signing_key(secret, parsed.date, parsed.region, "s3")
    mode = incoming.header("x-amz-content-sha256") or auth.UNSIGNED_PAYLOAD
    return auth.signature_matches(parsed, incoming, mode, key)


def test_aws_published_get_object_example():
    # "GET Object" from AWS's Signature Version 4 header-authentication examples.
    incoming = sigv4.IncomingRequest(
        method="GET",
        path="/test.txt",
        headers=[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", auth.EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        ],
    )
    assert _check(incoming)
    assert not _check(incoming, secret="another secret")


def _aws_chunked_example_request() -> sigv4.IncomingRequest:
    # AWS's "Signature Calculation: Transferring Payload in Multiple Chunks" example.
    return sigv4.IncomingRequest(
        method="PUT",
        path="/examplebucket/chunkObject.txt",
        headers=[
            ("Host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("Content-Encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("Content-Length", "66824"),
            ("x-amz-content-sha256", auth.STREAMING_SIGNED),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/"
                "aws4_request,SignedHeaders=content-encoding;content-length;host;"
                "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
                "x-amz-storage-class,Signature="
                "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            ),
        ],
    )


CHUNK_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)


def _example_body(signatures=CHUNK_SIGNATURES) -> bytes:
    sizes = (65536, 1024, 0)
    return b"".join(
        f"{size:x};chunk-signature={signature}\r\n".encode() + b"a" * size + b"\r\n"
        for size, signature in zip(sizes, signatures, strict=True)
    )


def _example_signer() -> auth.ChunkSigner:
    incoming = _aws_chunked_example_request()
    parsed = sigv4.parse_authorization(incoming)
    key = sigv4.signing_key(SECRET, parsed.date, parsed.region, "s3")
    assert auth.signature_matches(parsed, incoming, auth.STREAMING_SIGNED, key)
    return auth.ChunkSigner(key, parsed.amz_date, parsed.credential_scope, parsed.signature)


def test_aws_published_chunked_upload_example_decodes_and_verifies():
    body = _example_body()
    assert len(body) == 66824  # the example's Content-Length
    reader = AwsChunkedReader(io.BytesIO(body), _example_signer(), signed=True)
    checked = CheckedReader(reader, expected_length=66560)
    data = b"".join(iter(lambda: checked.read(5000), b""))
    assert data == b"a" * 66560


def test_a_tampered_chunk_or_signature_is_refused():
    tampered = _example_body().replace(b"a" * 10, b"b" * 10, 1)
    reader = AwsChunkedReader(io.BytesIO(tampered), _example_signer(), signed=True)
    with pytest.raises(S3Error) as refused:
        while reader.read(4096):
            pass
    assert refused.value.code == "SignatureDoesNotMatch"

    wrong_last = (*CHUNK_SIGNATURES[:2], "0" * 64)
    reader = AwsChunkedReader(io.BytesIO(_example_body(wrong_last)), _example_signer(), True)
    with pytest.raises(S3Error):
        while reader.read(4096):
            pass


def test_unsigned_chunks_with_a_checksum_trailer():
    data = b"0123456789" * 1000
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = (
        f"{4000:x}\r\n".encode()
        + data[:4000]
        + b"\r\n"
        + f"{6000:x}\r\n".encode()
        + data[4000:]
        + b"\r\n0\r\n"
        + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    )
    reader = AwsChunkedReader(io.BytesIO(body), None, signed=False)
    checked = CheckedReader(
        reader, expected_length=len(data), checksum=("crc32", None), trailers=reader
    )
    assert b"".join(iter(lambda: checked.read(777), b"")) == data
    assert checked.checksum_value == crc

    wrong = body.replace(crc.encode(), b"AAAAAA==")
    reader = AwsChunkedReader(io.BytesIO(wrong), None, signed=False)
    checked = CheckedReader(reader, checksum=("crc32", None), trailers=reader)
    with pytest.raises(S3Error) as refused:
        while checked.read(1000):
            pass
    assert refused.value.code == "BadDigest"

    truncated = AwsChunkedReader(io.BytesIO(body[:5000]), None, signed=False)
    with pytest.raises(S3Error) as short:
        while truncated.read(1000):
            pass
    assert short.value.code == "IncompleteBody"


@settings(max_examples=60, deadline=None)
@given(
    key=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=40,
    ),
    query=st.dictionaries(
        st.sampled_from(["prefix", "delimiter", "marker", "list-type"]),
        st.text(max_size=10),
        max_size=3,
    ),
)
def test_botocore_s3_signatures_verify_for_any_key(key, query):
    from urllib.parse import quote, urlencode

    url = f"https://127.0.0.1:4750/bucket/{quote(key, safe='/~')}"
    if query:
        url += "?" + urlencode(query, quote_via=quote)
    request = AWSRequest(
        method="GET", url=url, headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    S3SigV4Auth(CREDENTIALS, "s3", "us-east-1").add_auth(request)
    incoming = _incoming(request)
    assert _check(incoming)
    assert not _check(incoming, secret="wrong")


# -- signature version 2 -----------------------------------------------------------------


def _v2_parts(request: AWSRequest) -> auth_v2.V2Auth:
    split = urlsplit(request.url)
    headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()]
    return auth_v2.parse_v2(request.method, split.path, split.query, headers)


@pytest.mark.parametrize(
    "url",
    [
        "http://h/bucket/key%20with%20space.txt",
        "http://h/bucket/k?uploadId=abc&partNumber=3",
        "http://h/bucket/k?response-content-type=text%2Fplain&response-content-disposition=a%3Db",
        "http://h/bucket?uploads",
        "http://h/bucket/",
    ],
)
def test_botocore_v2_signatures_verify(url):
    header_signed = AWSRequest(
        method="PUT", url=url, headers={"Content-Type": "text/plain", "x-amz-meta-a": "1"}
    )
    HmacV1Auth(CREDENTIALS).add_auth(header_signed)
    parsed = _v2_parts(header_signed)
    assert auth_v2.verify(parsed, SECRET) and not auth_v2.verify(parsed, "wrong")
    auth_v2.check_time(parsed)

    presigned = AWSRequest(method="GET", url=url, headers={})
    HmacV1QueryAuth(CREDENTIALS, expires=60).add_auth(presigned)
    parsed = _v2_parts(presigned)
    assert parsed.presigned and auth_v2.verify(parsed, SECRET)
    auth_v2.check_time(parsed)
    with pytest.raises(S3Error):
        auth_v2.check_time(parsed, now=parsed.expires + 1)


# -- listing pages -----------------------------------------------------------------------


KEYS = ["a", "b/1", "b/2", "b/c/3", "c", "d/4"]


def _page(**kwargs):
    page = list_page(((k, None) for k in KEYS), **kwargs)
    return [k for k, _ in page.contents], page.common_prefixes, page.truncated, page.last


def test_listing_pages():
    assert _page() == (KEYS, [], False, "d/4")
    assert _page(delimiter="/") == (["a", "c"], ["b/", "d/"], False, "d/")
    assert _page(prefix="b/", delimiter="/") == (["b/1", "b/2"], ["b/c/"], False, "b/c/")
    assert _page(delimiter="/", max_keys=2) == (["a"], ["b/"], True, "b/")
    # Resuming after a common prefix skips everything it rolled up.
    assert _page(delimiter="/", after="b/") == (["c"], ["d/"], False, "d/")
    assert _page(after="b/2") == (["b/c/3", "c", "d/4"], [], False, "d/4")
    assert _page(max_keys=0) == ([], [], True, None)


@settings(max_examples=200, deadline=None)
@given(
    keys=st.sets(st.text(alphabet="ab/", min_size=1, max_size=6), max_size=25),
    delimiter=st.sampled_from(["", "/", "b"]),
    prefix=st.sampled_from(["", "a", "a/", "b"]),
    size=st.integers(min_value=1, max_value=5),
)
def test_paging_yields_exactly_the_single_page_listing(keys, delimiter, prefix, size):
    ordered = sorted(keys)
    whole = list_page(
        ((k, None) for k in ordered), prefix=prefix, delimiter=delimiter, max_keys=10**6
    )
    seen_keys, seen_prefixes, after = [], [], ""
    while True:
        page = list_page(
            ((k, None) for k in ordered),
            prefix=prefix,
            delimiter=delimiter,
            after=after,
            max_keys=size,
        )
        seen_keys += [k for k, _ in page.contents]
        seen_prefixes += page.common_prefixes
        if not page.truncated:
            break
        assert page.last is not None
        after = page.last
    assert seen_keys == [k for k, _ in whole.contents]
    assert seen_prefixes == whole.common_prefixes


# -- ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=9-3", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
    ],
)
def test_ranges(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=500-600"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(S3Error) as refused:
        parse_range(header, 100)
    assert refused.value.status == 416


def test_checked_reader_catches_wrong_sha256_and_length():
    data = b"payload"
    good = CheckedReader(
        io.BytesIO(data), expected_length=7, expected_sha256=hashlib.sha256(data).hexdigest()
    )
    assert good.read(100) == data and good.read(100) == b""
    bad = CheckedReader(io.BytesIO(data), expected_sha256="0" * 64)
    bad.read(100)
    with pytest.raises(S3Error) as mismatch:
        bad.read(100)
    assert mismatch.value.code == "XAmzContentSHA256Mismatch"
    short = CheckedReader(io.BytesIO(data), expected_length=8)
    short.read(100)
    with pytest.raises(S3Error) as incomplete:
        short.read(100)
    assert incomplete.value.code == "IncompleteBody"
    assert hmac.compare_digest(good.md5_digest(), hashlib.md5(data).digest())
