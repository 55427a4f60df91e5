"""The merge engine on real bare repositories built with pygit2 (no server, no database)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeline.codecommit import merging
from forgeline.codecommit.generated import errors
from forgeline.core.protocol.errors import AwsError

# Files and processes, but no database: run once, not on every backend's pass.
pytestmark = pytest.mark.no_db

NORMAL, EXECUTABLE, SYMLINK, GITLINK = 0o100644, 0o100755, 0o120000, 0o160000
FIXED_TIME = 1_700_000_000


class Repo:
    """A bare repository whose commits are written from {path: content} snapshots."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.git = pygit2.init_repository(str(path), bare=True)

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
        here: dict[str, Any] = {}
        below: dict[str, dict[str, Any]] = {}
        for path, value in files.items():
            head, _, rest = path.partition("/")
            if rest:
                below.setdefault(head, {})[rest] = value
            else:
                here[head] = value
        builder = self.git.TreeBuilder()
        for name, value in here.items():
            content, mode = value if isinstance(value, tuple) else (value, NORMAL)
            if mode == GITLINK:
                builder.insert(name, pygit2.Oid(hex=content), mode)
            else:
                builder.insert(name, self.git.create_blob(content), mode)
        for name, subtree in below.items():
            builder.insert(name, self._tree(subtree), pygit2.GIT_FILEMODE_TREE)
        return builder.write()

    def files(self, commit_id: str) -> dict[str, tuple[bytes, int]]:
        found: dict[str, tuple[bytes, int]] = {}

        def walk(tree: pygit2.Tree, prefix: str) -> None:
            for entry in tree:
                path = prefix + entry.name
                if entry.filemode == pygit2.GIT_FILEMODE_TREE:
                    walk(self.git[entry.id], path + "/")
                elif entry.filemode == GITLINK:
                    found[path] = (str(entry.id).encode(), GITLINK)
                else:
                    found[path] = (self.git[entry.id].data, entry.filemode)

        walk(self.git[commit_id].tree, "")
        return found

    def contents(self, commit_id: str) -> dict[str, bytes]:
        return {path: data for path, (data, _) in self.files(commit_id).items()}

    def fsck(self) -> None:
        completed = subprocess.run(
            ["git", "-C", str(self.path), "fsck", "--strict", "--no-dangling"],
            capture_output=True,
            text=True,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo.git")


def fork(
    repo: Repo, base: dict[str, Any], source: dict[str, Any], destination: dict[str, Any]
) -> tuple[str, str, str]:
    """A base commit and two children of it: (base, source, destination)."""
    base_id = repo.commit(base, message="base")
    return (
        base_id,
        repo.commit(source, base_id, message="source"),
        repo.commit(destination, base_id, message="destination"),
    )


LINES = b"one\ntwo\nthree\nfour\nfive\n"


def replace_line(text: bytes, number: int, new: bytes) -> bytes:
    lines = text.split(b"\n")
    lines[number] = new
    return b"\n".join(lines)


# -- merge options and fast-forward ---------------------------------------------------------
def test_fast_forward_is_offered_and_returns_the_source(repo: Repo) -> None:
    base = repo.commit({"a.txt": b"a\n"})
    ahead = repo.commit({"a.txt": b"a\n", "b.txt": b"b\n"}, base)

    assert merging.merge_options(repo.git, ahead, base) == [
        merging.FAST_FORWARD,
        merging.SQUASH,
        merging.THREE_WAY,
    ]
    result = merging.plan_merge(repo.git, ahead, base, merging.FAST_FORWARD)
    assert result.commit_id == ahead
    assert result.base_commit_id == base
    assert not result.created


def test_diverged_branches_cannot_fast_forward(repo: Repo) -> None:
    _, source, destination = fork(
        repo, {"a": b"a\n"}, {"a": b"a\n", "s": b"s\n"}, {"a": b"a\n", "d": b"d\n"}
    )

    assert merging.merge_options(repo.git, source, destination) == [
        merging.SQUASH,
        merging.THREE_WAY,
    ]
    assert not merging.can_fast_forward(repo.git, source, destination)
    with pytest.raises(errors.ManualMergeRequiredException):
        merging.plan_merge(repo.git, source, destination, merging.FAST_FORWARD)


def test_no_option_but_fast_forward_survives_a_file_level_conflict(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"f": LINES},
        {"f": replace_line(LINES, 0, b"ONE")},
        {"f": replace_line(LINES, 4, b"FIVE")},
    )

    assert merging.merge_options(repo.git, source, destination) == []
    assert merging.merge_options(
        repo.git, source, destination, conflict_detail_level=merging.LINE_LEVEL
    ) == [merging.SQUASH, merging.THREE_WAY]


