"""COMBINE_ARTIFACTS against a real local blob store: each build's artifact lands in a
folder named after its batch identifier, under the batch's own artifact location."""

from __future__ import annotations

import io

import pytest

from forgeline.codebuild.artifacts import ArtifactError
from forgeline.codebuild.batch_artifacts import BuiltArtifact, combine_artifacts, combines
from forgeline.core.blobstore import LocalBlobStore

# Files and processes, but no database: run once, not on every backend's pass.
pytestmark = pytest.mark.no_db


@pytest.fixture
def store(tmp_path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def put(store: LocalBlobStore, key: str, text: str) -> None:
    store.put(f"buckets/{key}", io.BytesIO(text.encode()))


def test_folders_and_zip_files_are_combined_by_identifier(store):
    put(store, "out/builds/uuid-1/app/bin/tool", "tool")
    put(store, "out/builds/uuid-1/app/README", "readme")
    put(store, "out/builds/uuid-2/app.zip", "zipped")
    config = {"type": "S3", "location": "out", "path": "batch", "namespaceType": "BUILD_ID"}
    combined = combine_artifacts(
        store,
        {**config, "name": "app"},
        "proj:batch-uuid",
        [
            BuiltArtifact("linux", "arn:aws:s3:::out/builds/uuid-1/app"),
            BuiltArtifact("windows", "arn:aws:s3:::out/builds/uuid-2/app.zip"),
        ],
    )
    assert combined.location == "arn:aws:s3:::out/batch/batch-uuid/app"
    assert sorted(info.key for info in store.list("buckets/out/batch/")) == [
        "buckets/out/batch/batch-uuid/app/linux/README",
        "buckets/out/batch/batch-uuid/app/linux/bin/tool",
        "buckets/out/batch/batch-uuid/app/windows/app.zip",
    ]
    assert store.read_bytes("buckets/out/batch/batch-uuid/app/windows/app.zip") == b"zipped"
    assert combined.size == len("tool") + len("readme") + len("zipped")


def test_copies_inside_a_build_location_are_not_combined_again(store):
    # Without a namespace every build writes to out/app, where the batch also combines.
    put(store, "out/app/file", "x")
    built = [BuiltArtifact("a", "arn:aws:s3:::out/app"), BuiltArtifact("b", "arn:aws:s3:::out/app")]
    combine_artifacts(store, {"type": "S3", "location": "out", "name": "app"}, "p:u", built)
    assert sorted(info.key for info in store.list("buckets/out/")) == [
        "buckets/out/app/a/file",
        "buckets/out/app/b/file",
        "buckets/out/app/file",
    ]


def test_a_missing_build_artifact_is_an_error(store):
    with pytest.raises(ArtifactError, match="build gone"):
        combine_artifacts(
            store,
            {"type": "S3", "location": "out", "name": "app"},
            "p:u",
            [BuiltArtifact("gone", "arn:aws:s3:::out/nothing-here")],
        )


def test_only_s3_artifacts_asked_to_combine_are_combined():
    assert combines({"type": "S3"}, {"combineArtifacts": True})
    assert not combines({"type": "S3"}, {"combineArtifacts": False})
    assert not combines({"type": "NO_ARTIFACTS"}, {"combineArtifacts": True})
