"""Source / S3: the object S3Bucket/S3ObjectKey copied into the artifact store; its ETag
is the revision (Forgeline keeps one version of each object)."""

from __future__ import annotations

from forgeline.codepipeline.engine.state import ArtifactRef
from forgeline.codepipeline.running.actions.context import ActionContext, Failed, Outcome, Succeeded
from forgeline.s3 import interface as s3


def run(context: ActionContext) -> Outcome:
    bucket = context.configuration.get("S3Bucket", "")
    key = context.configuration.get("S3ObjectKey", "")
    override = context.source_revision or {}
    if override.get("revisionType") == "S3_OBJECT_KEY":
        key = override.get("revisionValue", key)
    data = s3.read_object(context.settings, bucket, key)
    if data is None:
        return Failed(f"The object s3://{bucket}/{key} does not exist.")
    etag = s3.object_etag(context.settings, bucket, key) or ""
    if not s3.bucket_exists(context.settings, context.artifact_bucket):
        return Failed(f"The artifact store's bucket {context.artifact_bucket} does not exist.")
    artifact = context.output_artifact_names[0]
    stored = context.artifact_key(artifact)
    s3.put_object(context.settings, context.artifact_bucket, stored, data, "application/zip")
    return Succeeded(
        output_artifacts={
            artifact: ArtifactRef(artifact, f"{context.artifact_bucket}/{stored}", etag)
        },
        output_variables={"BucketName": bucket, "ObjectKey": key, "ETag": etag},
        summary=f"s3://{bucket}/{key}",
        external_id=etag,
        revision={"revisionId": etag},
    )
