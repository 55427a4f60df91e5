"""Blobs as objects in an S3-compatible bucket, optionally under a key prefix.

A put streams the source through a hashing reader into a temp object (multipart for
large inputs), then copies it server-side to its key with the SHA-256 in the object's
metadata and removes the temp object. The digest is known only once the whole source has
been read, and S3 fixes metadata when an upload starts; the copy lets the blob appear
complete and with its digest in one step. Temp objects live under a reserved segment,
which keys cannot use and listings skip.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from forgeline.core.blobstore.base import (
    CHUNK_SIZE,
    RESERVED_PREFIX,
    BlobInfo,
    BlobNotFound,
    BlobSource,
    BlobStore,
    HashingReader,
    is_valid_key,
    validate_key,
    validate_prefix,
)

SHA256_METADATA = "sha256"
TEMP_DIR = RESERVED_PREFIX + "tmp"

_MiB = 1024 * 1024
_GiB = 1024 * _MiB
_MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_DELETE_BATCH = 1000  # DeleteObjects' limit per request

UPLOAD_CONFIG = TransferConfig(
    multipart_threshold=8 * _MiB, multipart_chunksize=8 * _MiB, max_concurrency=4
)
# Single-request copies go up to S3's 5 GiB limit; only larger blobs need part copies.
COPY_CONFIG = TransferConfig(multipart_threshold=5 * _GiB, multipart_chunksize=512 * _MiB)


class S3BlobStore(BlobStore):
    def __init__(
        self,
        endpoint_url: str | None,
        bucket: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        region: str,
        prefix: str = "",
    ) -> None:
        self.bucket = bucket
        self.prefix = _normalize_store_prefix(prefix)
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        self.region = region
        self.client = session.client(
            "s3", endpoint_url=endpoint_url, config=_client_config(endpoint_url)
        )
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    # -- writing ---------------------------------------------------------------------

    def put(self, key: str, data: BlobSource) -> BlobInfo:
        final_key = self._object_key(key)
        self._ensure_bucket()
        temp_key = f"{self.prefix}{TEMP_DIR}/{uuid.uuid4().hex}"
        reader = HashingReader(data)
        try:
            # A failed upload aborts its multipart upload, so nothing is left behind.
            self.client.upload_fileobj(reader, self.bucket, temp_key, Config=UPLOAD_CONFIG)
            info = BlobInfo(key=key, size=reader.size, sha256=reader.hexdigest())
            self.client.copy(
                {"Bucket": self.bucket, "Key": temp_key},
                self.bucket,
                final_key,
                ExtraArgs={
                    "Metadata": {SHA256_METADATA: info.sha256},
                    "MetadataDirective": "REPLACE",
                },
                Config=COPY_CONFIG,
            )
        finally:
            # A temp object left behind is invisible to readers; never let cleanup
            # hide the put's own outcome.
            with contextlib.suppress(ClientError, BotoCoreError):
                self.client.delete_object(Bucket=self.bucket, Key=temp_key)
        return info

    def delete(self, key: str) -> None:
        final_key = self._object_key(key)
        self._ensure_bucket()
        self.client.delete_object(Bucket=self.bucket, Key=final_key)

    def delete_prefix(self, prefix: str) -> int:
        count = 0
        batch: list[dict[str, str]] = []
        for key, _size in self._iter_objects(prefix):
            batch.append({"Key": self.prefix + key})
            if len(batch) == _DELETE_BATCH:
                count += self._delete_batch(batch)
                batch = []
        if batch:
            count += self._delete_batch(batch)
        return count

    # -- reading ---------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        final_key = self._object_key(key)
        self._ensure_bucket()
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=final_key)
        except ClientError as error:
            if _is_missing(error):
                raise BlobNotFound(key) from None
            raise
        return response["Body"]

    def stat(self, key: str) -> BlobInfo | None:
        final_key = self._object_key(key)
        self._ensure_bucket()
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=final_key)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        sha256 = head.get("Metadata", {}).get(SHA256_METADATA)
        if sha256 is None:  # written by something other than this store
            return self._hash_object(key)
        return BlobInfo(key=key, size=head["ContentLength"], sha256=sha256)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        # Listings do not carry user metadata, so each digest costs one HEAD request.
        for key, _size in self._iter_objects(prefix):
            info = self.stat(key)
            if info is not None:  # deleted while we were listing
                yield info

    # -- helpers ---------------------------------------------------------------------

    def _object_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _iter_objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(store key, size) of the objects under `prefix`, skipping bookkeeping objects."""
        validate_prefix(prefix)
        self._ensure_bucket()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if is_valid_key(key):
                    yield key, item["Size"]

    def _delete_batch(self, batch: Sequence[dict[str, str]]) -> int:
        response = self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise OSError(
                f"could not delete {len(errors)} blobs, e.g. {first.get('Key')}: "
                f"{first.get('Code')} {first.get('Message')}"
            )
        return len(batch)

    def _hash_object(self, key: str) -> BlobInfo | None:
        digest = hashlib.sha256()
        size = 0
        try:
            for chunk in self.iter_chunks(key, CHUNK_SIZE):
                digest.update(chunk)
                size += len(chunk)
        except BlobNotFound:
            return None
        return BlobInfo(key=key, size=size, sha256=digest.hexdigest())

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as error:
                if not _is_missing(error):
                    raise
                self._create_bucket()
            self._bucket_ready = True

    def _create_bucket(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":  # S3 rejects a location constraint for us-east-1
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**kwargs)
        except ClientError as error:
            # Another process may have created it between our check and our create.
            if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise


def _client_config(endpoint_url: str | None) -> Config:
    return Config(
        # S3-compatible servers rarely serve virtual-hosted bucket names.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        # Newer botocore sends CRC checksums on every request by default; many
        # S3-compatible servers reject or mishandle them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 5},
    )


def _normalize_store_prefix(prefix: str) -> str:
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    return validate_key(stripped) + "/"


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING_CODES