def test_a_source_already_merged_changes_nothing(repo: Repo) -> None:
    base = repo.commit({"a": b"a\n"})
    later = repo.commit({"a": b"b\n"}, base)

    for option in merging.MERGE_OPTIONS:
        result = merging.plan_merge(repo.git, base, later, option)
        assert result.commit_id == later
        assert not result.created
    assert merging.conflicts(repo.git, base, later) == []


def test_unrelated_histories_have_no_merge_base(repo: Repo) -> None:
    one = repo.commit({"a": b"a\n"})
    other = repo.commit({"b": b"b\n"})

    with pytest.raises(errors.TipsDivergenceExceededException):
        merging.merge_options(repo.git, one, other)
    with pytest.raises(errors.TipsDivergenceExceededException):
        merging.plan_merge(repo.git, one, other, merging.THREE_WAY)


# -- squash and three-way results ------------------------------------------------------------
def test_squash_writes_one_commit_on_the_destination(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"keep": b"k\n", "gone": b"g\n"},
        {"keep": b"k\n", "new/s.txt": b"s\n"},
        {"keep": b"k\n", "gone": b"g\n", "d.txt": b"d\n"},
    )

    result = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.SQUASH,
        author_name="Mary Major",
        email="mary@example.com",
        message="Squashed feature",
    )

    commit = repo.git[result.commit_id]
    assert [str(parent) for parent in commit.parent_ids] == [destination]
    assert str(commit.tree_id) == result.tree_id
    assert repo.contents(result.commit_id) == {
        "keep": b"k\n",
        "new/s.txt": b"s\n",
        "d.txt": b"d\n",
    }
    assert (commit.author.name, commit.author.email) == ("Mary Major", "mary@example.com")
    assert commit.committer.name == "Mary Major"
    assert commit.message == "Squashed feature"
    assert result.created
    repo.fsck()


def test_three_way_merge_commit_has_both_parents(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"f": LINES},
        {"f": replace_line(LINES, 0, b"ONE"), "s": b"s\n"},
        {"f": replace_line(LINES, 4, b"FIVE")},
    )

    result = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.THREE_WAY,
        conflict_detail_level=merging.LINE_LEVEL,
        email=None,
    )

    commit = repo.git[result.commit_id]
    assert [str(parent) for parent in commit.parent_ids] == [destination, source]
    assert repo.contents(result.commit_id) == {
        "f": b"ONE\ntwo\nthree\nfour\nFIVE\n",
        "s": b"s\n",
    }
    assert commit.author.email == ""
    assert commit.author.name == merging.DEFAULT_AUTHOR_NAME
    repo.fsck()


def test_three_way_is_a_merge_commit_even_when_fast_forward_is_possible(repo: Repo) -> None:
    base = repo.commit({"a": b"a\n"})
    ahead = repo.commit({"a": b"b\n"}, base)

    result = merging.plan_merge(repo.git, ahead, base, merging.THREE_WAY)

    commit = repo.git[result.commit_id]
    assert [str(parent) for parent in commit.parent_ids] == [base, ahead]
    assert repo.contents(result.commit_id) == {"a": b"b\n"}


def test_keep_empty_folders_leaves_a_gitkeep(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"docs/only.md": b"x\n", "src/a.py": b"a\n"},
        {"src/a.py": b"a\n"},
        {"docs/only.md": b"x\n", "src/a.py": b"a\n", "d": b"d\n"},
    )

    kept = merging.plan_merge(
        repo.git, source, destination, merging.SQUASH, keep_empty_folders=True
    )
    dropped = merging.plan_merge(repo.git, source, destination, merging.SQUASH)

    assert repo.contents(kept.commit_id) == {"docs/.gitkeep": b"", "src/a.py": b"a\n", "d": b"d\n"}
    assert repo.contents(dropped.commit_id) == {"src/a.py": b"a\n", "d": b"d\n"}


