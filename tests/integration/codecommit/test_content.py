"""CodeCommit branches and file content over boto3 against a real server and real git."""

from __future__ import annotations

import subprocess
import threading
import uuid

import pytest
from botocore.exceptions import ClientError

from forgeline.core.events import EventReader
from tests.support.errors import code_of


def git_dir(forgeline, cc, name):
    repository_id = cc.get_repository(repositoryName=name)["repositoryMetadata"]["repositoryId"]
    return forgeline.data_dir / "repositories" / f"{repository_id}.git"


def first_commit(cc, repo, path="README.md", content=b"hello\n"):
    return cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath=path,
        fileContent=content,
        commitMessage="first",
        name="Alice",
        email="alice@example.com",
    )


# -- PutFile and reading back ---------------------------------------------------------------
def test_put_file_in_an_empty_repository_creates_the_branch_and_default(cc, repo, forgeline):
    put = first_commit(cc, repo, "/docs/guide.md", b"# Guide\n")
    assert cc.get_repository(repositoryName=repo)["repositoryMetadata"]["defaultBranch"] == "main"
    assert cc.get_branch(repositoryName=repo, branchName="main")["branch"] == {
        "branchName": "main",
        "commitId": put["commitId"],
    }
    got = cc.get_file(repositoryName=repo, filePath="docs/guide.md")
    assert got["fileContent"] == b"# Guide\n"
    assert (got["commitId"], got["blobId"], got["filePath"]) == (
        put["commitId"],
        put["blobId"],
        "docs/guide.md",
    )
    assert (got["fileMode"], got["fileSize"]) == ("NORMAL", 8)
    commit = cc.get_commit(repositoryName=repo, commitId=put["commitId"])["commit"]
    assert commit["treeId"] == put["treeId"] and commit["parents"] == []
    assert commit["message"] == "first"
    assert commit["author"]["name"] == "Alice" and commit["author"]["email"] == "alice@example.com"
    assert commit["committer"]["name"] == "Alice"
    seconds, offset = commit["author"]["date"].split(" ")
    assert seconds.isdigit() and offset == "+0000"
    # The bare repository agrees, and HEAD follows the default branch for clones.
    path = git_dir(forgeline, cc, repo)
    shown = subprocess.run(
        ["git", "-C", str(path), "show", "main:docs/guide.md"], capture_output=True
    )
    assert shown.stdout == b"# Guide\n"
    head = subprocess.run(
        ["git", "-C", str(path), "symbolic-ref", "HEAD"], capture_output=True, text=True
    )
    assert head.stdout.strip() == "refs/heads/main"
    fsck = subprocess.run(
        ["git", "-C", str(path), "fsck", "--strict"], capture_output=True, text=True
    )
    assert fsck.returncode == 0, fsck.stderr


def test_default_author_is_the_callers_name_with_an_empty_email(cc, repo):
    put = cc.put_file(repositoryName=repo, branchName="main", filePath="a", fileContent=b"a")
    commit = cc.get_commit(repositoryName=repo, commitId=put["commitId"])["commit"]
    assert commit["author"]["name"] == "admin"
    assert commit["author"]["email"] == ""
    assert commit["message"] == ""


def test_binary_content_round_trips_through_put_get_and_blob(cc, repo):
    data = bytes(range(256)) * 64 + b"\x00\xff\xfe"
    put = cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath="bin/data.bin",
        fileContent=data,
        fileMode="EXECUTABLE",
    )
    got = cc.get_file(repositoryName=repo, filePath="/bin/data.bin", commitSpecifier="main")
    assert got["fileContent"] == data and got["fileMode"] == "EXECUTABLE"
    assert got["fileSize"] == len(data)
    assert cc.get_blob(repositoryName=repo, blobId=put["blobId"])["content"] == data


