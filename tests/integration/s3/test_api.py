"""Forgeline's S3 endpoint through boto3's s3 client and the AWS CLI, over HTTP(S)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from forgeline.codebuild.s3locations import blob_key
from forgeline.core.blobstore import LocalBlobStore
from tests.support.errors import error_code
from tests.support.server import free_port, running_server

PATH_STYLE = {"s3": {"addressing_style": "path"}}
MiB = 1024 * 1024


@pytest.fixture
def s3(forgeline):
    return forgeline.client("s3", **PATH_STYLE)


@pytest.fixture
def bucket(s3):
    name = f"fl-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    # Leave nothing behind: other tests list buckets of the same account.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
    for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture(scope="module")
def other_account(forgeline):
    result = forgeline.cli("accounts", "create", "--name", f"s3-{uuid.uuid4().hex[:6]}")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    return forgeline.client(
        "s3", credentials=(created["accessKeyId"], created["secretAccessKey"]), **PATH_STYLE
    )


# -- objects -----------------------------------------------------------------------------


def test_put_get_head_round_trip_with_metadata(s3, bucket):
    body = b"hello, forgeline\n" * 100
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/hello.txt",
        Body=body,
        ContentType="text/plain",
        CacheControl="no-cache",
        Metadata={"Stage": "build"},
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ChecksumCRC32"]  # verified and echoed, as S3 does

    got = s3.get_object(Bucket=bucket, Key="dir/hello.txt")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentType"] == "text/plain"
    assert got["CacheControl"] == "no-cache"
    assert got["ContentLength"] == len(body)
    assert got["Metadata"] == {"stage": "build"}
    assert got["LastModified"].year >= 2024

    head = s3.head_object(Bucket=bucket, Key="dir/hello.txt")
    assert head["ContentLength"] == len(body)
    assert head["ETag"] == put["ETag"]


def test_objects_are_the_blobs_the_build_engine_sees(forgeline, s3, bucket):
    s3.put_object(Bucket=bucket, Key="src/app.zip", Body=b"zip bytes")
    store = LocalBlobStore(forgeline.data_dir / "blobs")
    assert store.read_bytes(blob_key(bucket, "src/app.zip")) == b"zip bytes"

    # A blob written straight into the store (as a build writes artifacts) is an object.
    store.put(blob_key(bucket, "out/artifact.bin"), b"artifact")
    head = s3.head_object(Bucket=bucket, Key="out/artifact.bin")
    assert head["ContentLength"] == 8
    again = s3.head_object(Bucket=bucket, Key="out/artifact.bin")
    assert again["ETag"] == head["ETag"] and again["LastModified"] == head["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="out/artifact.bin")["Body"].read() == b"artifact"


def test_ranges_and_conditions(s3, bucket):
    body = bytes(range(256)) * 4
    etag = s3.put_object(Bucket=bucket, Key="r.bin", Body=body)["ETag"]

    part = s3.get_object(Bucket=bucket, Key="r.bin", Range="bytes=10-19")
    assert part["Body"].read() == body[10:20]
    assert part["ContentRange"] == f"bytes 10-19/{len(body)}"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="r.bin", Range="bytes=-5")["Body"].read() == body[-5:]
    assert (
        s3.get_object(Bucket=bucket, Key="r.bin", Range="bytes=1000-")["Body"].read()
        == (body[1000:])
    )
    tail = s3.get_object(Bucket=bucket, Key="r.bin", Range="bytes=1020-5000")
    assert tail["Body"].read() == body[1020:]
    with pytest.raises(ClientError) as unsatisfiable:
        s3.get_object(Bucket=bucket, Key="r.bin", Range=f"bytes={len(body)}-")
    assert error_code(unsatisfiable) == "InvalidRange"

    assert s3.get_object(Bucket=bucket, Key="r.bin", IfMatch=etag)["Body"].read() == body
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=bucket, Key="r.bin", IfMatch='"0123"')
    assert error_code(failed) == "PreconditionFailed"
    with pytest.raises(ClientError) as not_modified:
        s3.get_object(Bucket=bucket, Key="r.bin", IfNoneMatch=etag)
    assert not_modified.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as exists:
        s3.put_object(Bucket=bucket, Key="r.bin", Body=b"x", IfNoneMatch="*")
    assert error_code(exists) == "PreconditionFailed"


def test_copy_delete_and_delete_objects(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"alpha", ContentType="text/plain")
    copied = s3.copy_object(
        Bucket=bucket, Key="b.txt", CopySource={"Bucket": bucket, "Key": "a.txt"}
    )
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"alpha").hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="b.txt")
    assert got["Body"].read() == b"alpha" and got["ContentType"] == "text/plain"
    with pytest.raises(ClientError) as to_itself:
        s3.copy_object(Bucket=bucket, Key="a.txt", CopySource={"Bucket": bucket, "Key": "a.txt"})
    assert error_code(to_itself) == "InvalidRequest"

    s3.delete_object(Bucket=bucket, Key="a.txt")
    s3.delete_object(Bucket=bucket, Key="never-existed")  # deleting nothing succeeds
    with pytest.raises(ClientError) as gone:
        s3.get_object(Bucket=bucket, Key="a.txt")
    assert error_code(gone) == "NoSuchKey"

    for index in range(5):
        s3.put_object(Bucket=bucket, Key=f"many/{index}", Body=b"x")
    result = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": f"many/{index}"} for index in range(5)] + [{"Key": "b.txt"}]},
    )
    assert sorted(item["Key"] for item in result["Deleted"]) == [
        "b.txt",
        *(f"many/{index}" for index in range(5)),
    ]
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_object_errors(s3, bucket):
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="nope/nothing")
    assert error_code(missing) == "NoSuchKey"
    assert missing.value.response["Error"]["Key"] == "nope/nothing"
    with pytest.raises(ClientError) as head_missing:
        s3.head_object(Bucket=bucket, Key="nothing")
    assert head_missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as no_bucket:
        s3.get_object(Bucket=f"missing-{uuid.uuid4().hex[:8]}", Key="k")
    assert error_code(no_bucket) == "NoSuchBucket"
    # botocore sends large bodies with `Expect: 100-continue`; a refusal still reads clean.
    for size in (2 * MiB, 512 * 1024):
        with pytest.raises(ClientError) as refused_upload:
            s3.put_object(Bucket=f"missing-{uuid.uuid4().hex[:8]}", Key="k", Body=b"x" * size)
        assert error_code(refused_upload) == "NoSuchBucket"
    s3.put_object(Bucket=bucket, Key="after-refusals", Body=b"still fine")
    with pytest.raises(ClientError) as too_long:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"")
    assert error_code(too_long) == "KeyTooLongError"
    with pytest.raises(ClientError) as unstorable:
        s3.put_object(Bucket=bucket, Key="folder/", Body=b"")
    assert error_code(unstorable) == "InvalidArgument"
    with pytest.raises(ClientError) as bad_md5:
        s3.put_object(Bucket=bucket, Key="k", Body=b"data", ContentMD5="AAAAAAAAAAAAAAAAAAAAAA==")
    assert error_code(bad_md5) == "BadDigest"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k")  # a refused upload leaves no object


def test_keys_with_unusual_characters(s3, bucket):
    keys = ["with space.txt", "plus+sign", "unicodé/ключ", "q?x=1&y=2", "tilde~name", "a%2Fb"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in keys:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys)
    assert [item["Key"] for item in s3.list_objects(Bucket=bucket)["Contents"]] == sorted(keys)


# -- listing -----------------------------------------------------------------------------


def test_listing_with_delimiters_and_pagination(s3, bucket):
    keys = ["a.txt", "docs/guide.md", "docs/img/logo.png", "docs/readme", "src/main.py", "z"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"1")

    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [item["Key"] for item in top["Contents"]] == ["a.txt", "z"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["docs/", "src/"]
    assert top["KeyCount"] == 4

    docs = s3.list_objects_v2(Bucket=bucket, Prefix="docs/", Delimiter="/")
    assert [item["Key"] for item in docs["Contents"]] == ["docs/guide.md", "docs/readme"]
    assert [p["Prefix"] for p in docs["CommonPrefixes"]] == ["docs/img/"]

    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 2}
        )
    )
    assert len(pages) == 3
    assert [item["Key"] for page in pages for item in page["Contents"]] == keys
    assert pages[0]["IsTruncated"] and not pages[-1]["IsTruncated"]

    # Common prefixes count against MaxKeys and never repeat across pages.
    rolled = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 1}
        )
    )
    seen = [p["Prefix"] for page in rolled for p in page.get("CommonPrefixes", [])]
    seen += [item["Key"] for page in rolled for item in page.get("Contents", [])]
    assert sorted(seen) == ["a.txt", "docs/", "src/", "z"]

    after = s3.list_objects_v2(Bucket=bucket, StartAfter="docs/readme")
    assert [item["Key"] for item in after["Contents"]] == ["src/main.py", "z"]

    v1_pages = list(
        s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 4})
    )
    assert [item["Key"] for page in v1_pages for item in page["Contents"]] == keys
    first = s3.list_objects(Bucket=bucket, MaxKeys=2, Delimiter="/")
    assert first["IsTruncated"] and first["NextMarker"] == "docs/"

    with pytest.raises(ClientError) as bad_token:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="***")
    assert error_code(bad_token) == "InvalidArgument"


# -- buckets -----------------------------------------------------------------------------


def test_bucket_lifecycle_and_errors(s3):
    name = f"fl-life-{uuid.uuid4().hex[:8]}"
    assert s3.create_bucket(Bucket=name)["Location"] == f"/{name}"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert (
        s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"]
        == "us-east-1"
    )
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    # us-east-1 keeps AWS's legacy answer: re-creating your own bucket succeeds.
    s3.create_bucket(Bucket=name)

    s3.put_object(Bucket=name, Key="keep", Body=b"1")
    with pytest.raises(ClientError) as not_empty:
        s3.delete_bucket(Bucket=name)
    assert error_code(not_empty) == "BucketNotEmpty"
    s3.delete_object(Bucket=name, Key="keep")
    s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as gone:
        s3.head_bucket(Bucket=name)
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as gone_listing:
        s3.list_objects_v2(Bucket=name)
    assert error_code(gone_listing) == "NoSuchBucket"

    for invalid in ("UPPER", "ab", "bad..dots", "192.168.1.1", "-dash"):
        with pytest.raises(ClientError) as bad:
            s3.create_bucket(Bucket=invalid)
        assert error_code(bad) == "InvalidBucketName", invalid


def test_regional_buckets(forgeline):
    west = forgeline.client("s3", region="eu-west-1", **PATH_STYLE)
    name = f"fl-west-{uuid.uuid4().hex[:8]}"
    west.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        assert west.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
        with pytest.raises(ClientError) as owned:
            west.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
            )
        assert error_code(owned) == "BucketAlreadyOwnedByYou"
        with pytest.raises(ClientError) as mismatch:
            west.create_bucket(
                Bucket=f"{name}-x", CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
            )
        assert error_code(mismatch) == "IllegalLocationConstraintException"
    finally:
        west.delete_bucket(Bucket=name)


def test_buckets_belong_to_their_account(s3, bucket, other_account):
    s3.put_object(Bucket=bucket, Key="secret", Body=b"mine")
    for call in (
        lambda: other_account.get_object(Bucket=bucket, Key="secret"),
        lambda: other_account.put_object(Bucket=bucket, Key="x", Body=b"theirs"),
        lambda: other_account.list_objects_v2(Bucket=bucket),
        lambda: other_account.delete_bucket(Bucket=bucket),
        lambda: other_account.copy_object(
            Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "secret"}
        ),
    ):
        with pytest.raises(ClientError) as denied:
            call()
        assert error_code(denied) == "AccessDenied"
    with pytest.raises(ClientError) as taken:
        other_account.create_bucket(Bucket=bucket)
    assert error_code(taken) == "BucketAlreadyExists"
    assert bucket not in [b["Name"] for b in other_account.list_buckets()["Buckets"]]


# -- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize("signature_version", ["s3v4", None])
def test_presigned_urls(forgeline, bucket, signature_version):
    # Without a signature version botocore presigns with S3's legacy signature (v2).
    s3 = forgeline.client("s3", signature_version=signature_version, **PATH_STYLE)
    s3.put_object(Bucket=bucket, Key="shared/report file.txt", Body=b"presigned body")
    params = {"Bucket": bucket, "Key": "shared/report file.txt"}
    url = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=300)
    assert ("X-Amz-Signature=" in url) == (signature_version == "s3v4")
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.content == b"presigned body"

    typed = s3.generate_presigned_url(
        "get_object", Params={**params, "ResponseContentType": "text/csv"}, ExpiresIn=300
    )
    assert httpx.get(typed).headers["content-type"] == "text/csv"

    tampered = httpx.get(url.replace("report", "other"))
    assert tampered.status_code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in tampered.content

    expired = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=1)
    time.sleep(2.2)
    refused = httpx.get(expired)
    assert refused.status_code == 403 and b"Request has expired" in refused.content

    put_url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "uploaded"}, ExpiresIn=300
    )
    assert httpx.put(put_url, content=b"via url").status_code == 200
    assert s3.get_object(Bucket=bucket, Key="uploaded")["Body"].read() == b"via url"


def test_unsigned_requests_are_refused(forgeline, s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared/report.txt", Body=b"private")

    anonymous = httpx.get(f"{forgeline.url}/{bucket}/shared/report.txt")
    assert anonymous.status_code == 403 and b"<Code>AccessDenied</Code>" in anonymous.content
    # Paths that are not buckets still reach the rest of the server.
    assert httpx.get(f"{forgeline.url}/health").status_code == 200
    assert httpx.get(f"{forgeline.url}/not-a-bucket-{uuid.uuid4().hex[:6]}/k").status_code == 404


def test_wrong_secret_and_unknown_key(forgeline, bucket):
    key, _secret = forgeline.admin_credentials()
    wrong = forgeline.client("s3", credentials=(key, "not-the-secret"), **PATH_STYLE)
    with pytest.raises(ClientError) as mismatch:
        wrong.list_objects_v2(Bucket=bucket)
    assert error_code(mismatch) == "SignatureDoesNotMatch"
    unknown = forgeline.client("s3", credentials=("AKIAUNKNOWN000000000", "x"), **PATH_STYLE)
    with pytest.raises(ClientError) as missing:
        unknown.list_buckets()
    assert error_code(missing) == "InvalidAccessKeyId"


# -- multipart ---------------------------------------------------------------------------


def test_multipart_upload_through_the_transfer_manager(s3, bucket, tmp_path):
    data = os.urandom(20 * MiB + 12345)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    s3.upload_file(str(source), bucket, "big/big.bin", Config=config)

    head = s3.head_object(Bucket=bucket, Key="big/big.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].endswith('-3"')
    target = tmp_path / "back.bin"
    s3.download_file(bucket, "big/big.bin", str(target), Config=config)
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()

    # A managed copy of a large object goes part by part (UploadPartCopy).
    s3.copy({"Bucket": bucket, "Key": "big/big.bin"}, bucket, "big/copy.bin", Config=config)
    copied = s3.get_object(Bucket=bucket, Key="big/copy.bin")
    assert copied["ETag"].endswith('-3"')
    assert hashlib.sha256(copied["Body"].read()).digest() == hashlib.sha256(data).digest()

    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="ranged")["UploadId"]
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="ranged",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "big/big.bin"},
        CopySourceRange="bytes=100-199",
    )
    with pytest.raises(ClientError) as bad_range:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="ranged",
            UploadId=upload_id,
            PartNumber=2,
            CopySource={"Bucket": bucket, "Key": "big/big.bin"},
            CopySourceRange=f"bytes=0-{len(data)}",
        )
    assert error_code(bad_range) == "InvalidArgument"
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="ranged",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key="ranged")["Body"].read() == data[100:200]


def test_multipart_rules(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="parts")["UploadId"]
    small = s3.upload_part(
        Bucket=bucket, Key="parts", UploadId=upload_id, PartNumber=1, Body=b"tiny"
    )
    last = s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload_id, PartNumber=2, Body=b"end")
    listed = s3.list_parts(Bucket=bucket, Key="parts", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, 4), (2, 3)]

    def complete(parts):
        return s3.complete_multipart_upload(
            Bucket=bucket, Key="parts", UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    with pytest.raises(ClientError) as too_small:
        complete(
            [{"PartNumber": 1, "ETag": small["ETag"]}, {"PartNumber": 2, "ETag": last["ETag"]}]
        )
    assert error_code(too_small) == "EntityTooSmall"
    with pytest.raises(ClientError) as order:
        complete(
            [{"PartNumber": 2, "ETag": last["ETag"]}, {"PartNumber": 1, "ETag": small["ETag"]}]
        )
    assert error_code(order) == "InvalidPartOrder"
    with pytest.raises(ClientError) as wrong_etag:
        complete([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}])
    assert error_code(wrong_etag) == "InvalidPart"
    with pytest.raises(ClientError) as bad_number:
        s3.upload_part(Bucket=bucket, Key="parts", UploadId=upload_id, PartNumber=10001, Body=b"x")
    assert error_code(bad_number) == "InvalidArgument"

    # A single part may be any size.
    done = complete([{"PartNumber": 2, "ETag": last["ETag"]}])
    assert done["ETag"].endswith('-1"')
    assert s3.get_object(Bucket=bucket, Key="parts")["Body"].read() == b"end"
    with pytest.raises(ClientError) as finished:
        s3.abort_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload_id)
    assert error_code(finished) == "NoSuchUpload"

    aborted = s3.create_multipart_upload(Bucket=bucket, Key="dropped")["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [aborted]
    s3.abort_multipart_upload(Bucket=bucket, Key="dropped", UploadId=aborted)
    with pytest.raises(ClientError) as no_upload:
        s3.upload_part(Bucket=bucket, Key="dropped", UploadId=aborted, PartNumber=1, Body=b"x")
    assert error_code(no_upload) == "NoSuchUpload"


# -- HTTPS: aws-chunked bodies with trailing checksums ----------------------------------


def test_https_uploads_use_aws_chunked_trailers(tmp_path):
    port = free_port()
    with running_server(tmp_path, extra_env={"FORGELINE_TLS_PORT": str(port)}) as server:
        key, secret = server.admin_credentials()
        s3 = boto3.client(
            "s3",
            endpoint_url=f"https://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            verify=False,
            config=Config(retries={"max_attempts": 1}, **PATH_STYLE),
        )
        s3.create_bucket(Bucket="tls-bucket")
        events = []
        s3.meta.events.register(
            "before-send.s3.PutObject", lambda request, **_: events.append(dict(request.headers))
        )
        body = os.urandom(3 * MiB + 7)
        put = s3.put_object(Bucket="tls-bucket", Key="chunked.bin", Body=body)
        sent = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in events[0].items()}
        assert sent["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
        assert "aws-chunked" in sent["content-encoding"]
        assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        got = s3.get_object(Bucket="tls-bucket", Key="chunked.bin")
        assert got["Body"].read() == body
        assert "ContentEncoding" not in got  # aws-chunked is framing, not stored

        source = tmp_path / "big.bin"
        source.write_bytes(os.urandom(9 * MiB))
        s3.upload_file(str(source), "tls-bucket", "big.bin")
        assert s3.head_object(Bucket="tls-bucket", Key="big.bin")["ContentLength"] == 9 * MiB


# -- the AWS CLI -------------------------------------------------------------------------


@pytest.fixture
def aws_s3(forgeline, tmp_path):
    config = tmp_path / "aws-config"
    config.write_text("[profile forgeline]\ns3 =\n    addressing_style = path\n")
    env = dict(
        os.environ,
        AWS_SHARED_CREDENTIALS_FILE=str(forgeline.credentials_file),
        AWS_CONFIG_FILE=str(config),
        AWS_DEFAULT_REGION="us-east-1",
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(name, None)
    aws = str(Path(sys.executable).parent / "aws")

    def run(*args: str) -> str:
        done = subprocess.run(
            [aws, "--profile", "forgeline", "--endpoint-url", forgeline.url, "s3", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def test_aws_cli_cp_ls_and_recursive(aws_s3, s3, tmp_path):
    name = f"fl-cli-{uuid.uuid4().hex[:8]}"
    aws_s3("mb", f"s3://{name}")
    tree = tmp_path / "tree"
    (tree / "nested" / "deeper").mkdir(parents=True)
    files = {
        "top.txt": b"top\n",
        "nested/one.txt": b"one\n",
        "nested/deeper/two.bin": os.urandom(1000),
    }
    for relative, content in files.items():
        (tree / relative).write_bytes(content)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(20 * MiB))

    aws_s3("cp", str(big), f"s3://{name}/uploads/big.bin")
    aws_s3("cp", "--recursive", str(tree), f"s3://{name}/tree/")

    listing = aws_s3("ls", f"s3://{name}/tree/")
    assert "PRE nested/" in listing and "top.txt" in listing
    recursive = aws_s3("ls", "--recursive", f"s3://{name}/")
    assert "uploads/big.bin" in recursive and "tree/nested/deeper/two.bin" in recursive
    assert name in aws_s3("ls")

    back = tmp_path / "back"
    aws_s3("cp", "--recursive", f"s3://{name}/tree/", str(back))
    for relative, content in files.items():
        assert (back / relative).read_bytes() == content
    aws_s3("cp", f"s3://{name}/uploads/big.bin", str(tmp_path / "big-back.bin"))
    assert (tmp_path / "big-back.bin").read_bytes() == big.read_bytes()
    assert s3.head_object(Bucket=name, Key="uploads/big.bin")["ContentLength"] == 20 * MiB
    aws_s3("cp", f"s3://{name}/uploads/big.bin", f"s3://{name}/uploads/big-copy.bin")
    assert s3.head_object(Bucket=name, Key="uploads/big-copy.bin")["ContentLength"] == 20 * MiB

    # sync uploads what changed and nothing else.
    assert "upload:" in aws_s3("sync", str(tree), f"s3://{name}/synced/")
    assert aws_s3("sync", str(tree), f"s3://{name}/synced/").strip() == ""
    (tree / "nested" / "one.txt").write_bytes(b"one, edited\n")
    resynced = aws_s3("sync", str(tree), f"s3://{name}/synced/")
    assert resynced.count("upload:") == 1 and "nested/one.txt" in resynced

    aws_s3("rm", "--recursive", f"s3://{name}/")
    aws_s3("rb", f"s3://{name}")
    assert name not in aws_s3("ls")


# -- signed aws-chunked uploads (as the Java and Go SDKs send them) ---------------------


def _signed_chunked_put(
    url: str, credentials: tuple[str, str], data: bytes, chunk: int, tamper: bool = False
) -> httpx.Response:
    """PUT `data` with STREAMING-AWS4-HMAC-SHA256-PAYLOAD, each chunk signed per AWS docs."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] + [b""]
    framing = sum(len(f"{len(p):x};chunk-signature=") + 64 + 4 for p in pieces)
    headers = {
        "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(len(data)),
        "Content-Length": str(len(data) + framing),
    }
    request = AWSRequest(method="PUT", url=url, headers=headers)
    # The generic signer keeps the declared payload mode (S3's own one replaces it); the
    # path here is the same once or twice encoded.
    SigV4Auth(Credentials(*credentials), "s3", "us-east-1").add_auth(request)
    authorization = request.headers["Authorization"]
    previous = authorization.rsplit("Signature=", 1)[1]
    amz_date = request.headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"

    def hmac_sha256(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hashlib.sha256).digest()

    key = hmac_sha256(f"AWS4{credentials[1]}".encode(), amz_date[:8])
    for part in ("us-east-1", "s3", "aws4_request"):
        key = hmac_sha256(key, part)
    body = b""
    for piece in pieces:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                amz_date,
                scope,
                previous,
                hashlib.sha256(b"").hexdigest(),
                hashlib.sha256(piece).hexdigest(),
            ]
        )
        previous = hmac_sha256(key, to_sign).hex()
        sent = piece[::-1] if tamper and piece else piece
        body += f"{len(piece):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
    assert len(body) == len(data) + framing
    sent_headers = {k: v for k, v in request.headers.items()}
    return httpx.put(url, headers=sent_headers, content=body)


