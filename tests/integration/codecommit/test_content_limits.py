"""CodeCommit's content size quotas: 6 MB a file, 6 MB a folder's changes, 7 MB a commit.

The server here accepts request bodies large enough to carry those files (base64 makes
6 MB of content 8 MB of JSON), so the quotas themselves are what refuses.
"""

from __future__ import annotations

import subprocess

import pytest
from botocore.exceptions import ClientError

from tests.support.errors import code_of
from tests.support.server import running_server

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = {"FORGELINE_MAX_BODY_BYTES": str(16 * MB)}
    with running_server(tmp_path_factory.mktemp("limits"), extra_env=env, redis_db=6) as running:
        yield running


@pytest.fixture
def cc(server):
    return server.client("codecommit", read_timeout=120)


def test_a_file_of_exactly_6_mb_is_accepted_and_read_back(cc, repo):
    data = bytes(range(256)) * (6 * MB // 256)
    put = cc.put_file(repositoryName=repo, branchName="main", filePath="big.bin", fileContent=data)
    got = cc.get_file(repositoryName=repo, filePath="big.bin")
    assert got["fileSize"] == 6 * MB and got["fileContent"] == data
    assert cc.get_blob(repositoryName=repo, blobId=put["blobId"])["content"] == data


def test_a_file_over_6_mb_is_refused(cc, repo):
    assert (
        code_of(
            cc.put_file,
            repositoryName=repo,
            branchName="main",
            filePath="big.bin",
            fileContent=b"x" * (6 * MB + 1),
        )
        == "FileContentSizeLimitExceededException"
    )


def test_a_file_over_6_mb_is_never_half_written(cc, repo):
    with pytest.raises(ClientError):
        cc.put_file(
            repositoryName=repo,
            branchName="main",
            filePath="big.bin",
            fileContent=b"x" * (6 * MB + 1),
        )
    assert cc.list_branches(repositoryName=repo)["branches"] == []


def test_a_commit_over_7_mb_is_refused(cc, repo):
    files = [
        {"filePath": f"part{n}/blob.bin", "fileContent": bytes([n]) * (5 * MB // 2)}
        for n in range(3)
    ]
    assert (
        code_of(cc.create_commit, repositoryName=repo, branchName="main", putFiles=files)
        == "FileContentSizeLimitExceededException"
    )
    # Two of them (5 MB) fit.
    result = cc.create_commit(repositoryName=repo, branchName="main", putFiles=files[:2])
    assert len(result["filesAdded"]) == 2


def test_a_folder_gaining_over_6_mb_is_refused(cc, repo):
    files = [
        {"filePath": f"one/blob{n}.bin", "fileContent": bytes([n]) * (13 * MB // 4)}
        for n in range(2)
    ]
    assert (
        code_of(cc.create_commit, repositoryName=repo, branchName="main", putFiles=files)
        == "FolderContentSizeLimitExceededException"
    )
    assert cc.list_branches(repositoryName=repo)["branches"] == []


def test_files_pushed_by_git_over_6_mb_are_too_large_to_read(server, cc, repo):
    first = cc.put_file(repositoryName=repo, branchName="main", filePath="small", fileContent=b"s")
    repository_id = cc.get_repository(repositoryName=repo)["repositoryMetadata"]["repositoryId"]
    path = str(server.data_dir / "repositories" / f"{repository_id}.git")

    def git(*args: str, data: bytes | None = None) -> str:
        return (
            subprocess.run(["git", "-C", path, *args], input=data, capture_output=True, check=True)
            .stdout.decode()
            .strip()
        )

    blob = git("hash-object", "-w", "--stdin", data=b"y" * (7 * MB))
    tree = git("mktree", data=f"100644 blob {blob}\thuge.bin\n".encode())
    commit = git("commit-tree", tree, "-p", first["commitId"], "-m", "huge")
    git("update-ref", "refs/heads/main", commit, first["commitId"])
    assert code_of(cc.get_file, repositoryName=repo, filePath="huge.bin") == "FileTooLargeException"
    assert code_of(cc.get_blob, repositoryName=repo, blobId=blob) == "FileTooLargeException"
    # Listing it costs nothing: only tree objects are read.
    diff = cc.get_differences(repositoryName=repo, afterCommitSpecifier="main")["differences"]
    assert [d["afterBlob"]["path"] for d in diff] == ["huge.bin"]
