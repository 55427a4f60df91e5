"""Object operations: put, get, head, copy and delete (one or many)."""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
from collections.abc import Iterator
from typing import BinaryIO
from urllib.parse import unquote

from forgeline.core.blobstore import BlobNotFound
from forgeline.s3 import buckets, checksums, objects
from forgeline.s3.body import CheckedReader
from forgeline.s3.errors import (
    S3Error,
    bad_digest,
    invalid_request,
    malformed_xml,
    no_such_key,
    not_implemented,
    precondition_failed,
)
from forgeline.s3.exchange import S3Request, S3Response
from forgeline.s3.incoming import (
    content_md5,
    stored_headers,
    upload_reader,
    user_metadata,
)
from forgeline.s3.objects import ObjectRecord
from forgeline.s3.ranges import parse_range
from forgeline.s3.xmlio import child_text, document, http_date, node, parse

_STREAM_CHUNK = 256 * 1024
_MAX_DELETE_BODY = 4 * 1024 * 1024
_MAX_DELETE_KEYS = 1000
# GetObject's response-* parameters override these headers of the response.
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def _owned(request: S3Request) -> None:
    buckets.owned_bucket(request.store, request.bucket, request.caller.account_id)


def put_object(request: S3Request) -> S3Response:
    _owned(request)
    objects.storable_key(request.bucket, request.key)
    if request.headers.get("if-none-match", "").strip() == "*" and objects.stat_object(
        request.store, request.bucket, request.key
    ):
        raise precondition_failed("If-None-Match")
    reader = upload_reader(request)
    record = _write(request, reader)
    headers = {"ETag": record.quoted_etag}
    if record.checksum is not None:
        headers[checksums.HEADER_PREFIX + record.checksum[0]] = record.checksum[1]
    return S3Response(headers=headers)


def _write(request: S3Request, reader: CheckedReader) -> ObjectRecord:
    def checksum() -> tuple[str, str] | None:
        if reader.checksum_value is None or reader.checksum_algorithm is None:
            return None
        return (reader.checksum_algorithm, reader.checksum_value)

    try:
        return objects.write_object(
            request.store,
            request.bucket,
            request.key,
            reader,
            etag=lambda: reader.md5_digest().hex(),
            headers=stored_headers(request.headers),
            metadata=user_metadata(request.headers),
            checksum=checksum,
        )
    except Exception:
        # Stores may wrap what the source raised; the reader remembers the real cause.
        if reader.error is not None:
            raise reader.error from None
        raise


def _record(request: S3Request) -> ObjectRecord:
    _owned(request)
    record = objects.stat_object(request.store, request.bucket, request.key)
    if record is None:
        raise no_such_key(request.key)
    return record


def get_object(request: S3Request) -> S3Response:
    return _read(request, with_body=True)


def head_object(request: S3Request) -> S3Response:
    return _read(request, with_body=False)


def _read(request: S3Request, *, with_body: bool) -> S3Response:
    if "partNumber" in request.query:
        raise not_implemented("Reading one part of an object (partNumber)")
    record = _record(request)
    not_modified = check_conditions(request.headers, record, "")
    headers = _object_headers(record)
    if not_modified:
        return S3Response(
            status=304, headers={"ETag": headers["ETag"], "Last-Modified": headers["Last-Modified"]}
        )
    for parameter, header in _RESPONSE_OVERRIDES.items():
        if parameter in request.query:
            headers[header] = request.query[parameter]
    start, end = 0, record.size - 1
    status = 200
    wanted = parse_range(request.headers.get("range"), record.size)
    if wanted is not None:
        start, end = wanted
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{record.size}"
    elif record.checksum is not None and request.headers.get("x-amz-checksum-mode") == "ENABLED":
        headers[checksums.HEADER_PREFIX + record.checksum[0]] = record.checksum[1]
        headers["x-amz-checksum-type"] = "FULL_OBJECT"
    length = max(end - start + 1, 0)
    headers["Content-Length"] = str(length)
    if not with_body:
        return S3Response(status=status, headers=headers)
    try:
        stream = request.store.open(objects.blob_key(request.bucket, request.key))
    except BlobNotFound:
        raise no_such_key(request.key) from None
    return S3Response(status=status, headers=headers, body=_stream(stream, start, length))


def _object_headers(record: ObjectRecord) -> dict[str, str]:
    headers = {
        "ETag": record.quoted_etag,
        "Last-Modified": http_date(record.last_modified),
        "Accept-Ranges": "bytes",
        "Content-Type": record.content_type,
    }
    headers.update({k: v for k, v in record.headers.items() if k != "Content-Type"})
    for name, value in record.metadata.items():
        headers[f"x-amz-meta-{name}"] = value
    if "-" in record.etag:
        headers["x-amz-mp-parts-count"] = record.etag.rsplit("-", 1)[1]
    return headers


