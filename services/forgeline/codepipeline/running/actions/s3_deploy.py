"""Deploy / S3: the input artifact copied to BucketName/ObjectKey, or (Extract true) its
files written under ObjectKey as a prefix. CannedACL, CacheControl and the KMS key are
accepted; Forgeline's S3 keeps no ACLs or keys, and CacheControl becomes the objects'
Cache-Control header."""

from __future__ import annotations

import io
import mimetypes
import zipfile

from forgeline.codepipeline.running.actions.context import (
    ActionContext,
    Failed,
    Outcome,
    Succeeded,
    split_location,
)
from forgeline.s3 import interface as s3


def run(context: ActionContext) -> Outcome:
    bucket = context.configuration.get("BucketName", "")
    extract = context.configuration.get("Extract", "").lower() == "true"
    prefix = context.configuration.get("ObjectKey", "").strip("/")
    if not s3.bucket_exists(context.settings, bucket):
        return Failed(f"The bucket {bucket} does not exist.")
    source_bucket, source_key = split_location(context.input_artifacts[0].location)
    data = s3.read_object(context.settings, source_bucket, source_key)
    if data is None:
        return Failed(f"The input artifact {context.input_artifacts[0].name} is missing.")
    if not extract:
        if not prefix:
            return Failed("ObjectKey is required when Extract is false.")
        s3.put_object(context.settings, bucket, prefix, data, "application/zip")
        return Succeeded(summary=f"Deployed to s3://{bucket}/{prefix}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return Failed(f"The input artifact {context.input_artifacts[0].name} is not a zip file.")
    written = 0
    for member in archive.infolist():
        if member.is_dir():
            continue
        key = f"{prefix}/{member.filename}" if prefix else member.filename
        content_type = mimetypes.guess_type(member.filename)[0] or "application/octet-stream"
        s3.put_object(context.settings, bucket, key, archive.read(member), content_type)
        written += 1
    return Succeeded(summary=f"Extracted {written} files to s3://{bucket}/{prefix}")
