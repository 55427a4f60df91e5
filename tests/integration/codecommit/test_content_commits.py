"""CreateCommit over boto3: several changes in one commit, and every refusal it declares."""

from __future__ import annotations

import pytest

from tests.support.errors import code_of


@pytest.fixture
def seeded(cc, repo):
    first = cc.create_commit(
        repositoryName=repo,
        branchName="main",
        commitMessage="seed",
        authorName="Seeder",
        email="seed@example.com",
        putFiles=[
            {"filePath": "README.md", "fileContent": b"readme"},
            {"filePath": "src/a.py", "fileContent": b"a = 1\n"},
            {"filePath": "src/b.py", "fileContent": b"b = 2\n"},
            {"filePath": "tools/run.sh", "fileContent": b"#!/bin/sh\n", "fileMode": "EXECUTABLE"},
        ],
    )
    return repo, first


def paths(entries):
    return sorted(e["absolutePath"] for e in entries)


def test_first_commit_in_an_empty_repository(cc, seeded):
    repo, first = seeded
    assert paths(first["filesAdded"]) == ["README.md", "src/a.py", "src/b.py", "tools/run.sh"]
    assert first["filesUpdated"] == [] and first["filesDeleted"] == []
    modes = {e["absolutePath"]: e["fileMode"] for e in first["filesAdded"]}
    assert modes["tools/run.sh"] == "EXECUTABLE" and modes["README.md"] == "NORMAL"
    commit = cc.get_commit(repositoryName=repo, commitId=first["commitId"])["commit"]
    assert commit["treeId"] == first["treeId"] and commit["parents"] == []
    assert (commit["author"]["name"], commit["author"]["email"], commit["message"]) == (
        "Seeder",
        "seed@example.com",
        "seed",
    )
    meta = cc.get_repository(repositoryName=repo)["repositoryMetadata"]
    assert meta["defaultBranch"] == "main"


def test_put_delete_move_copy_and_mode_changes_in_one_commit(cc, seeded):
    repo, first = seeded
    result = cc.create_commit(
        repositoryName=repo,
        branchName="main",
        parentCommitId=first["commitId"],
        putFiles=[
            {"filePath": "src/a.py", "fileContent": b"a = 10\n"},
            {"filePath": "lib/b.py", "sourceFile": {"filePath": "src/b.py", "isMove": True}},
            {"filePath": "docs/README.copy", "sourceFile": {"filePath": "README.md"}},
        ],
        deleteFiles=[{"filePath": "tools/run.sh"}],
        setFileModes=[{"filePath": "README.md", "fileMode": "EXECUTABLE"}],
    )
    assert paths(result["filesAdded"]) == ["docs/README.copy", "lib/b.py"]
    assert paths(result["filesUpdated"]) == ["README.md", "src/a.py"]
    assert paths(result["filesDeleted"]) == ["src/b.py", "tools/run.sh"]
    read = lambda path: cc.get_file(repositoryName=repo, filePath=path)  # noqa: E731
    assert read("lib/b.py")["fileContent"] == b"b = 2\n"
    assert read("docs/README.copy")["fileContent"] == b"readme"
    assert read("README.md")["fileMode"] == "EXECUTABLE"
    assert read("src/a.py")["fileContent"] == b"a = 10\n"
    # The moved file and the copy share the source's blob.
    moved = next(e for e in result["filesAdded"] if e["absolutePath"] == "lib/b.py")
    gone = next(e for e in result["filesDeleted"] if e["absolutePath"] == "src/b.py")
    assert moved["blobId"] == gone["blobId"]
    assert (
        code_of(cc.get_folder, repositoryName=repo, folderPath="tools")
        == "FolderDoesNotExistException"
    )


def test_a_folder_can_replace_a_deleted_file(cc, seeded):
    repo, first = seeded
    result = cc.create_commit(
        repositoryName=repo,
        branchName="main",
        parentCommitId=first["commitId"],
        deleteFiles=[{"filePath": "README.md"}],
        putFiles=[{"filePath": "README.md/index.md", "fileContent": b"now a folder"}],
    )
    assert paths(result["filesAdded"]) == ["README.md/index.md"]
    assert paths(result["filesDeleted"]) == ["README.md"]


def test_keep_empty_folders_leaves_a_gitkeep(cc, seeded):
    repo, first = seeded
    result = cc.create_commit(
        repositoryName=repo,
        branchName="main",
        parentCommitId=first["commitId"],
        keepEmptyFolders=True,
        deleteFiles=[{"filePath": "tools/run.sh"}],
    )
    assert paths(result["filesAdded"]) == ["tools/.gitkeep"]
    folder = cc.get_folder(repositoryName=repo, folderPath="tools")
    assert [f["relativePath"] for f in folder["files"]] == [".gitkeep"]