def test_put_file_updates_keep_mode_and_refuse_same_content(cc, repo):
    first = cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath="run.sh",
        fileContent=b"echo 1\n",
        fileMode="EXECUTABLE",
    )
    second = cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath="run.sh",
        fileContent=b"echo 2\n",
        parentCommitId=first["commitId"],
    )
    commit = cc.get_commit(repositoryName=repo, commitId=second["commitId"])["commit"]
    assert commit["parents"] == [first["commitId"]]
    assert cc.get_file(repositoryName=repo, filePath="run.sh")["fileMode"] == "EXECUTABLE"
    assert (
        code_of(
            cc.put_file,
            repositoryName=repo,
            branchName="main",
            filePath="run.sh",
            fileContent=b"echo 2\n",
            parentCommitId=second["commitId"],
        )
        == "SameFileContentException"
    )
    # The content is the same but the mode changes: that is a change.
    third = cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath="run.sh",
        fileContent=b"echo 2\n",
        fileMode="NORMAL",
        parentCommitId=second["commitId"],
    )
    assert (
        cc.get_file(repositoryName=repo, filePath="run.sh", commitSpecifier=third["commitId"])[
            "fileMode"
        ]
        == "NORMAL"
    )


def test_put_file_parent_commit_errors(cc, repo):
    first = first_commit(cc, repo)
    second = cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath="b",
        fileContent=b"b",
        parentCommitId=first["commitId"],
    )
    base = dict(repositoryName=repo, branchName="main", filePath="c", fileContent=b"c")
    assert code_of(cc.put_file, **base) == "ParentCommitIdRequiredException"
    assert (
        code_of(cc.put_file, **base, parentCommitId=first["commitId"])
        == "ParentCommitIdOutdatedException"
    )
    assert (
        code_of(cc.put_file, **base, parentCommitId="zz-not-hex")
        == "InvalidParentCommitIdException"
    )
    assert (
        code_of(cc.put_file, **base, parentCommitId="1" * 40) == "ParentCommitDoesNotExistException"
    )
    # An abbreviated id of the tip is accepted.
    third = cc.put_file(**base, parentCommitId=second["commitId"][:12])
    assert (
        cc.get_branch(repositoryName=repo, branchName="main")["branch"]["commitId"]
        == third["commitId"]
    )


def test_put_file_branch_errors(cc, repo, forgeline):
    first = first_commit(cc, repo)
    base = dict(
        repositoryName=repo, filePath="x", fileContent=b"x", parentCommitId=first["commitId"]
    )
    assert code_of(cc.put_file, **base, branchName="nope") == "BranchDoesNotExistException"
    assert code_of(cc.put_file, **base, branchName="bad..name") == "InvalidBranchNameException"
    subprocess.run(
        ["git", "-C", str(git_dir(forgeline, cc, repo)), "tag", "v1", first["commitId"]], check=True
    )
    assert code_of(cc.put_file, **base, branchName="v1") == "BranchNameIsTagNameException"
    assert (
        code_of(
            cc.put_file,
            repositoryName=f"missing-{uuid.uuid4().hex[:6]}",
            branchName="main",
            filePath="x",
            fileContent=b"x",
        )
        == "RepositoryDoesNotExistException"
    )


def test_put_file_content_and_identity_errors(cc, repo):
    base = dict(repositoryName=repo, branchName="main", filePath="f")
    assert code_of(cc.put_file, **base, fileContent=b"") == "FileContentRequiredException"
    assert code_of(cc.put_file, **base, fileContent=b"x", email="a<b>@x") == "InvalidEmailException"
    assert (
        code_of(cc.put_file, **base, fileContent=b"x", name="n" * 1025)
        == "NameLengthExceededException"
    )
    assert (
        code_of(cc.put_file, **base, fileContent=b"x", commitMessage="m" * (256 * 1024 + 1))
        == "CommitMessageLengthExceededException"
    )
    assert (
        code_of(cc.put_file, **base, fileContent=b"x", fileMode="WEIRD")
        == "InvalidFileModeException"
    )
    # Nothing above left a branch behind.
    assert cc.list_branches(repositoryName=repo)["branches"] == []


@pytest.mark.parametrize(
    "path",
    [
        "../escape.txt",
        "a/../../b",
        "a//b",
        "./a",
        "a/./b",
        ".git/config",
        "sub/.GIT/hooks/x",
        "dir/",
        "GIT~1/config",
        ".git./config",
        "a/.Git /x",
        "/",
        "a\x00b",
    ],
)
def test_path_traversal_and_malformed_paths_are_invalid(cc, repo, path):
    assert (
        code_of(
            cc.put_file, repositoryName=repo, branchName="main", filePath=path, fileContent=b"x"
        )
        == "InvalidPathException"
    )
    assert cc.list_branches(repositoryName=repo)["branches"] == []


