"""CodeCommit merges through boto3 against a real server, checked in the git repositories.

Repositories are created with the API; their commits are written with pygit2 straight
into the server's repository directory and branches set with `git update-ref`, so these
tests depend on nothing but the merge operations themselves.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pygit2
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from forgeline.codecommit import gitstore, merging, repositories
from forgeline.codecommit.generated import errors
from forgeline.codecommit.ops import merges as ops_merges
from forgeline.core.context import RequestContext
from forgeline.core.db import Base, get_engine, session_scope
from forgeline.core.events import Event, close_fanouts
from forgeline.core.schema import load_metadata
from forgeline.core.settings import reset_settings_cache
from tests.support.errors import error_code
from tests.support.modelgen import OperationCase, request_strategy, valid_request_strategy
from tests.support.signing import signed_headers

EXECUTABLE = 0o100755
FIXED_TIME = 1_700_000_000
LINES = b"one\ntwo\nthree\nfour\nfive\nsix\nseven\n"


class Fixture:
    """A repository made through the API whose git history the test writes directly."""

    def __init__(self, client: Any, data_dir: Path, name: str, repository_id: str) -> None:
        self.client = client
        self.name = name
        self.id = repository_id
        self.path = data_dir / "repositories" / f"{repository_id}.git"
        self.git = pygit2.Repository(str(self.path))
        self.tips: dict[str, str] = {}

    def commit(self, files: dict[str, Any], *parents: str, message: str = "change") -> str:
        signature = pygit2.Signature("Tester", "tester@example.com", FIXED_TIME, 0)
        return str(
            self.git.create_commit(
                None,
                signature,
                signature,
                message,
                self._tree(files),
                [pygit2.Oid(hex=parent) for parent in parents],
            )
        )

    def _tree(self, files: dict[str, Any]) -> pygit2.Oid:
        builder = self.git.TreeBuilder()
        below: dict[str, dict[str, Any]] = {}
        for path, value in files.items():
            head, _, rest = path.partition("/")
            if rest:
                below.setdefault(head, {})[rest] = value
                continue
            content, mode = value if isinstance(value, tuple) else (value, pygit2.GIT_FILEMODE_BLOB)
            builder.insert(head, self.git.create_blob(content), mode)
        for name, subtree in below.items():
            builder.insert(name, self._tree(subtree), pygit2.GIT_FILEMODE_TREE)
        return builder.write()

    def set_branch(self, branch: str, commit_id: str) -> None:
        subprocess.run(
            ["git", "-C", str(self.path), "update-ref", f"refs/heads/{branch}", commit_id],
            check=True,
            capture_output=True,
        )

    def set_tag(self, tag: str, commit_id: str) -> None:
        subprocess.run(
            ["git", "-C", str(self.path), "update-ref", f"refs/tags/{tag}", commit_id],
            check=True,
            capture_output=True,
        )

    def head(self, branch: str) -> str:
        return str(pygit2.Repository(str(self.path)).references[f"refs/heads/{branch}"].target)

    def contents(self, commit_id: str) -> dict[str, bytes]:
        git = pygit2.Repository(str(self.path))
        found: dict[str, bytes] = {}

        def walk(tree: pygit2.Tree, prefix: str) -> None:
            for entry in tree:
                if entry.filemode == pygit2.GIT_FILEMODE_TREE:
                    walk(git[entry.id], f"{prefix}{entry.name}/")
                else:
                    found[prefix + entry.name] = git[entry.id].data

        walk(git[commit_id].tree, "")
        return found

    def fork(
        self, base: dict[str, Any], source: dict[str, Any], destination: dict[str, Any]
    ) -> tuple[str, str, str]:
        """main (destination) and feature (source), both children of one base commit."""
        base_id = self.commit(base, message="base")
        source_id = self.commit(source, base_id, message="feature work")
        destination_id = self.commit(destination, base_id, message="main work")
        self.tips = {"feature": source_id, "main": destination_id}
        for branch, tip in self.tips.items():
            self.set_branch(branch, tip)
        return base_id, source_id, destination_id


@pytest.fixture(scope="module")
def unchecked_client(forgeline: Any) -> Any:
    """A client that sends what it is given, so the server's own validation answers."""
    return forgeline.client("codecommit", parameter_validation=False)


