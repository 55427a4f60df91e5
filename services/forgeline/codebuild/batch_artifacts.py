"""COMBINE_ARTIFACTS: gather the primary artifacts of a batch's builds into one location.

With `buildBatchConfig.combineArtifacts`, CodeBuild puts every build's primary artifact
in one place, each in a folder named after the build's batch identifier. The place is the
batch's own artifact location, worked out from the project's S3 artifact settings as for
a build (`<bucket>/<path>/[<batch uuid>/]<name>`), with the batch id standing in for the
build id. The combined artifact is a folder of objects, whatever each build's packaging:
a build's zip file is kept as one object inside its folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from forgeline.codebuild import s3locations
from forgeline.codebuild.artifacts import ArtifactError, StoredArtifact, artifact_object_key
from forgeline.core.blobstore import BlobStore


@dataclass(frozen=True)
class BuiltArtifact:
    """One build's primary artifact: its batch identifier and S3 location (an ARN)."""

    identifier: str
    location: str


def combines(batch_artifacts: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
    """Whether a batch has a COMBINE_ARTIFACTS phase: asked for, with S3 artifacts to combine."""
    return bool(config.get("combineArtifacts")) and batch_artifacts.get("type") == "S3"


def _objects_of(blobstore: BlobStore, location: str) -> list[tuple[str, str]]:
    """(blob key, name inside the build's folder) for every object of an artifact."""
    bucket, key = s3locations.split_location(location)
    key = key.strip("/")
    if key:
        single = s3locations.blob_key(bucket, key)
        if blobstore.stat(single) is not None:  # a zip file, or a one-object artifact
            return [(single, key.rsplit("/", 1)[-1])]
    prefix = s3locations.blob_key(bucket, f"{key}/" if key else "")
    return sorted((info.key, info.key[len(prefix) :]) for info in blobstore.list(prefix))


def combine_artifacts(
    blobstore: BlobStore,
    batch_artifacts: Mapping[str, Any],
    batch_id: str,
    built: Sequence[BuiltArtifact],
) -> StoredArtifact:
    """Copy each build's artifact into `<batch location>/<identifier>/`; describe the result.

    Raises ArtifactError when the batch's location is unusable or a build's artifact has
    gone missing.
    """
    bucket, key = artifact_object_key(batch_artifacts, batch_id, batch_artifacts.get("name"))
    # Every listing is taken before anything is copied: the combined folder may lie
    # inside a build's own location, and copies must not be mistaken for its objects.
    listed = []
    for item in built:
        objects = _objects_of(blobstore, item.location)
        if not objects:
            raise ArtifactError(
                f"the artifact of build {item.identifier} ({item.location}) has no objects"
            )
        listed.append((item, objects))
    keys: list[str] = []
    size = 0
    for item, objects in listed:
        for source, name in objects:
            target_key = "/".join(part for part in (key, item.identifier, name) if part)
            target = s3locations.blob_key(bucket, target_key)
            with blobstore.open(source) as data:
                info = blobstore.put(target, data)
            keys.append(target)
            size += info.size
    location = f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"
    optional = {
        "override_artifact_name": batch_artifacts.get("overrideArtifactName"),
        "encryption_disabled": batch_artifacts.get("encryptionDisabled"),
        "artifact_identifier": batch_artifacts.get("artifactIdentifier"),
        "bucket_owner_access": batch_artifacts.get("bucketOwnerAccess"),
    }
    return StoredArtifact(location=location, size=size, keys=tuple(keys), **optional)
