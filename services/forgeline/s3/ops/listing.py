"""ListObjects (v1) and ListObjectsV2 over a bucket's blobs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote

from forgeline.codebuild.s3locations import BUCKETS_PREFIX
from forgeline.core.blobstore import BlobInfo, BlobStore, LocalBlobStore, validate_prefix
from forgeline.s3 import buckets, objects
from forgeline.s3.errors import S3Error
from forgeline.s3.exchange import S3Request, S3Response
from forgeline.s3.listing import Page, list_page
from forgeline.s3.ops.buckets import decode_token, encode_token
from forgeline.s3.xmlio import document, node

MAX_KEYS = 1000


def list_objects_v2(request: S3Request) -> S3Response:
    bucket = buckets.owned_bucket(request.store, request.bucket, request.caller.account_id)
    query = request.query
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    encode = _encoder(query)
    max_keys = request.int_param("max-keys", MAX_KEYS, high=MAX_KEYS)
    token = query.get("continuation-token")
    start_after = query.get("start-after", "")
    after = decode_token(token, "continuation-token") if token else start_after
    page = _page(request.store, bucket.name, prefix, delimiter, after, max_keys)
    root = node("ListBucketResult", None, Name=bucket.name, Prefix=encode(prefix))
    if delimiter:
        root.append(node("Delimiter", encode(delimiter)))
    root.append(node("MaxKeys", max_keys))
    if "encoding-type" in query:
        root.append(node("EncodingType", query["encoding-type"]))
    root.append(node("KeyCount", page.count))
    root.append(node("IsTruncated", page.truncated))
    if token:
        root.append(node("ContinuationToken", token))
    if page.truncated and page.last is not None:
        root.append(node("NextContinuationToken", encode_token(page.last)))
    if start_after:
        root.append(node("StartAfter", encode(start_after)))
    owner = request.caller.account_id if query.get("fetch-owner") == "true" else None
    _append_entries(root, request.store, bucket.name, page, encode, owner)
    return S3Response.xml(document(root))


def list_objects(request: S3Request) -> S3Response:
    bucket = buckets.owned_bucket(request.store, request.bucket, request.caller.account_id)
    query = request.query
    prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
    encode = _encoder(query)
    max_keys = request.int_param("max-keys", MAX_KEYS, high=MAX_KEYS)
    marker = query.get("marker", "")
    page = _page(request.store, bucket.name, prefix, delimiter, marker, max_keys)
    root = node(
        "ListBucketResult", None, Name=bucket.name, Prefix=encode(prefix), Marker=encode(marker)
    )
    if page.truncated and delimiter and page.last is not None:
        root.append(node("NextMarker", encode(page.last)))
    root.append(node("MaxKeys", max_keys))
    if delimiter:
        root.append(node("Delimiter", encode(delimiter)))
    if "encoding-type" in query:
        root.append(node("EncodingType", query["encoding-type"]))
    root.append(node("IsTruncated", page.truncated))
    _append_entries(root, request.store, bucket.name, page, encode, request.caller.account_id)
    return S3Response.xml(document(root))


Encoder = Callable[[str], str]


def _encoder(query: dict[str, str]) -> Encoder:
    """Key encoding of the response: none, or `url` (botocore asks for it and decodes)."""
    kind = query.get("encoding-type")
    if kind is None:
        return lambda text: text
    if kind != "url":
        raise S3Error(
            "InvalidArgument",
            "Invalid Encoding Method specified in Request",
            ArgumentName="encoding-type",
            ArgumentValue=kind,
        )
    return lambda text: quote(text, safe="/")


def _page(
    store: BlobStore, bucket: str, prefix: str, delimiter: str, after: str, max_keys: int
) -> Page[None]:
    return list_page(
        _entries(store, bucket, prefix),
        prefix=prefix,
        delimiter=delimiter,
        after=after,
        max_keys=max_keys,
    )


def _entries(store: BlobStore, bucket: str, prefix: str) -> Iterator[tuple[str, None]]:
    """(key, None) for the bucket's objects under `prefix`, in key order."""
    base = f"{BUCKETS_PREFIX}{bucket}/"
    try:
        listed: Iterable[BlobInfo] = store.list(validate_prefix(base + prefix))
    except ValueError:
        # A prefix no blob key can start with literally ("a//", "./"): filter instead.
        listed = (info for info in store.list(base) if info.key.startswith(base + prefix))
    keys = (info.key[len(base) :] for info in listed)
    # The local store lists in key order; other stores may not, so those are sorted.
    ordered = keys if isinstance(store, LocalBlobStore) else iter(sorted(keys))
    return ((key, None) for key in ordered)


def _append_entries(
    root: ET.Element,
    store: BlobStore,
    bucket: str,
    page: Page[None],
    encode: Encoder,
    owner: str | None,
) -> None:
    for key, _ in page.contents:
        record = objects.stat_object(store, bucket, key)
        if record is None:
            continue  # deleted since it was listed
        entry = node(
            "Contents",
            None,
            Key=encode(key),
            LastModified=record.last_modified,
            ETag=record.quoted_etag,
            Size=record.size,
            StorageClass="STANDARD",
        )
        if owner is not None:
            entry.append(
                node("Owner", None, ID=buckets.canonical_user_id(owner), DisplayName=owner)
            )
        root.append(entry)
    for common in page.common_prefixes:
        root.append(node("CommonPrefixes", None, Prefix=encode(common)))
