"""Multipart upload operations (what `aws s3 cp` uses above 8 MB)."""

from __future__ import annotations

import re

from forgeline.core.blobstore import BlobNotFound
from forgeline.s3 import buckets, checksums, multipart, objects
from forgeline.s3.body import CheckedReader
from forgeline.s3.errors import S3Error, malformed_xml, no_such_key
from forgeline.s3.exchange import S3Request, S3Response
from forgeline.s3.incoming import stored_headers, upload_reader, user_metadata
from forgeline.s3.ops import objects as ops_objects
from forgeline.s3.xmlio import child_text, document, node, parse

_MAX_COMPLETE_BODY = 4 * 1024 * 1024


def _owned(request: S3Request) -> None:
    buckets.owned_bucket(request.store, request.bucket, request.caller.account_id)


def create_multipart_upload(request: S3Request) -> S3Response:
    _owned(request)
    algorithm = request.headers.get("x-amz-checksum-algorithm", "").lower() or None
    upload = multipart.start_upload(
        request.store,
        request.bucket,
        request.key,
        request.caller.account_id,
        stored_headers(request.headers),
        user_metadata(request.headers),
        algorithm,
    )
    result = node(
        "InitiateMultipartUploadResult",
        None,
        Bucket=request.bucket,
        Key=request.key,
        UploadId=upload.upload_id,
    )
    response = S3Response.xml(document(result))
    if algorithm:
        response.headers["x-amz-checksum-algorithm"] = algorithm.upper()
    return response


def upload_part(request: S3Request) -> S3Response:
    _owned(request)
    number = multipart.part_number(request.query.get("partNumber"))
    upload = multipart.find_upload(
        request.store, request.bucket, request.key, request.query["uploadId"]
    )
    reader = upload_reader(request)
    try:
        part = multipart.store_part(request.store, upload, number, reader)
    except Exception:
        if reader.error is not None:
            raise reader.error from None
        raise
    headers = {"ETag": f'"{part.etag}"'}
    if part.checksum is not None:
        headers[checksums.HEADER_PREFIX + part.checksum[0]] = part.checksum[1]
    return S3Response(headers=headers)


def upload_part_copy(request: S3Request) -> S3Response:
    _owned(request)
    number = multipart.part_number(request.query.get("partNumber"))
    upload = multipart.find_upload(
        request.store, request.bucket, request.key, request.query["uploadId"]
    )
    source_bucket, source_key = ops_objects.copy_source(request.headers["x-amz-copy-source"])
    buckets.owned_bucket(request.store, source_bucket, request.caller.account_id)
    source = objects.stat_object(request.store, source_bucket, source_key)
    if source is None:
        raise no_such_key(source_key)
    ops_objects.check_conditions(request.headers, source, "x-amz-copy-source-")
    start, end = _copy_range(request.headers.get("x-amz-copy-source-range"), source.size)
    try:
        stream = request.store.open(objects.blob_key(source_bucket, source_key))
    except BlobNotFound:
        raise no_such_key(source_key) from None
    with stream:
        reader = CheckedReader(ops_objects.RangeReader(stream, start, end - start + 1))
        part = multipart.store_part(request.store, upload, number, reader)
    result = node("CopyPartResult", None, ETag=f'"{part.etag}"', LastModified=part.last_modified)
    return S3Response.xml(document(result))


def _copy_range(header: str | None, size: int) -> tuple[int, int]:
    """The inclusive byte range to copy: the whole source, or exactly `bytes=first-last`."""
    if header is None:
        return 0, size - 1
    match = re.fullmatch(r"bytes=(\d+)-(\d+)", header.strip())
    if match is None or not int(match[1]) <= int(match[2]) < size:
        raise S3Error(
            "InvalidArgument",
            f"Range specified is not valid for source object of size: {size}",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=header,
        )
    return int(match[1]), int(match[2])


def complete_multipart_upload(request: S3Request) -> S3Response:
    _owned(request)
    upload = multipart.find_upload(
        request.store, request.bucket, request.key, request.query["uploadId"]
    )
    root = parse(request.body.read_all(_MAX_COMPLETE_BODY))
    if root.tag != "CompleteMultipartUpload":
        raise malformed_xml()
    chosen = []
    for part in root.findall("Part"):
        number_text, etag = child_text(part, "PartNumber"), child_text(part, "ETag")
        if number_text is None or etag is None or not number_text.strip().isdigit():
            raise malformed_xml()
        chosen.append((int(number_text), etag))
    if not chosen:
        raise S3Error(
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our "
            "published schema",
        )
    record = multipart.complete_upload(request.store, upload, chosen)
    result = node(
        "CompleteMultipartUploadResult",
        None,
        Location=f"{request.base_url}/{request.bucket}/{request.key}",
        Bucket=request.bucket,
        Key=request.key,
        ETag=record.quoted_etag,
    )
    return S3Response.xml(document(result))


def abort_multipart_upload(request: S3Request) -> S3Response:
    _owned(request)
    upload = multipart.find_upload(
        request.store, request.bucket, request.key, request.query["uploadId"]
    )
    multipart.abort_upload(request.store, upload)
    return S3Response(status=204)


def list_parts(request: S3Request) -> S3Response:
    _owned(request)
    upload = multipart.find_upload(
        request.store, request.bucket, request.key, request.query["uploadId"]
    )
    marker = request.int_param("part-number-marker", 0)
    max_parts = request.int_param("max-parts", 1000, high=1000)
    parts = [part for part in multipart.list_parts(request.store, upload) if part.number > marker]
    page, truncated = parts[:max_parts], len(parts) > max_parts
    account = upload.account_id
    owner = node("Owner", None, ID=buckets.canonical_user_id(account), DisplayName=account)
    root = node(
        "ListPartsResult",
        None,
        Bucket=request.bucket,
        Key=request.key,
        UploadId=upload.upload_id,
        PartNumberMarker=marker,
        NextPartNumberMarker=page[-1].number if page else marker,
        MaxParts=max_parts,
        IsTruncated=truncated,
    )
    root.append(owner)
    root.append(node("StorageClass", "STANDARD"))
    for part in page:
        root.append(
            node(
                "Part",
                None,
                PartNumber=part.number,
                LastModified=part.last_modified,
                ETag=f'"{part.etag}"',
                Size=part.size,
            )
        )
    return S3Response.xml(document(root))


def list_multipart_uploads(request: S3Request) -> S3Response:
    _owned(request)
    prefix = request.query.get("prefix", "")
    uploads = sorted(
        (
            u
            for u in multipart.uploads_in(request.store, request.bucket)
            if u.key.startswith(prefix)
        ),
        key=lambda u: (u.key, u.initiated),
    )
    root = node(
        "ListMultipartUploadsResult",
        None,
        Bucket=request.bucket,
        KeyMarker="",
        UploadIdMarker="",
        Prefix=prefix or None,
        MaxUploads=1000,
        IsTruncated=False,
    )
    for upload in uploads[:1000]:
        account = upload.account_id
        owner = {"ID": buckets.canonical_user_id(account), "DisplayName": account}
        root.append(
            node(
                "Upload",
                None,
                Key=upload.key,
                UploadId=upload.upload_id,
                Initiator=node("Initiator", None, **owner),
                Owner=node("Owner", None, **owner),
                StorageClass="STANDARD",
                Initiated=upload.initiated,
            )
        )
    return S3Response.xml(document(root))
