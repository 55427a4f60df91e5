"""Multipart uploads, staged in the blob store until they are completed or aborted.

Upload U of bucket B lives under `s3meta/uploads/B/U/`: `upload.json` (key, owner,
headers) and, per part N, `part-0000N` with its description `part-0000N.json`. Completing
streams the parts, in order, into the object's blob and removes the staging area.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from forgeline.core.blobstore import BlobNotFound, BlobStore
from forgeline.s3 import objects
from forgeline.s3.buckets import META_PREFIX
from forgeline.s3.errors import S3Error, invalid_argument, no_such_upload

UPLOADS_PREFIX = META_PREFIX + "uploads/"
MAX_PART_NUMBER = 10000
MIN_PART_SIZE = 5 * 1024 * 1024  # every part but the last, as on AWS

_UPLOAD_ID_RE = re.compile(r"[0-9a-f]{32}")


@dataclasses.dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    account_id: str
    initiated: dt.datetime
    headers: dict[str, str]
    metadata: dict[str, str]
    checksum_algorithm: str | None = None


@dataclasses.dataclass(frozen=True)
class Part:
    number: int
    etag: str  # MD5 hex, without quotes
    size: int
    last_modified: dt.datetime
    checksum: tuple[str, str] | None = None


def _upload_dir(bucket: str, upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{bucket}/{upload_id}/"


def _part_key(bucket: str, upload_id: str, number: int) -> str:
    return f"{_upload_dir(bucket, upload_id)}part-{number:05d}"


def start_upload(
    store: BlobStore,
    bucket: str,
    key: str,
    account_id: str,
    headers: dict[str, str],
    metadata: dict[str, str],
    checksum_algorithm: str | None,
) -> Upload:
    objects.storable_key(bucket, key)  # refuse now a key the final put could not store
    upload = Upload(
        upload_id=uuid.uuid4().hex,
        bucket=bucket,
        key=key,
        account_id=account_id,
        initiated=objects.now(),
        headers=headers,
        metadata=metadata,
        checksum_algorithm=checksum_algorithm,
    )
    record = {
        "key": key,
        "account_id": account_id,
        "initiated": upload.initiated.isoformat(),
        "headers": headers,
        "metadata": metadata,
        "checksum_algorithm": checksum_algorithm,
    }
    store.put(_upload_dir(bucket, upload.upload_id) + "upload.json", json.dumps(record).encode())
    return upload


def find_upload(store: BlobStore, bucket: str, key: str | None, upload_id: str) -> Upload:
    """The upload, which must belong to this bucket (and key, when given); else NoSuchUpload."""
    if not _UPLOAD_ID_RE.fullmatch(upload_id):
        raise no_such_upload(upload_id)
    try:
        record = json.loads(store.read_bytes(_upload_dir(bucket, upload_id) + "upload.json"))
    except BlobNotFound:
        raise no_such_upload(upload_id) from None
    if key is not None and record["key"] != key:
        raise no_such_upload(upload_id)
    return Upload(
        upload_id=upload_id,
        bucket=bucket,
        key=record["key"],
        account_id=record["account_id"],
        initiated=dt.datetime.fromisoformat(record["initiated"]),
        headers=record.get("headers") or {},
        metadata=record.get("metadata") or {},
        checksum_algorithm=record.get("checksum_algorithm"),
    )


def part_number(text: str | None) -> int:
    try:
        number = int(text or "")
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PART_NUMBER:
        raise invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
            "partNumber",
            text or "",
        )
    return number


def store_part(store: BlobStore, upload: Upload, number: int, source: Any) -> Part:
    """Stage one part; `source` is a CheckedReader (its MD5 is the part's ETag)."""
    key = _part_key(upload.bucket, upload.upload_id, number)
    info = store.put(key, source)
    checksum = None
    if source.checksum_value is not None and source.checksum_algorithm is not None:
        checksum = (source.checksum_algorithm, source.checksum_value)
    part = Part(
        number=number,
        etag=source.md5_digest().hex(),
        size=info.size,
        last_modified=objects.now(),
        checksum=checksum,
    )
    record = {
        "etag": part.etag,
        "size": part.size,
        "sha256": info.sha256,
        "last_modified": part.last_modified.isoformat(),
        "checksum": list(checksum) if checksum else None,
    }
    store.put(key + ".json", json.dumps(record).encode())
    return part


def list_parts(store: BlobStore, upload: Upload) -> list[Part]:
    parts = []
    directory = _upload_dir(upload.bucket, upload.upload_id)
    for info in store.list(directory + "part-"):
        if not info.key.endswith(".json"):
            continue
        number = int(info.key[len(directory) + len("part-") : -len(".json")])
        try:
            record = json.loads(store.read_bytes(info.key))
        except BlobNotFound:
            continue  # aborted while we listed
        checksum = record.get("checksum")
        parts.append(
            Part(
                number=number,
                etag=record["etag"],
                size=record["size"],
                last_modified=dt.datetime.fromisoformat(record["last_modified"]),
                checksum=(checksum[0], checksum[1]) if checksum else None,
            )
        )
    return sorted(parts, key=lambda part: part.number)


def complete_upload(
    store: BlobStore, upload: Upload, chosen: list[tuple[int, str]]
) -> objects.ObjectRecord:
    """Join the chosen (part number, ETag) parts into the object; remove the staging area."""
    staged = {part.number: part for part in list_parts(store, upload)}
    previous = 0
    selected: list[Part] = []
    for number, etag in chosen:
        if number <= previous:
            raise S3Error(
                "InvalidPartOrder",
                "The list of parts was not in ascending order. Parts must be ordered by "
                "part number.",
                UploadId=upload.upload_id,
            )
        previous = number
        part = staged.get(number)
        if part is None or part.etag != etag.strip().strip('"'):
            raise S3Error(
                "InvalidPart",
                "One or more of the specified parts could not be found. The part may not "
                "have been uploaded, or the specified entity tag may not match the part's "
                "entity tag.",
                UploadId=upload.upload_id,
                PartNumber=str(number),
                ETag=etag,
            )
        selected.append(part)
    for part in selected[:-1]:
        if part.size < MIN_PART_SIZE:
            raise S3Error(
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed object size.",
                ProposedSize=str(part.size),
                MinSizeAllowed=str(MIN_PART_SIZE),
                PartNumber=str(part.number),
                ETag=part.etag,
            )
    joined = hashlib.md5(usedforsecurity=False)
    for part in selected:
        joined.update(bytes.fromhex(part.etag))
    keys = [_part_key(upload.bucket, upload.upload_id, part.number) for part in selected]
    record = objects.write_object(
        store,
        upload.bucket,
        upload.key,
        _JoinedParts(store, keys),
        etag=f"{joined.hexdigest()}-{len(selected)}",
        headers=upload.headers,
        metadata=upload.metadata,
    )
    abort_upload(store, upload)
    return record


def abort_upload(store: BlobStore, upload: Upload) -> None:
    store.delete_prefix(_upload_dir(upload.bucket, upload.upload_id))


def uploads_in(store: BlobStore, bucket: str) -> Iterator[Upload]:
    prefix = f"{UPLOADS_PREFIX}{bucket}/"
    for info in store.list(prefix):
        if info.key.endswith("/upload.json"):
            upload_id = info.key[len(prefix) : -len("/upload.json")]
            try:
                yield find_upload(store, bucket, None, upload_id)
            except S3Error:
                continue  # completed or aborted while we listed


class _JoinedParts:
    """The parts' bytes, one after the other, as one readable stream."""

    def __init__(self, store: BlobStore, keys: list[str]) -> None:
        self._store = store
        self._keys = list(keys)
        self._current: BinaryIO | None = None

    def read(self, size: int = -1) -> bytes:
        while True:
            if self._current is None:
                if not self._keys:
                    return b""
                try:
                    self._current = self._store.open(self._keys.pop(0))
                except BlobNotFound:
                    raise S3Error(
                        "NoSuchUpload", "The upload was completed or aborted meanwhile.", 404
                    ) from None
            data = self._current.read(size if size and size > 0 else 1024 * 1024)
            if data:
                return data
            self._current.close()
            self._current = None