@pytest.fixture
def repo(cc: Any, make_repo: Callable[..., dict[str, Any]], forgeline: Any) -> Fixture:
    created = make_repo("merges")
    return Fixture(cc, forgeline.data_dir, created["repositoryName"], created["repositoryId"])


def conflicting_fork(repo: Fixture) -> tuple[str, str, str]:
    """feature and main both change line 2 of f.txt."""
    return repo.fork(
        {"f.txt": LINES, "g.txt": b"g\n"},
        {"f.txt": LINES.replace(b"two", b"two-feature"), "g.txt": b"g\n"},
        {"f.txt": LINES.replace(b"two", b"two-main"), "g.txt": b"g\n"},
    )


def merge_events(forgeline: Any, repository_id: str) -> list[dict[str, Any]]:
    with session_scope(forgeline.database_url, readonly=True) as session:
        rows = session.scalars(select(Event).order_by(Event.id)).all()
        return [
            {"detail_type": row.detail_type, **row.detail}
            for row in rows
            if row.detail.get("repositoryId") == repository_id
        ]


# -- merge options and fast-forward ------------------------------------------------------------
def test_fast_forward_moves_the_destination_to_the_source(repo: Fixture) -> None:
    base = repo.commit({"a.txt": b"a\n"})
    ahead = repo.commit({"a.txt": b"a\n", "b.txt": b"b\n"}, base)
    repo.set_branch("main", base)
    repo.set_branch("feature", ahead)

    options = repo.client.get_merge_options(
        repositoryName=repo.name, sourceCommitSpecifier="feature", destinationCommitSpecifier="main"
    )
    merged = repo.client.merge_branches_by_fast_forward(
        repositoryName=repo.name, sourceCommitSpecifier="feature", destinationCommitSpecifier="main"
    )

    assert options["mergeOptions"] == ["FAST_FORWARD_MERGE", "SQUASH_MERGE", "THREE_WAY_MERGE"]
    assert (options["sourceCommitId"], options["destinationCommitId"]) == (ahead, base)
    assert options["baseCommitId"] == base
    assert merged["commitId"] == ahead
    assert merged["treeId"] == str(repo.git[ahead].tree_id)
    assert repo.head("main") == ahead


def test_fast_forward_is_refused_when_branches_diverged(repo: Fixture) -> None:
    _, _, main = repo.fork({"a": b"a\n"}, {"a": b"a\n", "s": b"s\n"}, {"a": b"a\n", "d": b"d\n"})

    options = repo.client.get_merge_options(
        repositoryName=repo.name, sourceCommitSpecifier="feature", destinationCommitSpecifier="main"
    )
    with pytest.raises(ClientError) as caught:
        repo.client.merge_branches_by_fast_forward(
            repositoryName=repo.name,
            sourceCommitSpecifier="feature",
            destinationCommitSpecifier="main",
        )

    assert options["mergeOptions"] == ["SQUASH_MERGE", "THREE_WAY_MERGE"]
    assert error_code(caught) == "ManualMergeRequiredException"
    assert repo.head("main") == main


def test_merge_options_follow_the_conflict_detail_level(repo: Fixture) -> None:
    repo.fork(
        {"f": LINES},
        {"f": LINES.replace(b"one", b"ONE")},
        {"f": LINES.replace(b"seven", b"SEVEN")},
    )

    def options(**extra: Any) -> list[str]:
        return repo.client.get_merge_options(
            repositoryName=repo.name,
            sourceCommitSpecifier="feature",
            destinationCommitSpecifier="main",
            **extra,
        )["mergeOptions"]

    assert options() == []
    assert options(conflictDetailLevel="LINE_LEVEL") == ["SQUASH_MERGE", "THREE_WAY_MERGE"]
    assert options(conflictResolutionStrategy="ACCEPT_SOURCE") == [
        "SQUASH_MERGE",
        "THREE_WAY_MERGE",
    ]


