"""GetBlobDifferences: line-level hunks between two blobs, over boto3."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

BEFORE = "".join(f"line {i}\n" for i in range(1, 41))
AFTER = (
    BEFORE.replace("line 5\n", "line five\n")
    .replace("line 30\n", "")
    .replace("line 40\n", "line 40\nline 41\n")
)


@pytest.fixture
def blobs(forgeline):
    client = forgeline.client("codecommit")
    name = f"blobdiff-{uuid.uuid4().hex[:8]}"
    client.create_repository(repositoryName=name)
    first = client.put_file(
        repositoryName=name, branchName="main", filePath="f.txt", fileContent=BEFORE.encode()
    )
    second = client.put_file(
        repositoryName=name,
        branchName="main",
        filePath="f.txt",
        fileContent=AFTER.encode(),
        parentCommitId=first["commitId"],
    )
    yield client, name, first["blobId"], second["blobId"]
    client.delete_repository(repositoryName=name)


def test_hunks_with_context(blobs):
    client, name, before, after = blobs
    diff = client.get_blob_differences(repositoryName=name, beforeBlobId=before, afterBlobId=after)
    assert diff["isBinary"] is False
    assert diff["beforeBlobSize"] == len(BEFORE) and diff["afterBlobSize"] == len(AFTER)
    hunks = diff["hunks"]
    assert len(hunks) == 3
    first = hunks[0]
    assert (first["beforeStartLine"], first["beforeLineCount"]) == (2, 7)
    kinds = [(c["type"], c["content"]) for c in first["changes"]]
    assert ("DELETE", "line 5") in kinds and ("ADD", "line five") in kinds
    deleted = next(c for c in first["changes"] if c["type"] == "DELETE")
    assert deleted["beforeLineNumber"] == 5 and "afterLineNumber" not in deleted
    added = next(c for c in hunks[2]["changes"] if c["type"] == "ADD")
    assert added["content"] == "line 41" and "beforeLineNumber" not in added


def test_context_lines_and_paging(blobs):
    client, name, before, after = blobs
    tight = client.get_blob_differences(
        repositoryName=name, beforeBlobId=before, afterBlobId=after, contextLines=0, MaxResults=2
    )
    assert len(tight["hunks"]) == 2
    assert all(c["type"] != "CONTEXT" for h in tight["hunks"] for c in h["changes"])
    rest = client.get_blob_differences(
        repositoryName=name,
        beforeBlobId=before,
        afterBlobId=after,
        contextLines=0,
        MaxResults=2,
        NextToken=tight["NextToken"],
    )
    assert len(rest["hunks"]) == 1 and "NextToken" not in rest
    with pytest.raises(ClientError) as bad:
        client.get_blob_differences(repositoryName=name, afterBlobId=after, contextLines=21)
    assert bad.value.response["Error"]["Code"] == "ValidationException"


def test_against_empty_before_state(blobs):
    client, name, _, after = blobs
    diff = client.get_blob_differences(repositoryName=name, afterBlobId=after)
    changes = [c for h in diff["hunks"] for c in h["changes"]]
    assert len(changes) == AFTER.count("\n") and all(c["type"] == "ADD" for c in changes)


def test_errors(blobs):
    client, name, before, _ = blobs
    for blob_id, code in (
        ("0" * 40, "BlobIdDoesNotExistException"),
        ("zz", "InvalidBlobIdException"),
    ):
        with pytest.raises(ClientError) as caught:
            client.get_blob_differences(
                repositoryName=name, beforeBlobId=before, afterBlobId=blob_id
            )
        assert caught.value.response["Error"]["Code"] == code
    with pytest.raises(ClientError) as caught:
        client.get_blob_differences(repositoryName=name, afterBlobId=before, NextToken="forged")
    assert caught.value.response["Error"]["Code"] == "InvalidContinuationTokenException"


def test_binary_blobs_have_no_hunks(forgeline):
    client = forgeline.client("codecommit")
    name = f"blobbin-{uuid.uuid4().hex[:8]}"
    client.create_repository(repositoryName=name)
    try:
        put = client.put_file(
            repositoryName=name,
            branchName="main",
            filePath="b.bin",
            fileContent=b"\x00\x01\x02binary\x00",
        )
        diff = client.get_blob_differences(repositoryName=name, afterBlobId=put["blobId"])
        assert diff["isBinary"] is True and diff["hunks"] == []
    finally:
        client.delete_repository(repositoryName=name)
