"""Where S3 locations live in Forgeline's blob store.

CodeBuild names S3 places as "bucket/key" (sources, artifacts, caches, logs). They are
kept in the one blob store under `buckets/<bucket>/<key>`, so the S3-compatible endpoint
and the build engine agree on where every object is.
"""

from __future__ import annotations

BUCKETS_PREFIX = "buckets/"


def blob_key(bucket: str, key: str) -> str:
    return f"{BUCKETS_PREFIX}{bucket}/{key.lstrip('/')}"


def split_location(location: str) -> tuple[str, str]:
    """ "bucket/path/to/key" (or an s3:// URL or an S3 ARN) -> (bucket, key); key may be ""."""
    text = location
    for prefix in ("arn:aws:s3:::", "s3://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    bucket, _, key = text.partition("/")
    return bucket, key