# -- squash and three-way --------------------------------------------------------------------
def test_squash_merge_writes_one_commit_on_main(repo: Fixture) -> None:
    _, _, main = repo.fork(
        {"a": b"a\n", "old": b"o\n"},
        {"a": b"a\n", "src/new.py": b"print(1)\n"},
        {"a": b"A\n", "old": b"o\n"},
    )

    merged = repo.client.merge_branches_by_squash(
        repositoryName=repo.name,
        sourceCommitSpecifier="feature",
        destinationCommitSpecifier="main",
        authorName="Mary Major",
        email="mary@example.com",
        commitMessage="Squash feature into main",
    )

    commit = repo.git[merged["commitId"]]
    assert repo.head("main") == merged["commitId"]
    assert [str(parent) for parent in commit.parent_ids] == [main]
    assert str(commit.tree_id) == merged["treeId"]
    assert repo.contents(merged["commitId"]) == {"a": b"A\n", "src/new.py": b"print(1)\n"}
    assert (commit.author.name, commit.author.email) == ("Mary Major", "mary@example.com")
    assert commit.message == "Squash feature into main"


def test_three_way_merge_and_its_event(repo: Fixture, forgeline: Any) -> None:
    _, feature, main = repo.fork(
        {"f": LINES},
        {"f": LINES.replace(b"one", b"ONE")},
        {"f": LINES.replace(b"seven", b"SEVEN")},
    )

    merged = repo.client.merge_branches_by_three_way(
        repositoryName=repo.name,
        sourceCommitSpecifier="feature",
        destinationCommitSpecifier="main",
        conflictDetailLevel="LINE_LEVEL",
    )

    commit = repo.git[merged["commitId"]]
    assert [str(parent) for parent in commit.parent_ids] == [main, feature]
    assert repo.contents(merged["commitId"])["f"] == LINES.replace(b"one", b"ONE").replace(
        b"seven", b"SEVEN"
    )
    assert repo.head("main") == merged["commitId"]
    assert commit.author.name  # the caller's name when no authorName is given
    (event,) = [
        event for event in merge_events(forgeline, repo.id) if event["event"] == "referenceUpdated"
    ]
    assert event["detail_type"] == "CodeCommit Repository State Change"
    assert event["referenceName"] == "main"
    assert event["commitId"] == merged["commitId"] and event["oldCommitId"] == main
    assert event["mergeOption"] == "THREE_WAY_MERGE"
    assert event["sourceCommitId"] == feature and event["destinationCommitId"] == main
    assert event["baseCommitId"] == str(repo.git[feature].parent_ids[0])
    assert event["conflictDetailLevel"] == "LINE_LEVEL"

    found = repo.client.get_merge_commit(
        repositoryName=repo.name,
        sourceCommitSpecifier=feature,
        destinationCommitSpecifier="main",
    )
    assert found["mergedCommitId"] == merged["commitId"]
    assert found["baseCommitId"] == feature


def test_merge_into_another_target_branch(repo: Fixture) -> None:
    base, _, main = repo.fork({"a": b"a\n"}, {"a": b"a\n", "s": b"s\n"}, {"a": b"b\n"})
    repo.set_branch("release", base)

    merged = repo.client.merge_branches_by_squash(
        repositoryName=repo.name,
        sourceCommitSpecifier="feature",
        destinationCommitSpecifier="main",
        targetBranch="release",
    )

    assert repo.head("release") == merged["commitId"]
    assert repo.head("main") == main
    assert repo.contents(merged["commitId"]) == {"a": b"b\n", "s": b"s\n"}


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"targetBranch": "missing"}, "BranchDoesNotExistException"),
        ({"targetBranch": "v1"}, "BranchNameIsTagNameException"),
        ({"targetBranch": "bad..name"}, "InvalidBranchNameException"),
        ({"destinationCommitSpecifier": "v1"}, "BranchNameIsTagNameException"),
        ({"destinationCommitSpecifier": "MAIN_ID"}, "BranchNameRequiredException"),
        ({"sourceCommitSpecifier": "no-such-branch"}, "CommitDoesNotExistException"),
        ({"sourceCommitSpecifier": ""}, "CommitRequiredException"),
        ({"repositoryName": "no-such-repository"}, "RepositoryDoesNotExistException"),
    ],
)
def test_merge_input_errors(repo: Fixture, arguments: dict[str, Any], code: str) -> None:
    _, _, main = repo.fork({"a": b"a\n"}, {"a": b"a\n", "s": b"s\n"}, {"a": b"b\n"})
    repo.set_tag("v1", main)
    request = {
        "repositoryName": repo.name,
        "sourceCommitSpecifier": "feature",
        "destinationCommitSpecifier": "main",
        **arguments,
    }
    if request["destinationCommitSpecifier"] == "MAIN_ID":
        request["destinationCommitSpecifier"] = main

    with pytest.raises(ClientError) as caught:
        repo.client.merge_branches_by_three_way(**request)

    assert error_code(caught) == code
    assert repo.head("main") == main


