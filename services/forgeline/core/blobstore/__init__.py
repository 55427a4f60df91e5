"""Blob storage: build artifacts, logs and source bundles, on local disk or in S3."""

from __future__ import annotations

from forgeline.core.blobstore.base import (
    BlobInfo,
    BlobNotFound,
    BlobSource,
    BlobStore,
    validate_key,
    validate_prefix,
)
from forgeline.core.blobstore.local import LocalBlobStore
from forgeline.core.blobstore.s3 import S3BlobStore
from forgeline.core.settings import Settings

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobSource",
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "get_blob_store",
    "validate_key",
    "validate_prefix",
]


def get_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings configure."""
    if settings.blob_store == "s3":
        return S3BlobStore(
            endpoint_url=settings.s3_endpoint_url,
            bucket=settings.s3_bucket,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            region=settings.s3_region,
        )
    if settings.blob_store == "local":
        return LocalBlobStore(settings.data_dir / "blobs")
    raise ValueError(f"unknown blob store {settings.blob_store!r}")
