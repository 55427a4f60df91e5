"""Objects: bytes in the blob store, described by a small sidecar record.

Bucket B's object K is the blob `buckets/B/K` (forgeline.codebuild.s3locations), so the build
engine and this endpoint see the same objects. What S3 reports beyond size (ETag,
Last-Modified, Content-Type, user metadata, checksum) lives in the sidecar
`s3meta/objects/B/K`, which names the SHA-256 of the blob it describes. A blob written
by something else (a build writing artifacts) has no matching sidecar; one is made the
first time the object is looked at, with an ETag derived from its SHA-256.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import json
from typing import Any

from forgeline.codebuild.s3locations import BUCKETS_PREFIX
from forgeline.core.blobstore import BlobNotFound, BlobStore, validate_key
from forgeline.s3.buckets import META_PREFIX
from forgeline.s3.errors import S3Error

SIDECAR_PREFIX = META_PREFIX + "objects/"
MAX_KEY_BYTES = 1024
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
# Headers stored with an object and returned by GET and HEAD.
STORED_HEADERS = (
    "Content-Type",
    "Content-Encoding",
    "Content-Disposition",
    "Content-Language",
    "Cache-Control",
    "Expires",
)


@dataclasses.dataclass(frozen=True)
class ObjectRecord:
    key: str
    size: int
    sha256: str
    etag: str  # without quotes
    last_modified: dt.datetime
    headers: dict[str, str]
    metadata: dict[str, str]
    checksum: tuple[str, str] | None = None  # (algorithm, base64 value)

    @property
    def quoted_etag(self) -> str:
        return f'"{self.etag}"'

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", DEFAULT_CONTENT_TYPE)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "sha256": self.sha256,
                "size": self.size,
                "etag": self.etag,
                "last_modified": self.last_modified.isoformat(),
                "headers": self.headers,
                "metadata": self.metadata,
                "checksum": list(self.checksum) if self.checksum else None,
            }
        ).encode()

    @classmethod
    def from_json(cls, key: str, data: bytes) -> ObjectRecord:
        record = json.loads(data)
        checksum = record.get("checksum")
        return cls(
            key=key,
            size=record["size"],
            sha256=record["sha256"],
            etag=record["etag"],
            last_modified=dt.datetime.fromisoformat(record["last_modified"]),
            headers=dict(record.get("headers") or {}),
            metadata=dict(record.get("metadata") or {}),
            checksum=(checksum[0], checksum[1]) if checksum else None,
        )


def now() -> dt.datetime:
    """The current time at S3's precision (HTTP dates carry whole seconds)."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def key_problem(key: str) -> str | None:
    """Why the blob store cannot hold `key` as an object key, or None."""
    if not key:
        return "The object key must not be empty."
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return "Your key is too long."
    try:
        validate_key(key)
    except ValueError:
        return (
            "Forgeline stores objects as files, so keys may not start or end with '/', "
            "contain '//', '.' or '..' segments, a backslash, NUL, or a segment starting "
            "with '.blobstore-'."
        )
    return None


def blob_key(bucket: str, key: str) -> str:
    """The blob holding the object; call only for keys without a `key_problem`."""
    return f"{BUCKETS_PREFIX}{bucket}/{key}"


def sidecar_key(bucket: str, key: str) -> str:
    return f"{SIDECAR_PREFIX}{bucket}/{key}"


def storable_key(bucket: str, key: str) -> str:
    """The blob key for writing `key`, or the S3 error explaining why it cannot be stored."""
    problem = key_problem(key)
    if problem is None:
        return blob_key(bucket, key)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", problem)
    raise S3Error("InvalidArgument", problem, ArgumentName="key", ArgumentValue=key[:200])


def stat_object(store: BlobStore, bucket: str, key: str) -> ObjectRecord | None:
    """The object's record, or None if there is no such object."""
    if key_problem(key) is not None:
        return None
    info = store.stat(blob_key(bucket, key))
    if info is None:
        return None
    record = _read_sidecar(store, bucket, key)
    if record is not None and record.sha256 == info.sha256 and record.size == info.size:
        return record
    # Written without this endpoint (or the sidecar lags a concurrent put): describe it
    # now and remember the description, so Last-Modified stays put from here on.
    record = ObjectRecord(
        key=key,
        size=info.size,
        sha256=info.sha256,
        etag=info.sha256[:32],
        last_modified=now(),
        headers={},
        metadata={},
    )
    with contextlib.suppress(OSError, ValueError):
        store.put(sidecar_key(bucket, key), record.to_json())
    return record


def _read_sidecar(store: BlobStore, bucket: str, key: str) -> ObjectRecord | None:
    try:
        return ObjectRecord.from_json(key, store.read_bytes(sidecar_key(bucket, key)))
    except (BlobNotFound, OSError, ValueError, KeyError, TypeError):
        return None


def write_object(
    store: BlobStore,
    bucket: str,
    key: str,
    source: Any,
    *,
    etag: str | Any = None,
    headers: dict[str, str] | None = None,
    metadata: dict[str, str] | None = None,
    checksum: Any = None,
) -> ObjectRecord:
    """Store `source` (bytes or a readable) as the object and record its description.

    `etag` is the ETag text, or a callable giving it once the source has been read (the
    MD5 of a streamed body is known only at its end); `checksum` likewise. Without an
    ETag the object gets one derived from its SHA-256, as blobs written directly do.
    Other services (build artifacts) may call this to give objects a content type.
    """
    target = storable_key(bucket, key)
    try:
        info = store.put(target, source)
    except OSError as error:
        raise _storage_error(error, key) from error
    record = ObjectRecord(
        key=key,
        size=info.size,
        sha256=info.sha256,
        etag=etag() if callable(etag) else (etag or info.sha256[:32]),
        last_modified=now(),
        headers=dict(headers or {}),
        metadata=dict(metadata or {}),
        checksum=checksum() if callable(checksum) else checksum,
    )
    store.put(sidecar_key(bucket, key), record.to_json())
    return record


def _storage_error(error: OSError, key: str) -> S3Error:
    if error.errno == errno.ENAMETOOLONG:
        return S3Error("KeyTooLongError", "A segment of the key is too long for the store.")
    if error.errno in (errno.ENOTDIR, errno.EISDIR, errno.EEXIST):
        return S3Error(
            "InvalidArgument",
            "Forgeline stores objects as files: a key cannot be both an object and a "
            "prefix of another key followed by '/'.",
            ArgumentName="key",
            ArgumentValue=key[:200],
        )
    raise error


def delete_object(store: BlobStore, bucket: str, key: str) -> None:
    if key_problem(key) is not None:
        return
    store.delete(blob_key(bucket, key))
    store.delete(sidecar_key(bucket, key))


def bucket_has_objects(store: BlobStore, bucket: str) -> bool:
    return next(iter(store.list(f"{BUCKETS_PREFIX}{bucket}/")), None) is not None