# -- conflicts -------------------------------------------------------------------------------
def test_line_level_conflict_is_described_with_hunks(repo: Repo) -> None:
    source_text = replace_line(LINES, 2, b"THREE-source")
    destination_text = replace_line(LINES, 2, b"THREE-destination")
    _, source, destination = fork(
        repo, {"f.txt": LINES}, {"f.txt": source_text}, {"f.txt": destination_text}
    )

    (conflict,) = merging.conflicts(
        repo.git, source, destination, conflict_detail_level=merging.LINE_LEVEL
    )

    metadata = conflict.metadata()
    assert metadata == {
        "filePath": "f.txt",
        "fileSizes": {
            "source": len(source_text),
            "destination": len(destination_text),
            "base": len(LINES),
        },
        "fileModes": {"source": "NORMAL", "destination": "NORMAL", "base": "NORMAL"},
        "objectTypes": {"source": "FILE", "destination": "FILE", "base": "FILE"},
        "numberOfConflicts": 1,
        "isBinaryFile": {"source": False, "destination": False, "base": False},
        "contentConflict": True,
        "fileModeConflict": False,
        "objectTypeConflict": False,
        "mergeOperations": {"source": "M", "destination": "M"},
    }
    (hunk,) = [hunk.to_wire() for hunk in conflict.hunks]
    assert hunk["isConflict"] is True
    assert hunk["source"]["startLine"] == 2 and hunk["source"]["endLine"] == 3
    assert base64.b64decode(hunk["source"]["hunkContent"]) == b"THREE-source\n"
    assert base64.b64decode(hunk["destination"]["hunkContent"]) == b"THREE-destination\n"
    assert base64.b64decode(hunk["base"]["hunkContent"]) == b"three\n"
    with pytest.raises(errors.ManualMergeRequiredException, match="f.txt"):
        merging.plan_merge(
            repo.git,
            source,
            destination,
            merging.SQUASH,
            conflict_detail_level=merging.LINE_LEVEL,
        )


def test_file_level_counts_any_change_on_both_sides(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"f": LINES},
        {"f": replace_line(LINES, 0, b"ONE")},
        {"f": replace_line(LINES, 4, b"FIVE")},
    )

    (conflict,) = merging.conflicts(repo.git, source, destination)

    assert conflict.content_conflict
    hunks = conflict.hunks
    assert len(hunks) == 2 and all(hunk.is_conflict for hunk in hunks)
    assert conflict.number_of_conflicts == 2
    assert (
        merging.conflicts(repo.git, source, destination, conflict_detail_level=merging.LINE_LEVEL)
        == []
    )
    with pytest.raises(errors.ManualMergeRequiredException):
        merging.plan_merge(repo.git, source, destination, merging.THREE_WAY)


def test_identical_changes_on_both_sides_do_not_conflict(repo: Repo) -> None:
    same = replace_line(LINES, 1, b"TWO")
    _, source, destination = fork(
        repo, {"f": LINES}, {"f": same, "s": b"s\n"}, {"f": same, "d": b"d\n"}
    )

    assert merging.conflicts(repo.git, source, destination) == []
    result = merging.plan_merge(repo.git, source, destination, merging.SQUASH)
    assert repo.contents(result.commit_id) == {"f": same, "s": b"s\n", "d": b"d\n"}


def test_binary_file_conflict_has_no_hunks(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"logo.png": b"\x89PNG\0base"},
        {"logo.png": b"\x89PNG\0source"},
        {"logo.png": b"\x89PNG\0destination"},
    )

    (conflict,) = merging.conflicts(
        repo.git,
        source,
        destination,
        conflict_detail_level=merging.LINE_LEVEL,
        conflict_resolution_strategy=merging.AUTOMERGE,
    )

    metadata = conflict.metadata()
    assert metadata["isBinaryFile"] == {"source": True, "destination": True, "base": True}
    assert metadata["contentConflict"] and metadata["numberOfConflicts"] == 1
    assert conflict.hunks == []
    result = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.THREE_WAY,
        conflict_resolution_strategy=merging.ACCEPT_DESTINATION,
    )
    assert repo.contents(result.commit_id) == {"logo.png": b"\x89PNG\0destination"}