def _stream(stream: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    with stream:
        if start:
            if stream.seekable():
                stream.seek(start)
            else:
                _skip(stream, start)
        remaining = length
        while remaining > 0:
            data = stream.read(min(_STREAM_CHUNK, remaining))
            if not data:
                raise OSError("the object ended before its recorded size")
            remaining -= len(data)
            yield data


class RangeReader:
    """`length` bytes of a stream from offset `start`, as a readable (for part copies)."""

    def __init__(self, stream: BinaryIO, start: int, length: int) -> None:
        self._stream = stream
        self._start = start
        self._remaining = length

    def read(self, size: int = -1) -> bytes:
        if self._start:
            if self._stream.seekable():
                self._stream.seek(self._start)
            else:
                _skip(self._stream, self._start)
            self._start = 0
        wanted = self._remaining if size is None or size < 0 else min(size, self._remaining)
        if wanted <= 0:
            return b""
        data = self._stream.read(wanted)
        if not data:
            raise OSError("the source object ended before its recorded size")
        self._remaining -= len(data)
        return data


def _skip(stream: BinaryIO, count: int) -> None:
    while count > 0:
        data = stream.read(min(_STREAM_CHUNK, count))
        if not data:
            return
        count -= len(data)


def _http_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None  # an unparsable date is ignored, as HTTP says
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _etag_matches(header: str, etag: str) -> bool:
    wanted = [item.strip().removeprefix("W/").strip('"') for item in header.split(",")]
    return "*" in wanted or etag in wanted


def check_conditions(headers: dict[str, str], record: ObjectRecord, prefix: str) -> bool:
    """Raise PreconditionFailed, or return True for "not modified" (RFC 7232 order)."""
    if_match = headers.get(f"{prefix}if-match")
    if if_match is not None:
        if not _etag_matches(if_match, record.etag):
            raise precondition_failed(f"{prefix}If-Match")
    else:
        since = _http_time(headers.get(f"{prefix}if-unmodified-since"))
        if since is not None and record.last_modified > since:
            raise precondition_failed(f"{prefix}If-Unmodified-Since")
    if_none_match = headers.get(f"{prefix}if-none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, record.etag):
            if prefix:
                raise precondition_failed(f"{prefix}If-None-Match")
            return True
    else:
        since = _http_time(headers.get(f"{prefix}if-modified-since"))
        if since is not None and record.last_modified <= since:
            if prefix:
                raise precondition_failed(f"{prefix}If-Modified-Since")
            return True
    return False


def delete_object(request: S3Request) -> S3Response:
    _owned(request)
    objects.delete_object(request.store, request.bucket, request.key)
    return S3Response(status=204)


def delete_objects(request: S3Request) -> S3Response:
    _owned(request)
    body = request.body.read_all(_MAX_DELETE_BODY)
    _check_delete_digest(request.headers, body)
    root = parse(body)
    if root.tag != "Delete":
        raise malformed_xml()
    entries = root.findall("Object")
    if not entries or len(entries) > _MAX_DELETE_KEYS:
        raise malformed_xml()
    quiet = (child_text(root, "Quiet") or "").strip().lower() == "true"
    result = node("DeleteResult")
    for entry in entries:
        key = child_text(entry, "Key")
        if key is None:
            raise malformed_xml()
        version = child_text(entry, "VersionId")
        if version not in (None, "", "null"):
            result.append(
                node(
                    "Error",
                    None,
                    Key=key,
                    VersionId=version,
                    Code="NoSuchVersion",
                    Message="The specified version does not exist.",
                )
            )
            continue
        objects.delete_object(request.store, request.bucket, key)
        if not quiet:
            result.append(node("Deleted", None, Key=key))
    return S3Response.xml(document(result))


def _check_delete_digest(headers: dict[str, str], body: bytes) -> None:
    """DeleteObjects needs Content-MD5 or a checksum header, which must match the body."""
    md5 = content_md5(headers)
    declared = checksums.declared_checksum(headers)
    if md5 is None and declared is None:
        raise invalid_request("Missing required header for this request: Content-MD5")
    if md5 is not None:
        if hashlib.md5(body, usedforsecurity=False).digest() != md5:
            raise bad_digest("Content-MD5")
    if declared is not None:
        digest = checksums.new_digest(declared[0])
        if digest is not None:
            digest.update(body)
            if checksums.encode(digest.digest()) != declared[1]:
                raise bad_digest(declared[0].upper())


def copy_object(request: S3Request) -> S3Response:
    _owned(request)
    objects.storable_key(request.bucket, request.key)
    source_bucket, source_key = copy_source(request.headers["x-amz-copy-source"])
    buckets.owned_bucket(request.store, source_bucket, request.caller.account_id)
    source = objects.stat_object(request.store, source_bucket, source_key)
    if source is None:
        raise no_such_key(source_key)
    check_conditions(request.headers, source, "x-amz-copy-source-")
    directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise S3Error(
            "InvalidArgument",
            "Unknown metadata directive.",
            ArgumentName="x-amz-metadata-directive",
            ArgumentValue=directive,
        )
    if directive == "COPY" and (source_bucket, source_key) == (request.bucket, request.key):
        raise invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself "
            "without changing the object's metadata, storage class, website redirect "
            "location or encryption attributes."
        )
    if directive == "COPY":
        headers, metadata = dict(source.headers), dict(source.metadata)
    else:
        headers, metadata = stored_headers(request.headers), user_metadata(request.headers)
    try:
        stream = request.store.open(objects.blob_key(source_bucket, source_key))
    except BlobNotFound:
        raise no_such_key(source_key) from None
    reader = CheckedReader(stream)
    with stream:
        record = objects.write_object(
            request.store,
            request.bucket,
            request.key,
            reader,
            etag=lambda: reader.md5_digest().hex(),
            headers=headers,
            metadata=metadata,
            checksum=source.checksum,
        )
    result = node(
        "CopyObjectResult", None, ETag=record.quoted_etag, LastModified=record.last_modified
    )
    return S3Response.xml(document(result))


def copy_source(header: str) -> tuple[str, str]:
    text = unquote(header.strip())
    text, _, version = text.partition("?versionId=")
    if version not in ("", "null"):
        raise S3Error(
            "NoSuchVersion", "The specified version does not exist.", 404, VersionId=version
        )
    bucket, _, key = text.lstrip("/").partition("/")
    if not bucket or not key:
        raise S3Error(
            "InvalidArgument",
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=header,
        )
    return bucket, key