def test_a_path_that_is_not_unicode_is_refused_before_anything_is_written(cc, repo):
    # JSON can carry a lone surrogate; no UTF-8 file name can hold one.
    assert (
        code_of(
            cc.put_file,
            repositoryName=repo,
            branchName="main",
            filePath="\udcff.txt",
            fileContent=b"x",
        )
        == "SerializationException"
    )
    assert cc.list_branches(repositoryName=repo)["branches"] == []


def test_missing_paths_are_required(cc, repo):
    first_commit(cc, repo)
    assert code_of(cc.get_file, repositoryName=repo, filePath="") == "PathRequiredException"
    assert (
        code_of(cc.put_file, repositoryName=repo, branchName="main", filePath="", fileContent=b"x")
        == "PathRequiredException"
    )


def test_file_and_folder_name_conflicts(cc, repo, forgeline):
    first = cc.put_file(
        repositoryName=repo, branchName="main", filePath="docs/a.md", fileContent=b"a"
    )
    base = dict(
        repositoryName=repo, branchName="main", fileContent=b"x", parentCommitId=first["commitId"]
    )
    assert (
        code_of(cc.put_file, **base, filePath="docs")
        == "FileNameConflictsWithDirectoryNameException"
    )
    assert (
        code_of(cc.put_file, **base, filePath="docs/a.md/inner")
        == "DirectoryNameConflictsWithFileNameException"
    )
    # A submodule (gitlink) written by git: neither replaced nor entered.
    path = str(git_dir(forgeline, cc, repo))
    tree = (
        subprocess.run(
            ["git", "-C", path, "mktree"],
            check=True,
            capture_output=True,
            input=f"160000 commit {'1' * 40}\tlib\n040000 tree {first['treeId']}\tcode\n".encode(),
        )
        .stdout.decode()
        .strip()
    )
    commit = subprocess.run(
        ["git", "-C", path, "commit-tree", tree, "-p", first["commitId"], "-m", "sub"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        ["git", "-C", path, "update-ref", "refs/heads/main", commit, first["commitId"]], check=True
    )
    base["parentCommitId"] = commit
    assert (
        code_of(cc.put_file, **base, filePath="lib")
        == "FilePathConflictsWithSubmodulePathException"
    )
    assert (
        code_of(cc.put_file, **base, filePath="lib/x")
        == "FilePathConflictsWithSubmodulePathException"
    )
    folder = cc.get_folder(repositoryName=repo, folderPath="/")
    assert folder["subModules"] == [
        {"commitId": "1" * 40, "absolutePath": "lib", "relativePath": "lib"}
    ]


def test_racing_put_files_with_one_parent_have_exactly_one_winner(cc, repo, forgeline):
    first = first_commit(cc, repo)
    results: list[object] = []
    barrier = threading.Barrier(2)

    def put(n: int) -> None:
        client = forgeline.client("codecommit")
        barrier.wait()
        try:
            results.append(
                client.put_file(
                    repositoryName=repo,
                    branchName="main",
                    filePath=f"race-{n}.txt",
                    fileContent=f"{n}".encode(),
                    parentCommitId=first["commitId"],
                )
            )
        except ClientError as error:
            results.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=put, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1
    assert [r for r in results if not isinstance(r, dict)] == ["ParentCommitIdOutdatedException"]
    head = cc.get_branch(repositoryName=repo, branchName="main")["branch"]["commitId"]
    assert head == winners[0]["commitId"]
    files = {f["absolutePath"] for f in cc.get_folder(repositoryName=repo, folderPath="")["files"]}
    assert len(files & {"race-0.txt", "race-1.txt"}) == 1


def test_put_file_publishes_repository_state_change_events(cc, repo, forgeline):
    first = first_commit(cc, repo)
    second = cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath="b",
        fileContent=b"b",
        parentCommitId=first["commitId"],
    )
    reader = EventReader(f"content-test-{uuid.uuid4().hex}", forgeline.database_url)
    mine = []
    while batch := reader.read(
        limit=1000, source="aws.codecommit", detail_type="CodeCommit Repository State Change"
    ):
        mine += [e for e in batch if e.detail.get("repositoryName") == repo]
    assert [e.detail["event"] for e in mine] == ["referenceCreated", "referenceUpdated"]
    created, updated = (e.detail for e in mine)
    assert created["commitId"] == first["commitId"] and "oldCommitId" not in created
    assert updated["commitId"] == second["commitId"] and updated["oldCommitId"] == first["commitId"]
    assert created["referenceName"] == "main" and created["referenceType"] == "branch"
    assert mine[0].resources[0].endswith(f":{repo}")