def test_delete_modify_conflict(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"f": b"a\nb\n", "other": b"o\n"},
        {"other": b"o\n"},
        {"f": b"a\nB\n", "other": b"o\n"},
    )

    (conflict,) = merging.conflicts(
        repo.git, source, destination, conflict_detail_level=merging.LINE_LEVEL
    )

    metadata = conflict.metadata()
    assert metadata["mergeOperations"] == {"source": "D", "destination": "M"}
    assert metadata["objectTypes"] == {"destination": "FILE", "base": "FILE"}
    assert metadata["contentConflict"] and not metadata["objectTypeConflict"]
    (hunk,) = [hunk.to_wire() for hunk in conflict.hunks]
    assert "source" not in hunk
    assert base64.b64decode(hunk["destination"]["hunkContent"]) == b"a\nB\n"
    accepted = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.SQUASH,
        conflict_resolution_strategy=merging.ACCEPT_SOURCE,
    )
    assert repo.contents(accepted.commit_id) == {"other": b"o\n"}


def test_file_mode_conflict_resolved_by_set_file_modes(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"base": b"b\n"},
        {"base": b"b\n", "run.sh": (b"echo\n", EXECUTABLE)},
        {"base": b"b\n", "run.sh": (b"echo\n", NORMAL)},
    )

    (conflict,) = merging.conflicts(
        repo.git, source, destination, conflict_detail_level=merging.LINE_LEVEL
    )
    metadata = conflict.metadata()
    assert metadata["fileModeConflict"] and not metadata["contentConflict"]
    assert metadata["fileModes"] == {"source": "EXECUTABLE", "destination": "NORMAL"}
    assert metadata["mergeOperations"] == {"source": "A", "destination": "A"}
    assert metadata["numberOfConflicts"] == 1

    result = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.THREE_WAY,
        conflict_detail_level=merging.LINE_LEVEL,
        conflict_resolution={"setFileModes": [{"filePath": "run.sh", "fileMode": "EXECUTABLE"}]},
    )
    assert repo.files(result.commit_id)["run.sh"] == (b"echo\n", EXECUTABLE)


def test_mode_change_and_content_change_merge_at_line_level(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"tool": b"v1\n"},
        {"tool": (b"v1\n", EXECUTABLE)},
        {"tool": b"v2\n"},
    )

    assert len(merging.conflicts(repo.git, source, destination)) == 1
    result = merging.plan_merge(
        repo.git, source, destination, merging.SQUASH, conflict_detail_level=merging.LINE_LEVEL
    )
    assert repo.files(result.commit_id) == {"tool": (b"v2\n", EXECUTABLE)}


def test_file_against_directory_is_an_object_type_conflict(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"readme": b"r\n"},
        {"readme": b"r\n", "build": b"a file\n"},
        {"readme": b"r\n", "build/out.txt": b"a directory\n"},
    )

    (conflict,) = merging.conflicts(repo.git, source, destination)

    metadata = conflict.metadata()
    assert metadata["filePath"] == "build"
    assert metadata["objectTypeConflict"] and not metadata["contentConflict"]
    assert metadata["objectTypes"] == {"source": "FILE", "destination": "DIRECTORY"}
    as_source = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.SQUASH,
        conflict_resolution_strategy=merging.ACCEPT_SOURCE,
    )
    as_destination = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.SQUASH,
        conflict_resolution_strategy=merging.ACCEPT_DESTINATION,
    )
    assert repo.contents(as_source.commit_id) == {"readme": b"r\n", "build": b"a file\n"}
    assert repo.contents(as_destination.commit_id) == {
        "readme": b"r\n",
        "build/out.txt": b"a directory\n",
    }
    repo.fsck()


def test_submodule_pointer_conflict(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"lib": ("1" * 40, GITLINK)},
        {"lib": ("2" * 40, GITLINK)},
        {"lib": ("3" * 40, GITLINK)},
    )

    (conflict,) = merging.conflicts(
        repo.git, source, destination, conflict_detail_level=merging.LINE_LEVEL
    )

    metadata = conflict.metadata()
    assert metadata["objectTypes"] == {
        "source": "GIT_LINK",
        "destination": "GIT_LINK",
        "base": "GIT_LINK",
    }
    assert metadata["contentConflict"] and metadata["fileModes"] == {}
    result = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.THREE_WAY,
        conflict_resolution={
            "replaceContents": [{"filePath": "lib", "replacementType": "KEEP_SOURCE"}]
        },
    )
    assert repo.files(result.commit_id)["lib"] == (b"2" * 40, GITLINK)