def test_signed_aws_chunked_upload(forgeline, s3, bucket):
    credentials = forgeline.admin_credentials()
    data = os.urandom(200_000)
    url = f"{forgeline.url}/{bucket}/signed-chunks.bin"
    done = _signed_chunked_put(url, credentials, data, 65536)
    assert done.status_code == 200, done.text
    assert done.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="signed-chunks.bin")["Body"].read() == data

    refused = _signed_chunked_put(f"{url}-bad", credentials, data, 65536, tamper=True)
    assert refused.status_code == 403 and b"SignatureDoesNotMatch" in refused.content
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="signed-chunks.bin-bad")


# -- the same endpoint over an S3-compatible blob store (the production shape) ----------


def test_over_an_s3_compatible_blob_store(tmp_path):
    from tests.support.s3rver import require_s3rver, running_s3rver

    require_s3rver()
    (tmp_path / "forgeline").mkdir()
    with running_s3rver(tmp_path / "s3rver") as backing:
        env = {
            "FORGELINE_BLOB_STORE": "s3",
            "FORGELINE_S3_ENDPOINT_URL": backing.endpoint_url,
            "FORGELINE_S3_BUCKET": "forgeline-blobs",
            "FORGELINE_S3_ACCESS_KEY_ID": backing.access_key_id,
            "FORGELINE_S3_SECRET_ACCESS_KEY": backing.secret_access_key,
        }
        with running_server(tmp_path / "forgeline", extra_env=env) as server:
            s3 = server.client("s3", **PATH_STYLE)
            s3.create_bucket(Bucket="over-s3")
            for key in ("b/2", "a", "b/1"):
                s3.put_object(Bucket="over-s3", Key=key, Body=key.encode())
            listed = s3.list_objects_v2(Bucket="over-s3", Delimiter="/")
            assert [item["Key"] for item in listed["Contents"]] == ["a"]
            assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["b/"]
            assert s3.get_object(Bucket="over-s3", Key="b/1", Range="bytes=1-")["Body"].read() == (
                b"/1"
            )
            data = os.urandom(12 * MiB)
            source = tmp_path / "big.bin"
            source.write_bytes(data)
            s3.upload_file(str(source), "over-s3", "big.bin")
            assert s3.get_object(Bucket="over-s3", Key="big.bin")["Body"].read() == data