# -- DeleteFile ---------------------------------------------------------------------------
def test_delete_file_removes_empty_folders_unless_asked_to_keep_them(cc, repo):
    first = cc.create_commit(
        repositoryName=repo,
        branchName="main",
        putFiles=[
            {"filePath": "a/b/c/one.txt", "fileContent": b"1"},
            {"filePath": "a/b/c/two.txt", "fileContent": b"2"},
            {"filePath": "top.txt", "fileContent": b"t"},
        ],
    )
    gone = cc.delete_file(
        repositoryName=repo,
        branchName="main",
        filePath="/a/b/c/one.txt",
        parentCommitId=first["commitId"],
        commitMessage="rm one",
    )
    assert gone["filePath"] == "a/b/c/one.txt"
    assert (
        gone["blobId"]
        == cc.get_file(
            repositoryName=repo, filePath="a/b/c/one.txt", commitSpecifier=first["commitId"]
        )["blobId"]
    )
    kept = cc.delete_file(
        repositoryName=repo,
        branchName="main",
        filePath="a/b/c/two.txt",
        parentCommitId=gone["commitId"],
        keepEmptyFolders=True,
    )
    folder = cc.get_folder(
        repositoryName=repo, folderPath="a/b/c", commitSpecifier=kept["commitId"]
    )
    assert [f["relativePath"] for f in folder["files"]] == [".gitkeep"]
    # Without keepEmptyFolders the whole emptied chain disappears.
    again = cc.create_commit(
        repositoryName=repo,
        branchName="main",
        parentCommitId=kept["commitId"],
        putFiles=[{"filePath": "x/y/z.txt", "fileContent": b"z"}],
    )
    pruned = cc.delete_file(
        repositoryName=repo,
        branchName="main",
        filePath="x/y/z.txt",
        parentCommitId=again["commitId"],
    )
    assert (
        code_of(
            cc.get_folder, repositoryName=repo, folderPath="x", commitSpecifier=pruned["commitId"]
        )
        == "FolderDoesNotExistException"
    )
    assert cc.get_file(repositoryName=repo, filePath="top.txt")["fileContent"] == b"t"


def test_delete_file_errors(cc, repo):
    first = first_commit(cc, repo)
    base = dict(repositoryName=repo, branchName="main", parentCommitId=first["commitId"])
    assert code_of(cc.delete_file, **base, filePath="nope.txt") == "FileDoesNotExistException"
    assert (
        code_of(cc.delete_file, **{**base, "branchName": "other"}, filePath="README.md")
        == "BranchDoesNotExistException"
    )
    assert (
        code_of(cc.delete_file, **{**base, "parentCommitId": "2" * 40}, filePath="README.md")
        == "ParentCommitDoesNotExistException"
    )
    assert code_of(cc.delete_file, **base, filePath="../README.md") == "InvalidPathException"