def test_conflicts_come_sorted_by_path(repo: Repo) -> None:
    names = ["z.txt", "a/b.txt", "m.txt", "a.txt"]
    _, source, destination = fork(
        repo,
        {name: b"base\n" for name in names},
        {name: b"source\n" for name in names},
        {name: b"destination\n" for name in names},
    )

    found = merging.conflicts(repo.git, source, destination)

    assert [conflict.path for conflict in found] == sorted(names)


# -- resolution strategies and explicit resolutions -----------------------------------------
@pytest.fixture
def overlapping(repo: Repo) -> tuple[str, str]:
    _, source, destination = fork(
        repo,
        {"f": LINES, "g": b"g\n"},
        {"f": replace_line(LINES, 1, b"source"), "g": b"g\n"},
        {"f": replace_line(LINES, 1, b"destination"), "g": b"g\n"},
    )
    return source, destination


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (merging.ACCEPT_SOURCE, replace_line(LINES, 1, b"source")),
        (merging.ACCEPT_DESTINATION, replace_line(LINES, 1, b"destination")),
    ],
)
def test_accept_strategies(
    repo: Repo, overlapping: tuple[str, str], strategy: str, expected: bytes
) -> None:
    source, destination = overlapping

    assert (
        merging.conflicts(repo.git, source, destination, conflict_resolution_strategy=strategy)
        == []
    )
    result = merging.plan_merge(
        repo.git, source, destination, merging.SQUASH, conflict_resolution_strategy=strategy
    )
    assert repo.contents(result.commit_id)["f"] == expected


def test_automerge_merges_lines_that_file_level_calls_conflicts(repo: Repo) -> None:
    _, source, destination = fork(
        repo,
        {"f": LINES},
        {"f": replace_line(LINES, 0, b"ONE")},
        {"f": replace_line(LINES, 4, b"FIVE")},
    )

    result = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.THREE_WAY,
        conflict_resolution_strategy=merging.AUTOMERGE,
    )

    assert repo.contents(result.commit_id)["f"] == b"ONE\ntwo\nthree\nfour\nFIVE\n"


def test_automerge_leaves_overlapping_lines_in_conflict(
    repo: Repo, overlapping: tuple[str, str]
) -> None:
    source, destination = overlapping

    (conflict,) = merging.conflicts(
        repo.git, source, destination, conflict_resolution_strategy=merging.AUTOMERGE
    )
    assert conflict.path == "f"
    with pytest.raises(errors.ManualMergeRequiredException):
        merging.plan_merge(
            repo.git,
            source,
            destination,
            merging.SQUASH,
            conflict_resolution_strategy=merging.AUTOMERGE,
        )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"replacementType": "KEEP_BASE"}, (LINES, NORMAL)),
        ({"replacementType": "KEEP_SOURCE"}, (replace_line(LINES, 1, b"source"), NORMAL)),
        (
            {"replacementType": "KEEP_DESTINATION", "fileMode": "EXECUTABLE"},
            (replace_line(LINES, 1, b"destination"), EXECUTABLE),
        ),
        ({"replacementType": "USE_NEW_CONTENT", "content": b"resolved\n"}, (b"resolved\n", NORMAL)),
        (
            {
                "replacementType": "USE_NEW_CONTENT",
                "content": b"#!/bin/sh\n",
                "fileMode": "EXECUTABLE",
            },
            (b"#!/bin/sh\n", EXECUTABLE),
        ),
    ],
)
def test_replace_contents(
    repo: Repo, overlapping: tuple[str, str], entry: dict[str, Any], expected: tuple[bytes, int]
) -> None:
    source, destination = overlapping

    result = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.THREE_WAY,
        conflict_resolution={"replaceContents": [{"filePath": "f", **entry}]},
    )

    assert repo.files(result.commit_id) == {"f": expected, "g": (b"g\n", NORMAL)}