def test_entry_count_errors(cc, seeded):
    repo, first = seeded
    base = dict(repositoryName=repo, branchName="main", parentCommitId=first["commitId"])
    assert code_of(cc.create_commit, **base) == "FileEntryRequiredException"
    many = [{"filePath": f"f{n}", "fileContent": b"x"} for n in range(101)]
    assert code_of(cc.create_commit, **base, putFiles=many) == "MaximumFileEntriesExceededException"
    exactly = [{"filePath": f"many/f{n}", "fileContent": str(n).encode()} for n in range(100)]
    assert len(cc.create_commit(**base, putFiles=exactly)["filesAdded"]) == 100


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            {
                "putFiles": [
                    {"filePath": "x", "fileContent": b"1"},
                    {"filePath": "x", "fileContent": b"2"},
                ]
            },
            "SamePathRequestException",
        ),
        (
            {
                "putFiles": [{"filePath": "src/a.py", "fileContent": b"1"}],
                "deleteFiles": [{"filePath": "src/a.py"}],
            },
            "SamePathRequestException",
        ),
        (
            {
                "putFiles": [
                    {"filePath": "n.py", "sourceFile": {"filePath": "src/a.py", "isMove": True}}
                ],
                "deleteFiles": [{"filePath": "src/a.py"}],
            },
            "SamePathRequestException",
        ),
        (
            {"deleteFiles": [{"filePath": "src/a.py"}, {"filePath": "/src/a.py"}]},
            "SamePathRequestException",
        ),
        (
            {
                "putFiles": [
                    {"filePath": "d", "fileContent": b"1"},
                    {"filePath": "d/e", "fileContent": b"2"},
                ]
            },
            "PutFileEntryConflictException",
        ),
        (
            {
                "putFiles": [
                    {"filePath": "x", "fileContent": b"1", "sourceFile": {"filePath": "README.md"}}
                ]
            },
            "FileContentAndSourceFileSpecifiedException",
        ),
        ({"putFiles": [{"filePath": "x"}]}, "SourceFileOrContentRequiredException"),
        (
            {"putFiles": [{"filePath": "x", "sourceFile": {"filePath": "a/.gitkeep"}}]},
            "RestrictedSourceFileException",
        ),
        (
            {"putFiles": [{"filePath": "x", "sourceFile": {"filePath": "missing.txt"}}]},
            "FileDoesNotExistException",
        ),
        (
            {"putFiles": [{"filePath": "x", "sourceFile": {"filePath": "src"}}]},
            "FileDoesNotExistException",
        ),
        ({"deleteFiles": [{"filePath": "missing.txt"}]}, "FileDoesNotExistException"),
        (
            {"setFileModes": [{"filePath": "missing.txt", "fileMode": "NORMAL"}]},
            "FileDoesNotExistException",
        ),
        ({"setFileModes": [{"filePath": "README.md", "fileMode": "NORMAL"}]}, "NoChangeException"),
        ({"putFiles": [{"filePath": "src/a.py", "fileContent": b"a = 1\n"}]}, "NoChangeException"),
        (
            {"putFiles": [{"filePath": "src", "fileContent": b"1"}]},
            "FileNameConflictsWithDirectoryNameException",
        ),
        (
            {"putFiles": [{"filePath": "README.md/x", "fileContent": b"1"}]},
            "DirectoryNameConflictsWithFileNameException",
        ),
        ({"putFiles": [{"filePath": "../x", "fileContent": b"1"}]}, "InvalidPathException"),
        ({"deleteFiles": [{"filePath": ".git/HEAD"}]}, "InvalidPathException"),
        (
            {"putFiles": [{"filePath": "x", "sourceFile": {"filePath": "a/../../etc/passwd"}}]},
            "InvalidPathException",
        ),
    ],
)
def test_refusals(cc, seeded, changes, expected):
    repo, first = seeded
    assert (
        code_of(
            cc.create_commit,
            repositoryName=repo,
            branchName="main",
            parentCommitId=first["commitId"],
            **changes,
        )
        == expected
    )
    # A refused commit leaves the branch where it was.
    assert (
        cc.get_branch(repositoryName=repo, branchName="main")["branch"]["commitId"]
        == first["commitId"]
    )


def test_parent_and_branch_errors(cc, seeded):
    repo, first = seeded
    change = {"putFiles": [{"filePath": "n", "fileContent": b"n"}]}
    assert (
        code_of(cc.create_commit, repositoryName=repo, branchName="main", **change)
        == "ParentCommitIdRequiredException"
    )
    second = cc.create_commit(
        repositoryName=repo, branchName="main", parentCommitId=first["commitId"], **change
    )
    assert (
        code_of(
            cc.create_commit,
            repositoryName=repo,
            branchName="main",
            parentCommitId=first["commitId"],
            **change,
        )
        == "ParentCommitIdOutdatedException"
    )
    assert (
        code_of(
            cc.create_commit,
            repositoryName=repo,
            branchName="other",
            parentCommitId=second["commitId"],
            **change,
        )
        == "BranchDoesNotExistException"
    )
    assert (
        code_of(
            cc.create_commit,
            repositoryName=repo,
            branchName="main",
            parentCommitId=second["commitId"],
            email="bad\nmail",
            **change,
        )
        == "InvalidEmailException"
    )


def test_missing_file_mode_is_file_mode_required(forgeline, seeded):
    repo, first = seeded
    raw = forgeline.client("codecommit", parameter_validation=False)
    assert (
        code_of(
            raw.create_commit,
            repositoryName=repo,
            branchName="main",
            parentCommitId=first["commitId"],
            setFileModes=[{"filePath": "README.md"}],
        )
        == "FileModeRequiredException"
    )


def test_copies_keep_the_source_mode_and_new_content_keeps_the_replaced_mode(cc, seeded):
    repo, first = seeded
    result = cc.create_commit(
        repositoryName=repo,
        branchName="main",
        parentCommitId=first["commitId"],
        putFiles=[
            {"filePath": "bin/run-copy", "sourceFile": {"filePath": "tools/run.sh"}},
            {"filePath": "tools/run.sh", "fileContent": b"#!/bin/sh\necho new\n"},
        ],
    )
    modes = {
        e["absolutePath"]: e["fileMode"] for e in result["filesAdded"] + result["filesUpdated"]
    }
    assert modes == {"bin/run-copy": "EXECUTABLE", "tools/run.sh": "EXECUTABLE"}