# -- conflicts -------------------------------------------------------------------------------
def test_conflicting_merge_requires_resolution(repo: Fixture) -> None:
    _, _, main = conflicting_fork(repo)

    with pytest.raises(ClientError) as caught:
        repo.client.merge_branches_by_three_way(
            repositoryName=repo.name,
            sourceCommitSpecifier="feature",
            destinationCommitSpecifier="main",
            conflictDetailLevel="LINE_LEVEL",
        )

    assert error_code(caught) == "ManualMergeRequiredException"
    assert repo.head("main") == main


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"conflictResolutionStrategy": "ACCEPT_SOURCE"}, LINES.replace(b"two", b"two-feature")),
        ({"conflictResolutionStrategy": "ACCEPT_DESTINATION"}, LINES.replace(b"two", b"two-main")),
        (
            {
                "conflictResolution": {
                    "replaceContents": [
                        {
                            "filePath": "f.txt",
                            "replacementType": "USE_NEW_CONTENT",
                            "content": b"both sides, resolved\n",
                        }
                    ]
                }
            },
            b"both sides, resolved\n",
        ),
        (
            {
                "conflictResolution": {
                    "replaceContents": [{"filePath": "f.txt", "replacementType": "KEEP_BASE"}]
                }
            },
            LINES,
        ),
    ],
)
def test_resolved_three_way_merge(
    repo: Fixture, arguments: dict[str, Any], expected: bytes
) -> None:
    _, feature, main = conflicting_fork(repo)

    merged = repo.client.merge_branches_by_three_way(
        repositoryName=repo.name,
        sourceCommitSpecifier="feature",
        destinationCommitSpecifier="main",
        conflictDetailLevel="LINE_LEVEL",
        **arguments,
    )

    assert repo.contents(merged["commitId"]) == {"f.txt": expected, "g.txt": b"g\n"}
    assert [str(p) for p in repo.git[merged["commitId"]].parent_ids] == [main, feature]


@pytest.mark.parametrize(
    ("resolution", "code"),
    [
        (
            {"replaceContents": [{"filePath": "f.txt", "replacementType": "USE_NEW_CONTENT"}]},
            "ReplacementContentRequiredException",
        ),
        (
            {"replaceContents": [{"filePath": "g.txt", "replacementType": "KEEP_BASE"}]},
            "InvalidConflictResolutionException",
        ),
        (
            {
                "deleteFiles": [{"filePath": "f.txt"}],
                "setFileModes": [{"filePath": "f.txt", "fileMode": "NORMAL"}],
            },
            "MultipleConflictResolutionEntriesException",
        ),
        ({"replaceContents": [{"filePath": "f.txt"}]}, "ReplacementTypeRequiredException"),
        ({"deleteFiles": [{"filePath": "../f.txt"}]}, "InvalidPathException"),
    ],
)
def test_invalid_conflict_resolutions(
    repo: Fixture, unchecked_client: Any, resolution: dict[str, Any], code: str
) -> None:
    _, _, main = conflicting_fork(repo)

    with pytest.raises(ClientError) as caught:
        unchecked_client.merge_branches_by_squash(
            repositoryName=repo.name,
            sourceCommitSpecifier="feature",
            destinationCommitSpecifier="main",
            conflictResolution=resolution,
        )

    assert error_code(caught) == code
    assert repo.head("main") == main


def test_get_merge_conflicts_pages_through_files(repo: Fixture) -> None:
    names = ["e.txt", "a.txt", "d/x.txt", "c.txt", "b.txt"]
    repo.fork(
        {name: b"base\n" for name in names},
        {name: b"feature\n" for name in names},
        {name: b"main\n" for name in names},
    )
    request = {
        "repositoryName": repo.name,
        "sourceCommitSpecifier": "feature",
        "destinationCommitSpecifier": "main",
        "mergeOption": "THREE_WAY_MERGE",
        "maxConflictFiles": 2,
    }

    pages, token = [], None
    while True:
        page = repo.client.get_merge_conflicts(**request, **({"nextToken": token} if token else {}))
        pages.append([item["filePath"] for item in page["conflictMetadataList"]])
        assert page["mergeable"] is False
        token = page.get("nextToken")
        if not token:
            break

    assert pages == [["a.txt", "b.txt"], ["c.txt", "d/x.txt"], ["e.txt"]]
    first = repo.client.get_merge_conflicts(**request)["conflictMetadataList"][0]
    assert first["contentConflict"] is True
    assert first["mergeOperations"] == {"source": "M", "destination": "M"}
    with pytest.raises(ClientError) as caught:
        repo.client.get_merge_conflicts(**request, nextToken="forged")
    assert error_code(caught) == "InvalidContinuationTokenException"
    with pytest.raises(ClientError) as caught:
        repo.client.get_merge_conflicts(**{**request, "maxConflictFiles": 0})
    assert error_code(caught) == "InvalidMaxConflictFilesException"