# -- GetFile / GetFolder / GetBlob -----------------------------------------------------------
def test_get_file_and_folder_by_every_kind_of_specifier(cc, repo, forgeline):
    first = cc.create_commit(
        repositoryName=repo,
        branchName="main",
        putFiles=[
            {"filePath": "src/app.py", "fileContent": b"print(1)\n"},
            {"filePath": "src/run", "fileContent": b"#!/bin/sh\n", "fileMode": "EXECUTABLE"},
            {"filePath": "src/link", "fileContent": b"app.py", "fileMode": "SYMLINK"},
            {"filePath": "src/pkg/mod.py", "fileContent": b""},
        ],
    )
    second = cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath="src/app.py",
        fileContent=b"print(2)\n",
        parentCommitId=first["commitId"],
    )
    subprocess.run(
        ["git", "-C", str(git_dir(forgeline, cc, repo)), "tag", "v1", first["commitId"]], check=True
    )
    for specifier, expected in [
        ("main", b"print(2)\n"),
        ("refs/heads/main", b"print(2)\n"),
        ("HEAD", b"print(2)\n"),
        ("v1", b"print(1)\n"),
        (first["commitId"], b"print(1)\n"),
        (first["commitId"][:8], b"print(1)\n"),
    ]:
        got = cc.get_file(repositoryName=repo, filePath="src/app.py", commitSpecifier=specifier)
        assert got["fileContent"] == expected, specifier
    folder = cc.get_folder(
        repositoryName=repo, folderPath="/src/", commitSpecifier=second["commitId"]
    )
    assert folder["folderPath"] == "src"
    assert {f["relativePath"]: f["fileMode"] for f in folder["files"]} == {
        "app.py": "NORMAL",
        "run": "EXECUTABLE",
    }
    assert folder["symbolicLinks"][0]["absolutePath"] == "src/link"
    assert folder["symbolicLinks"][0]["fileMode"] == "SYMLINK"
    assert folder["subFolders"][0]["absolutePath"] == "src/pkg"
    sub = cc.get_folder(repositoryName=repo, folderPath="src/pkg")
    assert sub["treeId"] == folder["subFolders"][0]["treeId"]
    root = cc.get_folder(repositoryName=repo, folderPath="")
    assert (
        root["treeId"]
        == cc.get_commit(repositoryName=repo, commitId=second["commitId"])["commit"]["treeId"]
    )
    link = cc.get_file(repositoryName=repo, filePath="src/link")
    assert (link["fileMode"], link["fileContent"]) == ("SYMLINK", b"app.py")


def test_read_errors(cc, repo):
    # An empty repository has no default branch to read from.
    assert code_of(cc.get_file, repositoryName=repo, filePath="a") == "CommitDoesNotExistException"
    assert (
        code_of(cc.get_folder, repositoryName=repo, folderPath="/") == "CommitDoesNotExistException"
    )
    first = cc.put_file(
        repositoryName=repo, branchName="main", filePath="d/f.txt", fileContent=b"f"
    )
    assert code_of(cc.get_file, repositoryName=repo, filePath="d") == "FileDoesNotExistException"
    assert code_of(cc.get_file, repositoryName=repo, filePath="nope") == "FileDoesNotExistException"
    assert (
        code_of(
            cc.get_file, repositoryName=repo, filePath="d/f.txt", commitSpecifier="no-such-branch"
        )
        == "CommitDoesNotExistException"
    )
    assert (
        code_of(cc.get_folder, repositoryName=repo, folderPath="d/f.txt")
        == "FolderDoesNotExistException"
    )
    assert code_of(cc.get_folder, repositoryName=repo, folderPath="../d") == "InvalidPathException"
    assert code_of(cc.get_blob, repositoryName=repo, blobId="xyz") == "InvalidBlobIdException"
    assert (
        code_of(cc.get_blob, repositoryName=repo, blobId="3" * 40) == "BlobIdDoesNotExistException"
    )
    # A commit id is not a blob id.
    assert (
        code_of(cc.get_blob, repositoryName=repo, blobId=first["commitId"])
        == "BlobIdDoesNotExistException"
    )


# -- commits ------------------------------------------------------------------------------
def test_get_commit_and_batch_get_commits(cc, repo):
    first = first_commit(cc, repo)
    second = cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath="b",
        fileContent=b"b",
        parentCommitId=first["commitId"],
        commitMessage="two\n\nbody",
    )
    got = cc.get_commit(repositoryName=repo, commitId=second["commitId"])["commit"]
    assert got["parents"] == [first["commitId"]] and got["message"] == "two\n\nbody"
    assert (
        code_of(cc.get_commit, repositoryName=repo, commitId=second["commitId"][:10])
        == "InvalidCommitIdException"
    )
    assert (
        code_of(cc.get_commit, repositoryName=repo, commitId="4" * 40)
        == "CommitIdDoesNotExistException"
    )
    assert (
        code_of(cc.get_commit, repositoryName=repo, commitId=second["blobId"])
        == "CommitIdDoesNotExistException"
    )

    batch = cc.batch_get_commits(
        repositoryName=repo,
        commitIds=[first["commitId"], "5" * 40, second["commitId"][:7], second["commitId"]],
    )
    assert [c["commitId"] for c in batch["commits"]] == [first["commitId"], second["commitId"]]
    assert [(e["commitId"], e["errorCode"]) for e in batch["errors"]] == [
        ("5" * 40, "CommitIdDoesNotExistException"),
        (second["commitId"][:7], "InvalidCommitIdException"),
    ]
    assert (
        code_of(cc.batch_get_commits, repositoryName=repo, commitIds=["6" * 40] * 101)
        == "CommitIdsLimitExceededException"
    )
    assert (
        code_of(cc.batch_get_commits, repositoryName=repo, commitIds=[])
        == "CommitIdsListRequiredException"
    )


