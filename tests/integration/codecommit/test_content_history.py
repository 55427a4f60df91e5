"""GetDifferences and ListFileCommitHistory over boto3, on histories built through the API and git."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.support.errors import code_of


def git_dir(forgeline, cc, name) -> str:
    repository_id = cc.get_repository(repositoryName=name)["repositoryMetadata"]["repositoryId"]
    return str(forgeline.data_dir / "repositories" / f"{repository_id}.git")


def git(path: str, *args: str, data: bytes | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", "-C", path, *args],
        input=data,
        capture_output=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return done.stdout.decode().strip()


@pytest.fixture
def two_commits(cc, repo):
    first = cc.create_commit(
        repositoryName=repo,
        branchName="main",
        putFiles=[
            {"filePath": "a.txt", "fileContent": b"a1"},
            {"filePath": "dir/x", "fileContent": b"x"},
            {"filePath": "dir/y", "fileContent": b"y"},
            {"filePath": "old/z", "fileContent": b"z"},
        ],
    )
    second = cc.create_commit(
        repositoryName=repo,
        branchName="main",
        parentCommitId=first["commitId"],
        putFiles=[
            {"filePath": "a.txt", "fileContent": b"a2"},
            {"filePath": "dir/w", "fileContent": b"w"},
            {"filePath": "new/z", "sourceFile": {"filePath": "old/z", "isMove": True}},
        ],
        deleteFiles=[{"filePath": "dir/y"}],
        setFileModes=[{"filePath": "dir/x", "fileMode": "EXECUTABLE"}],
    )
    return repo, first["commitId"], second["commitId"]


def summary(differences):
    return sorted(
        (d["changeType"], d.get("beforeBlob", {}).get("path"), d.get("afterBlob", {}).get("path"))
        for d in differences
    )


# -- GetDifferences ---------------------------------------------------------------------------
def test_differences_between_two_commits(cc, two_commits):
    repo, first, second = two_commits
    result = cc.get_differences(
        repositoryName=repo, beforeCommitSpecifier=first, afterCommitSpecifier="main"
    )
    assert summary(result["differences"]) == [
        ("A", None, "dir/w"),
        ("A", None, "new/z"),
        ("D", "dir/y", None),
        ("D", "old/z", None),
        ("M", "a.txt", "a.txt"),
        ("M", "dir/x", "dir/x"),
    ]
    mode_change = next(
        d for d in result["differences"] if d["afterBlob"]["path"] == "dir/x" if "afterBlob" in d
    )
    assert (mode_change["beforeBlob"]["mode"], mode_change["afterBlob"]["mode"]) == (
        "100644",
        "100755",
    )
    assert mode_change["beforeBlob"]["blobId"] == mode_change["afterBlob"]["blobId"]
    changed = next(
        d for d in result["differences"] if d.get("afterBlob", {}).get("path") == "a.txt"
    )
    assert (
        cc.get_blob(repositoryName=repo, blobId=changed["beforeBlob"]["blobId"])["content"] == b"a1"
    )
    assert (
        cc.get_blob(repositoryName=repo, blobId=changed["afterBlob"]["blobId"])["content"] == b"a2"
    )
    assert "NextToken" not in result


def test_without_a_before_commit_everything_is_added(cc, two_commits):
    repo, _, second = two_commits
    result = cc.get_differences(repositoryName=repo, afterCommitSpecifier=second)
    assert summary(result["differences"]) == [
        ("A", None, "a.txt"),
        ("A", None, "dir/w"),
        ("A", None, "dir/x"),
        ("A", None, "new/z"),
    ]


def test_path_filters(cc, two_commits):
    repo, first, second = two_commits
    base = dict(repositoryName=repo, beforeCommitSpecifier=first, afterCommitSpecifier=second)
    in_dir = cc.get_differences(**base, beforePath="dir", afterPath="/dir")["differences"]
    assert summary(in_dir) == [("A", None, "dir/w"), ("D", "dir/y", None), ("M", "dir/x", "dir/x")]
    one_file = cc.get_differences(**base, afterPath="a.txt")["differences"]
    assert summary(one_file) == [("M", "a.txt", "a.txt")]
    # A renamed folder compared under its old and new names: nothing in it changed.
    assert cc.get_differences(**base, beforePath="old", afterPath="new")["differences"] == []
    # A folder that exists on one side only.
    assert summary(cc.get_differences(**base, afterPath="new")["differences"]) == [
        ("A", None, "new/z")
    ]
    assert code_of(cc.get_differences, **base, afterPath="nowhere") == "PathDoesNotExistException"
    assert code_of(cc.get_differences, **base, afterPath="../dir") == "InvalidPathException"


def test_differences_pages_stay_on_the_commits_they_started_from(cc, two_commits):
    repo, first, second = two_commits
    base = dict(repositoryName=repo, beforeCommitSpecifier=first, afterCommitSpecifier="main")
    page = cc.get_differences(**base, MaxResults=4)
    assert len(page["differences"]) == 4 and page["NextToken"]
    # The branch moves between pages; the rest of the listing does not change.
    cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath="late.txt",
        fileContent=b"late",
        parentCommitId=second,
    )
    rest = cc.get_differences(**base, MaxResults=4, NextToken=page["NextToken"])
    assert "NextToken" not in rest
    everything = page["differences"] + rest["differences"]
    assert len(everything) == 6
    assert "late.txt" not in {d.get("afterBlob", {}).get("path") for d in everything}
    whole = cc.get_paginator("get_differences").paginate(
        repositoryName=repo,
        beforeCommitSpecifier=first,
        afterCommitSpecifier=second,
        PaginationConfig={"PageSize": 1},
    )
    assert sum(len(p["differences"]) for p in whole) == 6


def test_differences_errors(cc, two_commits):
    repo, first, _ = two_commits
    base = dict(repositoryName=repo, beforeCommitSpecifier=first)
    assert (
        code_of(cc.get_differences, **base, afterCommitSpecifier="ghost")
        == "CommitDoesNotExistException"
    )
    assert code_of(cc.get_differences, **base, afterCommitSpecifier="") == "CommitRequiredException"
    assert (
        code_of(cc.get_differences, **base, afterCommitSpecifier="main", MaxResults=0)
        == "InvalidMaxResultsException"
    )
    assert (
        code_of(cc.get_differences, **base, afterCommitSpecifier="main", NextToken="not-a-token")
        == "InvalidContinuationTokenException"
    )
    token = cc.get_differences(**base, afterCommitSpecifier="main", MaxResults=1)["NextToken"]
    # A token from one query does not work for another.
    assert (
        code_of(
            cc.get_differences, repositoryName=repo, afterCommitSpecifier="main", NextToken=token
        )
        == "InvalidContinuationTokenException"
    )


def test_names_git_holds_that_are_not_utf8(forgeline, cc, repo):
    first = cc.put_file(
        repositoryName=repo, branchName="main", filePath="plain.txt", fileContent=b"p"
    )
    path = git_dir(forgeline, cc, repo)
    blob = git(path, "hash-object", "-w", "--stdin", data=b"latin-1 named\n")
    listing = git(path, "ls-tree", first["treeId"]).encode() + b"\n"
    listing += b"100644 blob " + blob.encode() + b"\tcaf\xe9.txt\n"
    tree = git(path, "mktree", data=listing)
    commit = git(path, "commit-tree", tree, "-p", first["commitId"], "-m", "pushed by git")
    git(path, "update-ref", "refs/heads/main", commit, first["commitId"])

    files = cc.get_folder(repositoryName=repo, folderPath="/")["files"]
    shown = {f["relativePath"]: f["blobId"] for f in files}
    assert shown == {"caf\ufffd.txt": blob, "plain.txt": first["blobId"]}
    diff = cc.get_differences(
        repositoryName=repo, beforeCommitSpecifier=first["commitId"], afterCommitSpecifier="main"
    )["differences"]
    assert summary(diff) == [("A", None, "caf\ufffd.txt")]
    assert cc.get_blob(repositoryName=repo, blobId=blob)["content"] == b"latin-1 named\n"
    assert (
        code_of(cc.get_file, repositoryName=repo, filePath="caf\ufffd.txt")
        == "FileDoesNotExistException"
    )
    # Committing next to it through the API keeps the git-made name byte for byte.
    after = cc.put_file(
        repositoryName=repo,
        branchName="main",
        filePath="more.txt",
        fileContent=b"m",
        parentCommitId=commit,
    )
    names = subprocess.run(
        ["git", "-C", path, "ls-tree", "--name-only", "-z", after["commitId"]],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    assert b"caf\xe9.txt" in names


# -- ListFileCommitHistory ----------------------------------------------------------------------
def test_linear_file_history_skips_commits_that_leave_the_file_alone(cc, repo):
    commits = []
    parent = None
    for n, (path, content) in enumerate(
        [("f.txt", "1"), ("other", "o"), ("f.txt", "2"), ("other", "p"), ("f.txt", "3")]
    ):
        extra = {"parentCommitId": parent} if parent else {}
        parent = cc.put_file(
            repositoryName=repo,
            branchName="main",
            filePath=path,
            fileContent=content.encode(),
            commitMessage=f"c{n}",
            **extra,
        )["commitId"]
        commits.append(parent)
    dag = cc.list_file_commit_history(repositoryName=repo, filePath="/f.txt")["revisionDag"]
    assert [v["commit"]["commitId"] for v in dag] == [commits[4], commits[2], commits[0]]
    assert [v["revisionChildren"] for v in dag] == [[], [commits[4]], [commits[2]]]
    assert [v["commit"]["message"] for v in dag] == ["c4", "c2", "c0"]
    assert all(v["path"] == "f.txt" for v in dag)
    blobs = [cc.get_blob(repositoryName=repo, blobId=v["blobId"])["content"] for v in dag]
    assert blobs == [b"3", b"2", b"1"]
    assert dag[1]["commit"]["parents"] == [commits[1]]

    first = cc.list_file_commit_history(repositoryName=repo, filePath="f.txt", maxResults=2)
    assert len(first["revisionDag"]) == 2
    second = cc.list_file_commit_history(
        repositoryName=repo, filePath="f.txt", maxResults=2, nextToken=first["nextToken"]
    )
    assert [v["commit"]["commitId"] for v in second["revisionDag"]] == [commits[0]]
    assert "nextToken" not in second
    older = cc.list_file_commit_history(
        repositoryName=repo, filePath="f.txt", commitSpecifier=commits[3]
    )
    assert [v["commit"]["commitId"] for v in older["revisionDag"]] == [commits[2], commits[0]]
    assert cc.list_file_commit_history(repositoryName=repo, filePath="nope")["revisionDag"] == []


def test_file_history_through_a_merge_is_a_dag(forgeline, cc, repo):
    c1 = cc.put_file(repositoryName=repo, branchName="main", filePath="f", fileContent=b"v1")[
        "commitId"
    ]
    cc.create_branch(repositoryName=repo, branchName="side", commitId=c1)
    c2 = cc.put_file(
        repositoryName=repo, branchName="side", filePath="f", fileContent=b"v2", parentCommitId=c1
    )["commitId"]
    c3 = cc.put_file(
        repositoryName=repo, branchName="main", filePath="g", fileContent=b"g", parentCommitId=c1
    )["commitId"]
    c4 = cc.put_file(
        repositoryName=repo, branchName="main", filePath="f", fileContent=b"v3", parentCommitId=c3
    )["commitId"]
    path = git_dir(forgeline, cc, repo)
    blob = git(path, "hash-object", "-w", "--stdin", data=b"v4")
    index = {"GIT_INDEX_FILE": os.path.join(path, "merge-test-index")}
    git(path, "read-tree", c4, env=index)
    git(path, "update-index", "--add", "--cacheinfo", f"100644,{blob},f", env=index)
    tree = git(path, "write-tree", env=index)
    merge = git(path, "commit-tree", tree, "-p", c4, "-p", c2, "-m", "merge side")
    git(path, "update-ref", "refs/heads/main", merge, c4)

    dag = cc.list_file_commit_history(repositoryName=repo, filePath="f")["revisionDag"]
    by_id = {v["commit"]["commitId"]: v for v in dag}
    assert set(by_id) == {merge, c4, c2, c1}
    assert dag[0]["commit"]["commitId"] == merge and dag[-1]["commit"]["commitId"] == c1
    assert by_id[merge]["commit"]["parents"] == [c4, c2]
    assert by_id[merge]["revisionChildren"] == []
    assert by_id[c4]["revisionChildren"] == [merge]
    assert by_id[c2]["revisionChildren"] == [merge]
    assert sorted(by_id[c1]["revisionChildren"]) == sorted([c4, c2])
    # From the side branch only its own line is seen.
    side = cc.list_file_commit_history(repositoryName=repo, filePath="f", commitSpecifier="side")
    assert [v["commit"]["commitId"] for v in side["revisionDag"]] == [c2, c1]


def test_file_history_errors(cc, repo):
    assert (
        code_of(cc.list_file_commit_history, repositoryName=repo, filePath="f")
        == "CommitDoesNotExistException"
    )
    cc.put_file(repositoryName=repo, branchName="main", filePath="f", fileContent=b"1")
    assert (
        code_of(
            cc.list_file_commit_history, repositoryName=repo, filePath="f", commitSpecifier="ghost"
        )
        == "CommitDoesNotExistException"
    )
    assert (
        code_of(cc.list_file_commit_history, repositoryName=repo, filePath="f", maxResults=-1)
        == "InvalidMaxResultsException"
    )
    assert (
        code_of(cc.list_file_commit_history, repositoryName=repo, filePath="f", nextToken="bogus")
        == "InvalidContinuationTokenException"
    )