def test_delete_files_resolution(repo: Repo, overlapping: tuple[str, str]) -> None:
    source, destination = overlapping

    result = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.SQUASH,
        conflict_resolution={"deleteFiles": [{"filePath": "/f"}]},
    )

    assert repo.contents(result.commit_id) == {"g": b"g\n"}


def test_explicit_entries_override_the_strategy(repo: Repo, overlapping: tuple[str, str]) -> None:
    source, destination = overlapping

    result = merging.plan_merge(
        repo.git,
        source,
        destination,
        merging.SQUASH,
        conflict_resolution_strategy=merging.ACCEPT_SOURCE,
        conflict_resolution={
            "replaceContents": [{"filePath": "f", "replacementType": "KEEP_BASE"}]
        },
    )

    assert repo.contents(result.commit_id)["f"] == LINES


@pytest.mark.parametrize(
    ("resolution", "error"),
    [
        (
            {"replaceContents": [{"filePath": "f", "replacementType": "USE_NEW_CONTENT"}]},
            errors.ReplacementContentRequiredException,
        ),
        (
            {
                "replaceContents": [
                    {"filePath": "f", "replacementType": "KEEP_SOURCE", "content": b"x"}
                ]
            },
            errors.InvalidReplacementContentException,
        ),
        (
            {
                "replaceContents": [{"filePath": "f", "replacementType": "KEEP_SOURCE"}],
                "deleteFiles": [{"filePath": "f"}],
            },
            errors.MultipleConflictResolutionEntriesException,
        ),
        (
            {
                "replaceContents": [
                    {"filePath": "f", "replacementType": "KEEP_SOURCE"},
                    {"filePath": "f", "replacementType": "KEEP_BASE"},
                ]
            },
            errors.MultipleConflictResolutionEntriesException,
        ),
        (
            {"replaceContents": [{"filePath": "g", "replacementType": "KEEP_SOURCE"}]},
            errors.InvalidConflictResolutionException,
        ),
        ({"deleteFiles": [{"filePath": "a/../f"}]}, errors.InvalidPathException),
        ({"deleteFiles": [{"filePath": ""}]}, errors.PathRequiredException),
        (
            {"setFileModes": [{"filePath": "f", "fileMode": "READONLY"}]},
            errors.InvalidFileModeException,
        ),
        (
            {"deleteFiles": [{"filePath": f"file{n}"} for n in range(101)]},
            errors.MaximumConflictResolutionEntriesExceededException,
        ),
        (
            {
                "replaceContents": [
                    {
                        "filePath": "f",
                        "replacementType": "USE_NEW_CONTENT",
                        "content": b"x" * (6 * 1024 * 1024 + 1),
                    }
                ]
            },
            errors.FileContentSizeLimitExceededException,
        ),
        # A mode alone does not settle conflicting lines.
        (
            {"setFileModes": [{"filePath": "f", "fileMode": "EXECUTABLE"}]},
            errors.ManualMergeRequiredException,
        ),
    ],
)
def test_bad_resolutions_are_refused(
    repo: Repo, overlapping: tuple[str, str], resolution: dict[str, Any], error: type[AwsError]
) -> None:
    source, destination = overlapping
    before = set(repo.git.references)

    with pytest.raises(error):
        merging.plan_merge(
            repo.git, source, destination, merging.SQUASH, conflict_resolution=resolution
        )
    assert set(repo.git.references) == before


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"author_name": "x" * 1025}, errors.NameLengthExceededException),
        ({"email": "a<b>@example.com"}, errors.InvalidEmailException),
        ({"message": "m" * (256 * 1024 + 1)}, errors.CommitMessageLengthExceededException),
        ({"conflict_detail_level": "WORD_LEVEL"}, errors.InvalidConflictDetailLevelException),
        (
            {"conflict_resolution_strategy": "GUESS"},
            errors.InvalidConflictResolutionStrategyException,
        ),
    ],
)
def test_bad_commit_details_are_refused(
    repo: Repo, overlapping: tuple[str, str], arguments: dict[str, Any], error: type[AwsError]
) -> None:
    source, destination = overlapping

    with pytest.raises(error):
        merging.plan_merge(repo.git, source, destination, merging.SQUASH, **arguments)