def test_get_merge_conflicts_for_fast_forward(repo: Fixture) -> None:
    conflicting_fork(repo)

    answer = repo.client.get_merge_conflicts(
        repositoryName=repo.name,
        sourceCommitSpecifier="feature",
        destinationCommitSpecifier="main",
        mergeOption="FAST_FORWARD_MERGE",
    )

    assert answer["mergeable"] is False
    assert answer["conflictMetadataList"] == []


def test_describe_merge_conflicts_pages_through_hunks(repo: Fixture) -> None:
    edited = {
        "feature": LINES.replace(b"one", b"1f").replace(b"four", b"4f").replace(b"seven", b"7f"),
        "main": LINES.replace(b"one", b"1m").replace(b"four", b"4m").replace(b"seven", b"7m"),
    }
    repo.fork({"f.txt": LINES}, {"f.txt": edited["feature"]}, {"f.txt": edited["main"]})
    request = {
        "repositoryName": repo.name,
        "sourceCommitSpecifier": "feature",
        "destinationCommitSpecifier": "main",
        "mergeOption": "SQUASH_MERGE",
        "filePath": "f.txt",
        "conflictDetailLevel": "LINE_LEVEL",
        "maxMergeHunks": 2,
    }

    first = repo.client.describe_merge_conflicts(**request)
    second = repo.client.describe_merge_conflicts(**request, nextToken=first["nextToken"])

    assert first["conflictMetadata"]["numberOfConflicts"] == 3
    assert "nextToken" not in second
    hunks = first["mergeHunks"] + second["mergeHunks"]
    assert [hunk["isConflict"] for hunk in hunks] == [True, True, True]
    assert [base64.b64decode(hunk["source"]["hunkContent"]) for hunk in hunks] == [
        b"1f\n",
        b"4f\n",
        b"7f\n",
    ]
    assert [(hunk["base"]["startLine"], hunk["base"]["endLine"]) for hunk in hunks] == [
        (0, 1),
        (3, 4),
        (6, 7),
    ]
    assert base64.b64decode(hunks[1]["destination"]["hunkContent"]) == b"4m\n"


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"mergeOption": "FAST_FORWARD_MERGE"}, "InvalidMergeOptionException"),
        ({"filePath": "missing.txt"}, "FileDoesNotExistException"),
        ({"maxMergeHunks": 0}, "InvalidMaxMergeHunksException"),
        ({"destinationCommitSpecifier": "deadbeef"}, "CommitDoesNotExistException"),
    ],
)
def test_describe_merge_conflicts_errors(
    repo: Fixture, arguments: dict[str, Any], code: str
) -> None:
    conflicting_fork(repo)
    request = {
        "repositoryName": repo.name,
        "sourceCommitSpecifier": "feature",
        "destinationCommitSpecifier": "main",
        "mergeOption": "THREE_WAY_MERGE",
        "filePath": "f.txt",
        **arguments,
    }

    with pytest.raises(ClientError) as caught:
        repo.client.describe_merge_conflicts(**request)

    assert error_code(caught) == code