# -- branches -----------------------------------------------------------------------------
def test_branch_lifecycle(cc, repo):
    first = first_commit(cc, repo)
    cc.create_branch(repositoryName=repo, branchName="feature/x", commitId=first["commitId"])
    assert (
        cc.get_branch(repositoryName=repo, branchName="feature/x")["branch"]["commitId"]
        == first["commitId"]
    )
    assert (
        code_of(
            cc.create_branch,
            repositoryName=repo,
            branchName="feature/x",
            commitId=first["commitId"],
        )
        == "BranchNameExistsException"
    )
    assert (
        code_of(cc.create_branch, repositoryName=repo, branchName="b2", commitId="7" * 40)
        == "CommitDoesNotExistException"
    )
    assert (
        code_of(cc.create_branch, repositoryName=repo, branchName="b2", commitId="main!")
        == "InvalidCommitIdException"
    )
    for bad in ["a b", "x:y", "end.", "/start", "a//b", "@", "q?", "ref@{1}", "f" * 40, "x.lock"]:
        assert (
            code_of(
                cc.create_branch, repositoryName=repo, branchName=bad, commitId=first["commitId"]
            )
            == "InvalidBranchNameException"
        ), bad
    # Creating a branch does not change the default one.
    assert cc.get_repository(repositoryName=repo)["repositoryMetadata"]["defaultBranch"] == "main"
    assert (
        code_of(cc.delete_branch, repositoryName=repo, branchName="main")
        == "DefaultBranchCannotBeDeletedException"
    )
    cc.update_default_branch(repositoryName=repo, defaultBranchName="feature/x")
    assert (
        cc.get_repository(repositoryName=repo)["repositoryMetadata"]["defaultBranch"] == "feature/x"
    )
    assert (
        code_of(cc.update_default_branch, repositoryName=repo, defaultBranchName="ghost")
        == "BranchDoesNotExistException"
    )
    deleted = cc.delete_branch(repositoryName=repo, branchName="main")
    assert deleted["deletedBranch"] == {"branchName": "main", "commitId": first["commitId"]}
    assert (
        code_of(cc.get_branch, repositoryName=repo, branchName="main")
        == "BranchDoesNotExistException"
    )
    assert "deletedBranch" not in cc.delete_branch(repositoryName=repo, branchName="main")
    assert cc.list_branches(repositoryName=repo)["branches"] == ["feature/x"]


def test_branch_operations_check_names(cc, repo):
    assert code_of(cc.get_branch, repositoryName=repo) == "BranchNameRequiredException"
    assert code_of(cc.get_branch, branchName="main") == "RepositoryNameRequiredException"
    assert (
        code_of(cc.get_branch, repositoryName=repo, branchName="bad name")
        == "InvalidBranchNameException"
    )
    assert (
        code_of(cc.list_branches, repositoryName="no-such-" + uuid.uuid4().hex[:6])
        == "RepositoryDoesNotExistException"
    )


def test_list_branches_pages_through_every_branch(cc, repo):
    first = first_commit(cc, repo)
    extra = [f"b{n:03d}" for n in range(104)]
    for name in extra:
        cc.create_branch(repositoryName=repo, branchName=name, commitId=first["commitId"])
    names = sorted(["main", *extra])
    page = cc.list_branches(repositoryName=repo)
    assert len(page["branches"]) == 100 and page.get("nextToken")
    seen = list(page["branches"])
    paginator = cc.get_paginator("list_branches")
    assert [b for p in paginator.paginate(repositoryName=repo) for b in p["branches"]] == names
    rest = cc.list_branches(repositoryName=repo, nextToken=page["nextToken"])
    assert seen + rest["branches"] == names and "nextToken" not in rest
    assert (
        code_of(cc.list_branches, repositoryName=repo, nextToken="forged")
        == "InvalidContinuationTokenException"
    )