# -- describing files -------------------------------------------------------------------------
def test_describe_files_answers_per_path(repo: Repo, overlapping: tuple[str, str]) -> None:
    source, destination = overlapping

    conflicting, clean, missing, invalid = merging.describe_files(
        repo.git, source, destination, ["f", "g", "nope.txt", "a//b"]
    )

    assert isinstance(conflicting, merging.ConflictInfo) and conflicting.is_conflict
    assert isinstance(clean, merging.ConflictInfo) and not clean.is_conflict
    assert clean.metadata()["numberOfConflicts"] == 0 and clean.hunks == []
    assert isinstance(missing, errors.FileDoesNotExistException)
    assert isinstance(invalid, errors.InvalidPathException)
    with pytest.raises(errors.FileDoesNotExistException):
        merging.describe_file(repo.git, source, destination, "nope.txt")


def test_find_merge_commit(repo: Repo) -> None:
    _, source, destination = fork(repo, {"a": b"a\n"}, {"a": b"a\n", "s": b"s\n"}, {"a": b"b\n"})
    merge = merging.plan_merge(repo.git, source, destination, merging.THREE_WAY)
    later = repo.commit(repo.contents(merge.commit_id), merge.commit_id)

    assert merging.find_merge_commit(repo.git, source, later) == merge.commit_id
    assert merging.find_merge_commit(repo.git, source, destination) is None


# -- line merging agrees with git ------------------------------------------------------------
def line_merge(repo: Repo, base: bytes, source: bytes, destination: bytes) -> bytes | None:
    entries = [
        merging.Entry(str(repo.git.create_blob(data)), NORMAL)
        for data in (base, source, destination)
    ]
    return merging.merge_blob_lines(repo.git, *entries).merged


@pytest.mark.parametrize(
    ("source", "destination", "merged"),
    [
        # Changes to adjacent lines touch: git calls that a conflict.
        (b"a\nB\nc\nd\n", b"a\nb\nC\nd\n", None),
        # Insertions separated by an unchanged line merge.
        (b"a\nX\nb\nc\nd\n", b"a\nb\nY\nc\nd\n", b"a\nX\nb\nY\nc\nd\n"),
        # Two insertions at the same place conflict unless they are the same.
        (b"a\nX\nb\nc\nd\n", b"a\nY\nb\nc\nd\n", None),
        (b"a\nX\nb\nc\nd\n", b"a\nX\nb\nc\nd\n", b"a\nX\nb\nc\nd\n"),
        # A last line without a newline is a line like any other.
        (b"A\nb\nc\nd\n", b"a\nb\nc\nd\ne", b"A\nb\nc\nd\ne"),
    ],
)
def test_line_merge_rules(
    repo: Repo, source: bytes, destination: bytes, merged: bytes | None
) -> None:
    assert line_merge(repo, b"a\nb\nc\nd\n", source, destination) == merged


def git_merge_file(tmp: Path, base: bytes, source: bytes, destination: bytes) -> bytes | None:
    for name, data in (("base", base), ("source", source), ("destination", destination)):
        (tmp / name).write_bytes(data)
    completed = subprocess.run(
        [
            "git",
            "merge-file",
            "-p",
            str(tmp / "destination"),
            str(tmp / "base"),
            str(tmp / "source"),
        ],
        capture_output=True,
    )
    return completed.stdout if completed.returncode == 0 else None


line_lists = st.lists(st.sampled_from(["a\n", "b\n", "c\n"]), max_size=8)


@st.composite
def edited(draw: st.DrawFn, base: list[str]) -> list[str]:
    lines = list(base)
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["insert", "delete", "change"]))
        text = draw(st.sampled_from(["a\n", "b\n", "x\n", "y\n"]))
        if action == "insert":
            lines.insert(position, text)
        elif position < len(lines):
            if action == "delete":
                del lines[position]
            else:
                lines[position] = text
    return lines


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), base=line_lists)
def test_line_merge_matches_git_merge_file(
    repo: Repo, tmp_path: Path, data: st.DataObject, base: list[str]
) -> None:
    source = data.draw(edited(base))
    destination = data.draw(edited(base))
    encoded = ["".join(lines).encode() for lines in (base, source, destination)]

    assert line_merge(repo, *encoded) == git_merge_file(tmp_path, *encoded)