def test_batch_describe_merge_conflicts(repo: Fixture) -> None:
    names = ["a.txt", "b.txt", "c.txt"]
    repo.fork(
        {name: LINES for name in names} | {"quiet.txt": b"q\n"},
        {name: LINES.replace(b"two", b"feature") for name in names} | {"quiet.txt": b"q\n"},
        {name: LINES.replace(b"two", b"main") for name in names} | {"quiet.txt": b"q\n"},
    )
    request = {
        "repositoryName": repo.name,
        "sourceCommitSpecifier": "feature",
        "destinationCommitSpecifier": "main",
        "mergeOption": "THREE_WAY_MERGE",
    }

    first = repo.client.batch_describe_merge_conflicts(**request, maxConflictFiles=2)
    rest = repo.client.batch_describe_merge_conflicts(
        **request, maxConflictFiles=2, nextToken=first["nextToken"]
    )
    chosen = repo.client.batch_describe_merge_conflicts(
        **request, filePaths=["c.txt", "quiet.txt", "nowhere.txt"]
    )

    paths = [
        item["conflictMetadata"]["filePath"] for item in first["conflicts"] + rest["conflicts"]
    ]
    assert paths == names and "nextToken" not in rest
    assert first["errors"] == [] and first["baseCommitId"]
    hunk = first["conflicts"][0]["mergeHunks"][0]
    assert hunk["isConflict"] and base64.b64decode(hunk["base"]["hunkContent"]) == b"two\n"
    described = {item["conflictMetadata"]["filePath"]: item for item in chosen["conflicts"]}
    assert described["c.txt"]["conflictMetadata"]["contentConflict"] is True
    assert described["quiet.txt"]["conflictMetadata"]["numberOfConflicts"] == 0
    assert chosen["errors"] == [
        {
            "filePath": "nowhere.txt",
            "exceptionName": "FileDoesNotExistException",
            "message": chosen["errors"][0]["message"],
        }
    ]


def test_binary_file_conflict_over_the_wire(repo: Fixture) -> None:
    repo.fork({"img.bin": b"\0base"}, {"img.bin": b"\0feature"}, {"img.bin": b"\0main"})

    answer = repo.client.describe_merge_conflicts(
        repositoryName=repo.name,
        sourceCommitSpecifier="feature",
        destinationCommitSpecifier="main",
        mergeOption="THREE_WAY_MERGE",
        filePath="img.bin",
        conflictDetailLevel="LINE_LEVEL",
        conflictResolutionStrategy="AUTOMERGE",
    )

    assert answer["conflictMetadata"]["isBinaryFile"] == {
        "source": True,
        "destination": True,
        "base": True,
    }
    assert answer["conflictMetadata"]["numberOfConflicts"] == 1
    assert answer["mergeHunks"] == []


def test_delete_and_mode_conflicts_over_the_wire(repo: Fixture) -> None:
    repo.fork(
        {"gone.txt": b"g\n", "tool.sh": b"echo\n"},
        {"tool.sh": (b"echo\n", EXECUTABLE)},
        {"gone.txt": b"changed\n", "tool.sh": b"echo hi\n"},
    )

    answer = repo.client.get_merge_conflicts(
        repositoryName=repo.name,
        sourceCommitSpecifier="feature",
        destinationCommitSpecifier="main",
        mergeOption="SQUASH_MERGE",
    )
    line_level = repo.client.get_merge_conflicts(
        repositoryName=repo.name,
        sourceCommitSpecifier="feature",
        destinationCommitSpecifier="main",
        mergeOption="SQUASH_MERGE",
        conflictDetailLevel="LINE_LEVEL",
    )

    by_path = {item["filePath"]: item for item in answer["conflictMetadataList"]}
    assert by_path["gone.txt"]["mergeOperations"] == {"source": "D", "destination": "M"}
    assert by_path["tool.sh"]["fileModes"]["source"] == "EXECUTABLE"
    # A mode change on one side and an edit on the other only conflict at FILE_LEVEL.
    assert [item["filePath"] for item in line_level["conflictMetadataList"]] == ["gone.txt"]


# -- unreferenced merge commits ----------------------------------------------------------------
def test_create_unreferenced_merge_commit(repo: Fixture, forgeline: Any) -> None:
    _, feature, main = conflicting_fork(repo)

    made = repo.client.create_unreferenced_merge_commit(
        repositoryName=repo.name,
        sourceCommitSpecifier="feature",
        destinationCommitSpecifier="main",
        mergeOption="THREE_WAY_MERGE",
        conflictResolutionStrategy="ACCEPT_SOURCE",
        commitMessage="Preview",
    )

    commit = pygit2.Repository(str(repo.path))[made["commitId"]]
    assert [str(parent) for parent in commit.parent_ids] == [main, feature]
    assert str(commit.tree_id) == made["treeId"]
    assert commit.message == "Preview"
    assert repo.head("main") == main and repo.head("feature") == feature
    events = merge_events(forgeline, repo.id)
    assert [event["event"] for event in events] == ["unreferencedMergeCommitCreated"]
    assert events[0]["commitId"] == made["commitId"]
    assert events[0]["mergeOption"] == "THREE_WAY_MERGE"
    assert events[0]["conflictResolutionStrategy"] == "ACCEPT_SOURCE"

    with pytest.raises(ClientError) as caught:
        repo.client.create_unreferenced_merge_commit(
            repositoryName=repo.name,
            sourceCommitSpecifier="feature",
            destinationCommitSpecifier="main",
            mergeOption="FAST_FORWARD_MERGE",
        )
    assert error_code(caught) == "InvalidMergeOptionException"


