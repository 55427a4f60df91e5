"""What other services may use of Forgeline's S3, and nothing more.

CodePipeline keeps its artifacts as objects of its artifact store's bucket, so the S3
endpoint, CodeBuild's CODEPIPELINE sources and `aws s3 cp` all see the same objects.
"""

from __future__ import annotations

from forgeline.core.blobstore import BlobNotFound, get_blob_store
from forgeline.core.settings import Settings
from forgeline.s3 import buckets, objects


def bucket_exists(settings: Settings, bucket: str) -> bool:
    return buckets.get_bucket(get_blob_store(settings), bucket) is not None


def put_object(settings: Settings, bucket: str, key: str, data: bytes, content_type: str) -> str:
    """Store the object (as PutObject does) and return its ETag."""
    record = objects.write_object(
        get_blob_store(settings), bucket, key, data, headers={"Content-Type": content_type}
    )
    return record.etag


def read_object(settings: Settings, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when there is no such object."""
    if objects.key_problem(key) is not None:
        return None
    try:
        return get_blob_store(settings).read_bytes(objects.blob_key(bucket, key))
    except BlobNotFound:
        return None


def object_etag(settings: Settings, bucket: str, key: str) -> str | None:
    record = objects.stat_object(get_blob_store(settings), bucket, key)
    return None if record is None else record.etag