# -- racing the target branch --------------------------------------------------------------------
def test_concurrent_merges_never_lose_a_merge(repo: Fixture) -> None:
    base = repo.commit({"shared.txt": b"s\n"}, message="base")
    repo.set_branch("main", base)
    for number in range(6):
        tip = repo.commit({"shared.txt": b"s\n", f"f{number}.txt": b"x\n"}, base)
        repo.set_branch(f"topic-{number}", tip)

    def merge(number: int) -> str:
        try:
            return repo.client.merge_branches_by_three_way(
                repositoryName=repo.name,
                sourceCommitSpecifier=f"topic-{number}",
                destinationCommitSpecifier="main",
            )["commitId"]
        except ClientError as error:
            return error.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(merge, range(6)))

    merged = [outcome for outcome in outcomes if len(outcome) == 40]
    assert merged, outcomes
    assert set(outcomes) - set(merged) <= {"ConcurrentReferenceUpdateException"}
    git = pygit2.Repository(str(repo.path))
    head = repo.head("main")
    for commit_id in merged:
        assert commit_id == head or git.descendant_of(head, commit_id)


@pytest.fixture
def local_store(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """This process's own settings, database and repositories (no server)."""
    monkeypatch.setenv("FORGELINE_DATABASE_URL", database_url)
    monkeypatch.setenv("FORGELINE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("FORGELINE_BROKER_URL", raising=False)
    monkeypatch.delenv("FORGELINE_EVENTS_FANOUT_URL", raising=False)
    reset_settings_cache()
    load_metadata()
    Base.metadata.create_all(get_engine(database_url))
    try:
        yield tmp_path
    finally:
        close_fanouts()
        reset_settings_cache()


def test_branch_moved_during_the_merge_is_a_concurrent_update(local_store: Path) -> None:
    ctx = RequestContext(
        account_id="123456789012",
        region="us-east-1",
        principal_arn="arn:aws:iam::123456789012:user/alice",
        access_key_id=None,
        service="codecommit",
        operation="MergeBranchesByThreeWay",
    )
    with session_scope() as session:
        repository = repositories.create(session, ctx, {"repositoryName": "race"})
        session.expunge(repository)
    git = gitstore.open_git(repository)
    fixture = Fixture(None, local_store, "race", repository.id)
    _, feature, main = fixture.fork({"a": b"a\n"}, {"a": b"a\n", "s": b"s\n"}, {"a": b"b\n"})

    planned = merging.plan_merge(git, feature, main, merging.THREE_WAY)
    pushed = fixture.commit({"a": b"pushed meanwhile\n"}, main)
    fixture.set_branch("main", pushed)  # someone pushes between reading and writing

    with pytest.raises(errors.ConcurrentReferenceUpdateException):
        ops_merges.apply_to_branch(ctx, repository, "main", main, planned, {})
    assert fixture.head("main") == pushed
    with session_scope(readonly=True) as session:
        assert session.scalars(select(Event)).all() == []

    replanned = merging.plan_merge(git, feature, pushed, merging.THREE_WAY)
    ops_merges.apply_to_branch(
        ctx, repository, "main", pushed, replanned, {"mergeOption": "THREE_WAY_MERGE"}
    )
    assert fixture.head("main") == replanned.commit_id
    with session_scope(readonly=True) as session:
        (event,) = session.scalars(select(Event)).all()
        assert event.detail["mergeOption"] == "THREE_WAY_MERGE"
        assert event.detail["oldCommitId"] == pushed
        assert event.detail["callerUserArn"] == ctx.principal_arn


# -- generated requests ------------------------------------------------------------------------
MERGE_OPERATIONS = [
    OperationCase("codecommit", name)
    for name in (
        "GetMergeOptions",
        "GetMergeCommit",
        "GetMergeConflicts",
        "DescribeMergeConflicts",
        "BatchDescribeMergeConflicts",
        "MergeBranchesByFastForward",
        "MergeBranchesBySquash",
        "MergeBranchesByThreeWay",
        "CreateUnreferencedMergeCommit",
    )
]
PATHS = ["f.txt", "g.txt", "img.bin", "gone.txt", "tool.sh", "dir", "dir/x", "/f.txt", "a/../b", ""]
SPECIFIERS = ["feature", "main", "HEAD", "refs/heads/main", "v1", "nope", "", "abc", "0" * 40]


@pytest.fixture(scope="module")
def fuzz_repo(cc: Any, forgeline: Any) -> Iterator[Fixture]:
    name = f"merges-fuzz-{uuid.uuid4().hex[:8]}"
    created = cc.create_repository(repositoryName=name)["repositoryMetadata"]
    fixture = Fixture(cc, forgeline.data_dir, name, created["repositoryId"])
    tips = fixture.fork(
        {"f.txt": LINES, "g.txt": b"g\n", "img.bin": b"\0a", "gone.txt": b"x\n", "tool.sh": b"s\n"},
        {
            "f.txt": LINES.replace(b"two", b"2f"),
            "g.txt": b"g\n",
            "img.bin": b"\0b",
            "tool.sh": (b"s\n", EXECUTABLE),
            "dir": b"file\n",
        },
        {
            "f.txt": LINES.replace(b"two", b"2m"),
            "g.txt": b"g\n",
            "img.bin": b"\0c",
            "gone.txt": b"y\n",
            "tool.sh": b"t\n",
            "dir/x": b"folder\n",
        },
    )
    fixture.set_tag("v1", tips[0])
    yield fixture
    cc.delete_repository(repositoryName=name)


@pytest.fixture(scope="module")
def wire() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as http:
        yield http


@st.composite
def merge_requests(draw: st.DrawFn) -> tuple[OperationCase, dict[str, Any]]:
    case = draw(st.sampled_from(MERGE_OPERATIONS))
    request = draw(valid_request_strategy(case.model) | request_strategy(case.model))
    # Aim most requests at the real repository and its branches, so the engine runs.
    if draw(st.integers(0, 3)):
        request["repositoryName"] = "REPOSITORY"
        for member, branch in (
            ("sourceCommitSpecifier", "feature"),
            ("destinationCommitSpecifier", "main"),
        ):
            odd = draw(st.integers(0, 5)) == 0
            request[member] = draw(st.sampled_from(SPECIFIERS)) if odd else branch
        if "filePath" in request and draw(st.booleans()):
            request["filePath"] = draw(st.sampled_from(PATHS))
        if "targetBranch" in request and draw(st.booleans()):
            request["targetBranch"] = draw(st.sampled_from(["main", "feature", "v1", "x y"]))
        for member in ("conflictResolution", "nextToken"):
            if draw(st.integers(0, 3)):
                request.pop(member, None)
    return case, request


@settings(
    max_examples=80,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drawn=merge_requests())
def test_generated_merge_requests_get_declared_answers(
    fuzz_repo: Fixture,
    forgeline: Any,
    wire: httpx.Client,
    drawn: tuple[OperationCase, dict[str, Any]],
) -> None:
    case, request = drawn
    if request.get("repositoryName") == "REPOSITORY":
        request["repositoryName"] = fuzz_repo.name
    body = json.dumps(request).encode()
    headers = signed_headers(
        forgeline.url,
        body,
        target=case.target,
        signing_name=case.signing_name,
        credentials=forgeline.admin_credentials(),
    )
    response = wire.post(forgeline.url + "/", content=body, headers=headers)
    detail = f"{case.id} answered {response.status_code}: {response.text[:500]}\n{body[:500]!r}"
    assert response.status_code in (200, 400), detail
    if response.status_code == 400:
        code = response.json()["__type"]
        allowed = case.declared_errors() | {case.validation_error(), "SerializationException"}
        assert code in allowed, detail
    # Merges that succeeded moved main: put the fork back for the next example.
    for branch, tip in fuzz_repo.tips.items():
        fuzz_repo.set_branch(branch, tip)
