"""Merges of two commits, computed on the git objects themselves.

This engine answers what CodeCommit's merge operations ask: which merge options are
possible, which files conflict at FILE_LEVEL or LINE_LEVEL, how a resolution strategy
and explicit resolutions settle them, and what merged tree and commit result. It writes
objects (blobs, trees, commits) but never moves a ref: callers do that with
`gitstore.update_ref` (compare-and-swap) and report it with `gitstore.report_ref_changes`.

Line merges follow git's rule: each side is diffed against the merge base (libgit2's
diff), and changes from the two sides conflict when their base ranges overlap or touch;
the same change made on both sides merges cleanly. MergeHunkDetail line numbers are
0-based with an exclusive end, so an insertion is an empty range.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pygit2

from forgeline.codecommit.generated import errors
from forgeline.core.protocol.errors import AwsError

FAST_FORWARD = "FAST_FORWARD_MERGE"
SQUASH = "SQUASH_MERGE"
THREE_WAY = "THREE_WAY_MERGE"
MERGE_OPTIONS = (FAST_FORWARD, SQUASH, THREE_WAY)

FILE_LEVEL = "FILE_LEVEL"
LINE_LEVEL = "LINE_LEVEL"
DETAIL_LEVELS = (FILE_LEVEL, LINE_LEVEL)

NONE = "NONE"
ACCEPT_SOURCE = "ACCEPT_SOURCE"
ACCEPT_DESTINATION = "ACCEPT_DESTINATION"
AUTOMERGE = "AUTOMERGE"
RESOLUTION_STRATEGIES = (NONE, ACCEPT_SOURCE, ACCEPT_DESTINATION, AUTOMERGE)

KEEP_BASE = "KEEP_BASE"
KEEP_SOURCE = "KEEP_SOURCE"
KEEP_DESTINATION = "KEEP_DESTINATION"
USE_NEW_CONTENT = "USE_NEW_CONTENT"
REPLACEMENT_TYPES = (KEEP_BASE, KEEP_SOURCE, KEEP_DESTINATION, USE_NEW_CONTENT)

FILE_MODES = {"NORMAL": 0o100644, "EXECUTABLE": 0o100755, "SYMLINK": 0o120000}
MODE_NAMES = {mode: name for name, mode in FILE_MODES.items()}
TREE_MODE = 0o040000
GITLINK_MODE = 0o160000

# CodeCommit's documented quotas where it gives one; our own safety limits otherwise.
MAX_FILE_CONTENT_BYTES = 6 * 1024 * 1024
MAX_TOTAL_CONTENT_BYTES = 7 * 1024 * 1024
MAX_CONFLICT_RESOLUTION_ENTRIES = 100
MAX_NAME_LENGTH = 1024
MAX_EMAIL_LENGTH = 1024
MAX_COMMIT_MESSAGE_BYTES = 256 * 1024
MAX_ITEMS_TO_COMPARE = 100_000  # paths changed on either side
MAX_FILES_TO_LOAD = 1_000  # files merged line by line in one evaluation
DEFAULT_AUTHOR_NAME = "CodeCommit"

GITKEEP = ".gitkeep"


# -- results -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Entry:
    """One tree entry: a file, symbolic link, submodule commit or directory."""

    oid: str
    mode: int

    @property
    def object_type(self) -> str:
        if self.mode == TREE_MODE:
            return "DIRECTORY"
        if self.mode == GITLINK_MODE:
            return "GIT_LINK"
        if self.mode == FILE_MODES["SYMLINK"]:
            return "SYMBOLIC_LINK"
        return "FILE"

    @property
    def is_directory(self) -> bool:
        return self.mode == TREE_MODE


@dataclasses.dataclass(frozen=True)
class HunkSide:
    start_line: int  # 0-based
    end_line: int  # exclusive
    content: bytes

    def to_wire(self) -> dict[str, Any]:
        return {
            "startLine": self.start_line,
            "endLine": self.end_line,
            "hunkContent": base64.b64encode(self.content).decode("ascii"),
        }


@dataclasses.dataclass(frozen=True)
class MergeHunk:
    is_conflict: bool
    source: HunkSide | None
    destination: HunkSide | None
    base: HunkSide | None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"isConflict": self.is_conflict}
        for name in ("source", "destination", "base"):
            side = getattr(self, name)
            if side is not None:
                wire[name] = side.to_wire()
        return wire


@dataclasses.dataclass
class ConflictInfo:
    """One file of a merge as DescribeMergeConflicts shows it: metadata and hunks."""

    path: str
    base: Entry | None
    source: Entry | None
    destination: Entry | None
    content_conflict: bool
    file_mode_conflict: bool
    object_type_conflict: bool
    conflict_detail_level: str
    git: pygit2.Repository = dataclasses.field(repr=False, compare=False)
    _hunks: list[MergeHunk] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def is_conflict(self) -> bool:
        return self.content_conflict or self.file_mode_conflict or self.object_type_conflict

    @property
    def hunks(self) -> list[MergeHunk]:
        if self._hunks is None:
            self._hunks = _describe_hunks(self)
        return self._hunks

    @property
    def number_of_conflicts(self) -> int:
        count = int(self.file_mode_conflict) + int(self.object_type_conflict)
        if self.content_conflict:
            count += max(1, sum(1 for hunk in self.hunks if hunk.is_conflict))
        return count

    def metadata(self) -> dict[str, Any]:
        """The model's ConflictMetadata."""
        sides = {"source": self.source, "destination": self.destination, "base": self.base}
        sizes, modes, types, binary = {}, {}, {}, {}
        for name, entry in sides.items():
            if entry is None:
                continue
            types[name] = entry.object_type
            if entry.mode in MODE_NAMES:
                modes[name] = MODE_NAMES[entry.mode]
                blob = _blob(self.git, entry.oid)
                sizes[name] = blob.size
                binary[name] = entry.object_type == "FILE" and blob.is_binary
        operations = {}
        for name in ("source", "destination"):
            operation = _operation(self.base, sides[name])
            if operation:
                operations[name] = operation
        return {
            "filePath": self.path,
            "fileSizes": sizes,
            "fileModes": modes,
            "objectTypes": types,
            "numberOfConflicts": self.number_of_conflicts,
            "isBinaryFile": binary,
            "contentConflict": self.content_conflict,
            "fileModeConflict": self.file_mode_conflict,
            "objectTypeConflict": self.object_type_conflict,
            "mergeOperations": operations,
        }


@dataclasses.dataclass(frozen=True)
class MergeResult:
    """What plan_merge made. It raises rather than return an unmergeable result, so
    `conflicts` is empty and `mergeable` true; both are kept for callers that report."""

    commit_id: str  # the new commit; the source for a fast-forward; unchanged if merged
    tree_id: str
    base_commit_id: str
    source_commit_id: str
    destination_commit_id: str
    conflicts: list[ConflictInfo] = dataclasses.field(default_factory=list)
    mergeable: bool = True
    created: bool = False  # whether a new commit object was written


# -- public API --------------------------------------------------------------------------
def merge_base(git: pygit2.Repository, source_commit: Any, destination_commit: Any) -> str:
    """The merge base's id; TipsDivergenceExceededException if the histories are unrelated."""
    source = _commit(git, source_commit)
    destination = _commit(git, destination_commit)
    base = git.merge_base(source.id, destination.id)
    if base is None:
        raise errors.TipsDivergenceExceededException(
            f"Commits {source.id} and {destination.id} have no common ancestor, so there is "
            "nothing to merge them from. Compare them locally with git diff."
        )
    return str(base)


def merge_options(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    *,
    conflict_detail_level: str = FILE_LEVEL,
    conflict_resolution_strategy: str = NONE,
) -> list[str]:
    """The merge options that would succeed without explicit conflict resolutions."""
    source = _commit(git, source_commit)
    destination = _commit(git, destination_commit)
    merge_base(git, source, destination)
    if _contains(git, destination, source):
        return list(MERGE_OPTIONS)  # already merged: every option is a no-op
    options = [FAST_FORWARD] if _contains(git, source, destination) else []
    remaining = conflicts(
        git,
        source,
        destination,
        conflict_detail_level=conflict_detail_level,
        conflict_resolution_strategy=conflict_resolution_strategy,
    )
    if not remaining:
        options += [SQUASH, THREE_WAY]
    return options


def can_fast_forward(git: pygit2.Repository, source_commit: Any, destination_commit: Any) -> bool:
    """Whether the destination can move to the source (or already contains it)."""
    source = _commit(git, source_commit)
    destination = _commit(git, destination_commit)
    return _contains(git, source, destination) or _contains(git, destination, source)


def conflicts(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    *,
    conflict_detail_level: str = FILE_LEVEL,
    conflict_resolution_strategy: str = NONE,
) -> list[ConflictInfo]:
    """Files that still conflict once the resolution strategy is applied, by path."""
    _check_options(conflict_detail_level, conflict_resolution_strategy)
    source = _commit(git, source_commit)
    destination = _commit(git, destination_commit)
    base = _commit(git, merge_base(git, source, destination))
    if _contains(git, destination, source):
        return []
    analysis = _Analysis(git, base, source, destination, conflict_detail_level)
    outcome = analysis.settle(conflict_resolution_strategy, _Resolution())
    return [analysis.conflict_info(merge) for merge in outcome.unresolved]


def describe_file(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    path: str,
    *,
    conflict_detail_level: str = FILE_LEVEL,
    conflict_resolution_strategy: str = NONE,
) -> ConflictInfo:
    """One file of the merge, conflicting or not; FileDoesNotExistException if no side has it."""
    (found,) = describe_files(
        git,
        source_commit,
        destination_commit,
        [path],
        conflict_detail_level=conflict_detail_level,
        conflict_resolution_strategy=conflict_resolution_strategy,
    )
    if isinstance(found, AwsError):
        raise found
    return found


def describe_files(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    paths: Sequence[str],
    *,
    conflict_detail_level: str = FILE_LEVEL,
    conflict_resolution_strategy: str = NONE,
) -> list[ConflictInfo | AwsError]:
    """Each path described as `describe_file` does, or the error it would raise, in order."""
    _check_options(conflict_detail_level, conflict_resolution_strategy)
    source = _commit(git, source_commit)
    destination = _commit(git, destination_commit)
    base = _commit(git, merge_base(git, source, destination))
    analysis = _Analysis(git, base, source, destination, conflict_detail_level)
    remaining: dict[str, ConflictInfo] = {}
    if not _contains(git, destination, source):
        outcome = analysis.settle(conflict_resolution_strategy, _Resolution())
        remaining = {merge.path: analysis.conflict_info(merge) for merge in outcome.unresolved}
    described: list[ConflictInfo | AwsError] = []
    for raw_path in paths:
        try:
            path = normalize_path(raw_path)
        except AwsError as problem:
            described.append(problem)
            continue
        if path in remaining:
            described.append(remaining[path])
            continue
        base_entry, source_entry, destination_entry = (
            _entry_at(tree, path) for tree in analysis.trees
        )
        if all(
            entry is None or entry.is_directory
            for entry in (base_entry, source_entry, destination_entry)
        ):
            described.append(
                errors.FileDoesNotExistException(
                    f"The file {path!r} does not exist in the source, destination or merge base."
                )
            )
            continue
        described.append(
            ConflictInfo(
                path=path,
                base=base_entry,
                source=source_entry,
                destination=destination_entry,
                content_conflict=False,
                file_mode_conflict=False,
                object_type_conflict=False,
                conflict_detail_level=conflict_detail_level,
                git=git,
            )
        )
    return described


def plan_merge(
    git: pygit2.Repository,
    source_commit: Any,
    destination_commit: Any,
    strategy: str,
    *,
    conflict_detail_level: str = FILE_LEVEL,
    conflict_resolution_strategy: str = NONE,
    conflict_resolution: Mapping[str, Any] | None = None,
    author_name: str | None = None,
    email: str | None = None,
    message: str | None = None,
    keep_empty_folders: bool = False,
) -> MergeResult:
    """Merge `source_commit` into `destination_commit` with `strategy`; move no ref.

    Fast-forward returns the source commit. Squash writes one commit whose parent is the
    destination; three-way writes a merge commit with parents (destination, source).
    If the destination already contains the source, nothing is written and the
    destination is returned. Raises ManualMergeRequiredException when conflicts remain.
    """
    if strategy not in MERGE_OPTIONS:
        raise errors.InvalidMergeOptionException(f"{strategy!r} is not a valid merge option.")
    _check_options(conflict_detail_level, conflict_resolution_strategy)
    source = _commit(git, source_commit)
    destination = _commit(git, destination_commit)
    # Bad input is refused even when the merge itself would turn out to be a no-op.
    signature = _signature(author_name, email)
    commit_message = _message(message, source, destination)
    resolution = _parse_resolution(conflict_resolution)
    base_id = merge_base(git, source, destination)

    def unchanged(commit: pygit2.Commit) -> MergeResult:
        return MergeResult(
            commit_id=str(commit.id),
            tree_id=str(commit.tree_id),
            base_commit_id=base_id,
            source_commit_id=str(source.id),
            destination_commit_id=str(destination.id),
        )

    if _contains(git, destination, source):
        return unchanged(destination)
    if strategy == FAST_FORWARD:
        if _contains(git, source, destination):
            return unchanged(source)
        raise errors.ManualMergeRequiredException(
            f"Commit {destination.id} cannot be fast-forwarded to {source.id}: the two have "
            "diverged. Use a squash or three-way merge."
        )
    analysis = _Analysis(git, _commit(git, base_id), source, destination, conflict_detail_level)
    outcome = analysis.settle(conflict_resolution_strategy, resolution)
    if outcome.unresolved:
        shown = ", ".join(merge.path for merge in outcome.unresolved[:10])
        more = len(outcome.unresolved) - 10
        raise errors.ManualMergeRequiredException(
            f"The merge has {len(outcome.unresolved)} unresolved conflict(s) ({shown}"
            f"{f' and {more} more' if more > 0 else ''}). Resolve them with a conflict "
            "resolution strategy or conflictResolution entries, or merge manually."
        )
    tree_id = analysis.write_tree(outcome.results, keep_empty_folders)
    parents = [str(destination.id)]
    if strategy == THREE_WAY:
        parents.append(str(source.id))
    commit_id = _write_commit(git, tree_id, parents, signature, commit_message)
    return MergeResult(
        commit_id=commit_id,
        tree_id=tree_id,
        base_commit_id=base_id,
        source_commit_id=str(source.id),
        destination_commit_id=str(destination.id),
        created=True,
    )


def find_merge_commit(
    git: pygit2.Repository, source_commit: Any, destination_commit: Any, limit: int = 10_000
) -> str | None:
    """The commit in the destination's history that merged the source in, if any.

    A fast-forward or squash leaves no such commit.
    """
    source = _commit(git, source_commit)
    destination = _commit(git, destination_commit)
    walker = git.walk(destination.id, pygit2.enums.SortMode.TOPOLOGICAL)
    for count, commit in enumerate(walker):
        if count >= limit:
            break
        if source.id in commit.parent_ids[1:]:
            return str(commit.id)
    return None


def normalize_path(path: str) -> str:
    """A repository-relative file path; PathRequired/InvalidPath errors as CodeCommit does."""
    if path is None or path == "":
        raise errors.PathRequiredException("A file path is required.")
    trimmed = path[1:] if path.startswith("/") else path
    parts = trimmed.split("/")
    if (
        not trimmed
        or "\0" in trimmed
        or any(part in ("", ".", "..") for part in parts)
        or ".git" in parts
    ):
        raise errors.InvalidPathException(f"The path {path!r} is not valid.")
    return trimmed


# -- validation --------------------------------------------------------------------------
def _check_options(detail_level: str, resolution_strategy: str) -> None:
    if detail_level not in DETAIL_LEVELS:
        raise errors.InvalidConflictDetailLevelException(
            f"{detail_level!r} is not a valid conflict detail level."
        )
    if resolution_strategy not in RESOLUTION_STRATEGIES:
        raise errors.InvalidConflictResolutionStrategyException(
            f"{resolution_strategy!r} is not a valid conflict resolution strategy."
        )


def _commit(git: pygit2.Repository, commit: Any) -> pygit2.Commit:
    if isinstance(commit, pygit2.Commit):
        return commit
    try:
        obj = git.get(str(commit))
        if obj is not None:
            return obj.peel(pygit2.Commit)
    except (ValueError, pygit2.GitError):
        pass
    raise errors.CommitDoesNotExistException(f"Could not find commit {commit!s}.")


def _contains(git: pygit2.Repository, container: pygit2.Commit, commit: pygit2.Commit) -> bool:
    """Whether `commit` is `container` or one of its ancestors."""
    return container.id == commit.id or git.descendant_of(container.id, commit.id)


@dataclasses.dataclass(frozen=True)
class _Signature:
    name: str
    email: str


def _signature(author_name: str | None, email: str | None) -> _Signature:
    name = author_name or DEFAULT_AUTHOR_NAME
    if len(name) > MAX_NAME_LENGTH:
        raise errors.NameLengthExceededException(
            f"The author name is longer than {MAX_NAME_LENGTH} characters."
        )
    # git identities cannot hold angle brackets or line breaks around the name.
    name = "".join(ch for ch in name if ch not in "<>\n\r\0").strip() or DEFAULT_AUTHOR_NAME
    address = email or ""
    if len(address) > MAX_EMAIL_LENGTH or any(ch in address for ch in "<>\n\r\0"):
        raise errors.InvalidEmailException(f"The email address {address[:64]!r} is not valid.")
    return _Signature(name, address)


def _message(message: str | None, source: pygit2.Commit, destination: pygit2.Commit) -> str:
    text = (message or "").replace("\0", "")
    text = text or f"Merge {str(source.id)[:8]} into {str(destination.id)[:8]}"
    if len(text.encode("utf-8", "surrogatepass")) > MAX_COMMIT_MESSAGE_BYTES:
        raise errors.CommitMessageLengthExceededException(
            f"The commit message is longer than {MAX_COMMIT_MESSAGE_BYTES // 1024} KB."
        )
    return text


def _write_commit(
    git: pygit2.Repository,
    tree_id: str,
    parents: Sequence[str],
    signature: _Signature,
    message: str,
) -> str:
    # Written as a raw object: libgit2's signatures refuse the empty email CodeCommit allows.
    identity = f"{signature.name} <{signature.email}> {int(time.time())} +0000"
    header = [f"tree {tree_id}", *(f"parent {parent}" for parent in parents)]
    header += [f"author {identity}", f"committer {identity}"]
    raw = ("\n".join(header) + "\n\n" + message).encode("utf-8", "replace")
    return str(git.odb.write(pygit2.enums.ObjectType.COMMIT, raw))


# -- conflict resolutions ----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Replacement:
    replacement_type: str
    content: bytes | None
    file_mode: int | None


@dataclasses.dataclass
class _Resolution:
    replace: dict[str, _Replacement] = dataclasses.field(default_factory=dict)
    delete: set[str] = dataclasses.field(default_factory=set)
    modes: dict[str, int] = dataclasses.field(default_factory=dict)

    def paths(self) -> set[str]:
        return set(self.replace) | self.delete | set(self.modes)


def _parse_resolution(document: Mapping[str, Any] | None) -> _Resolution:
    resolution = _Resolution()
    if not document:
        return resolution
    replace = list(document.get("replaceContents") or [])
    delete = list(document.get("deleteFiles") or [])
    modes = list(document.get("setFileModes") or [])
    if len(replace) + len(delete) + len(modes) > MAX_CONFLICT_RESOLUTION_ENTRIES:
        raise errors.MaximumConflictResolutionEntriesExceededException(
            f"A conflict resolution can have at most {MAX_CONFLICT_RESOLUTION_ENTRIES} entries."
        )

    def duplicate(path: str) -> errors.MultipleConflictResolutionEntriesException:
        return errors.MultipleConflictResolutionEntriesException(
            f"More than one conflict resolution entry names {path!r}."
        )

    total = 0
    for item in replace:
        path = normalize_path(item.get("filePath", ""))
        kind = item.get("replacementType")
        if not kind:
            raise errors.ReplacementTypeRequiredException(
                f"A replacement type is required for {path!r}."
            )
        if kind not in REPLACEMENT_TYPES:
            raise errors.InvalidReplacementTypeException(f"{kind!r} is not a replacement type.")
        content = item.get("content")
        if kind == USE_NEW_CONTENT and content is None:
            raise errors.ReplacementContentRequiredException(
                f"USE_NEW_CONTENT for {path!r} needs replacement content."
            )
        if kind != USE_NEW_CONTENT and content is not None:
            raise errors.InvalidReplacementContentException(
                f"Content can only be given with USE_NEW_CONTENT, not {kind} ({path!r})."
            )
        if content is not None:
            if len(content) > MAX_FILE_CONTENT_BYTES:
                raise errors.FileContentSizeLimitExceededException(
                    f"The replacement content for {path!r} is larger than 6 MB."
                )
            total += len(content)
        if path in resolution.replace:
            raise duplicate(path)
        resolution.replace[path] = _Replacement(kind, content, _file_mode(item.get("fileMode")))
    if total > MAX_TOTAL_CONTENT_BYTES:
        raise errors.FileContentSizeLimitExceededException(
            "The replacement contents together are larger than 7 MB."
        )
    for item in delete:
        path = normalize_path(item.get("filePath", ""))
        if path in resolution.replace or path in resolution.delete:
            raise duplicate(path)
        resolution.delete.add(path)
    for item in modes:
        path = normalize_path(item.get("filePath", ""))
        mode = _file_mode(item.get("fileMode"))
        if mode is None:
            raise errors.FileModeRequiredException(f"A file mode is required for {path!r}.")
        replacement = resolution.replace.get(path)
        if (
            path in resolution.modes
            or path in resolution.delete
            or (replacement is not None and replacement.file_mode is not None)
        ):
            raise duplicate(path)
        resolution.modes[path] = mode
    return resolution


def _file_mode(name: str | None) -> int | None:
    if name is None:
        return None
    if name not in FILE_MODES:
        raise errors.InvalidFileModeException(f"{name!r} is not a valid file mode.")
    return FILE_MODES[name]


# -- per-path merging --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Settled:
    """What a path becomes: no file (mode None), or content (an object or new bytes)."""

    mode: int | None = None
    oid: str | None = None
    data: bytes | None = None

    @property
    def deleted(self) -> bool:
        return self.mode is None

    @staticmethod
    def of(entry: Entry | None) -> _Settled:
        if entry is None or entry.is_directory:
            return _DELETED
        return _Settled(mode=entry.mode, oid=entry.oid)


_DELETED = _Settled()


@dataclasses.dataclass
class _PathMerge:
    path: str
    base: Entry | None
    source: Entry | None
    destination: Entry | None
    level: str
    # Each part is settled (a value) or in conflict (the flag).
    content_conflict: bool = False
    mode_conflict: bool = False
    type_conflict: bool = False
    oid: str | None = None
    data: bytes | None = None
    mode: int | None = None
    deleted: bool = False

    @property
    def is_conflict(self) -> bool:
        return self.content_conflict or self.mode_conflict or self.type_conflict

    def settled(self) -> _Settled:
        if self.deleted:
            return _DELETED
        return _Settled(mode=self.mode, oid=self.oid, data=self.data)


def _item(entry: Entry | None) -> tuple[Any, ...] | None:
    """What counts as a change of a path: directories compare equal whatever they hold."""
    if entry is None:
        return None
    if entry.is_directory:
        return ("DIRECTORY",)
    return (entry.oid, entry.mode)


def _file(entry: Entry | None) -> Entry | None:
    return None if entry is None or entry.is_directory else entry


def _operation(base: Entry | None, side: Entry | None) -> str | None:
    if base is None:
        return "A" if side is not None else None
    if side is None:
        return "D"
    return "M"


def _three_way(base: Any, source: Any, destination: Any) -> tuple[bool, Any]:
    """(settled, value) of one component merged three ways."""
    if source == destination:
        return True, source
    if source == base:
        return True, destination
    if destination == base:
        return True, source
    return False, None


class _Analysis:
    """The tree-level three-way merge of one (base, source, destination) triple."""

    def __init__(
        self,
        git: pygit2.Repository,
        base: pygit2.Commit,
        source: pygit2.Commit,
        destination: pygit2.Commit,
        level: str,
    ) -> None:
        self.git = git
        self.trees = (base.tree, source.tree, destination.tree)
        self.destination_tree = destination.tree
        self._loaded = 0
        self._line_merges: dict[str, _LineMerge] = {}
        paths: set[str] = set()
        for side in self.trees[1:]:
            for delta in self.trees[0].diff_to_tree(side).deltas:
                paths.add(delta.old_file.path)
                paths.add(delta.new_file.path)
                if len(paths) > MAX_ITEMS_TO_COMPARE:
                    raise errors.MaximumItemsToCompareExceededException(
                        f"More than {MAX_ITEMS_TO_COMPARE} paths differ from the merge base."
                    )
        self.paths = sorted(paths)
        self.merges = {path: self._merge_path(path, level) for path in self.paths}
        self._flag_files_over_directories()

    # .. detection ........................................................................
    def _entries(self, path: str) -> tuple[Entry | None, Entry | None, Entry | None]:
        base, source, destination = (_entry_at(tree, path) for tree in self.trees)
        return base, source, destination

    def _merge_path(self, path: str, level: str) -> _PathMerge:
        base, source, destination = self._entries(path)
        merge = _PathMerge(path, base, source, destination, level)
        changed_source = _item(source) != _item(base)
        changed_destination = _item(destination) != _item(base)
        if not changed_source:
            return self._settle(merge, destination)
        if not changed_destination or _item(source) == _item(destination):
            return self._settle(merge, source)

        b, s, d = _file(base), _file(source), _file(destination)
        if s is None and d is None:
            merge.deleted = True
            return merge
        if s is None or d is None:
            # One side removed the file or put a directory in its place.
            if (source is not None and source.is_directory) or (
                destination is not None and destination.is_directory
            ):
                merge.type_conflict = True
            else:
                merge.content_conflict = True
            return merge

        types_settled, _ = _three_way(b.object_type if b else None, s.object_type, d.object_type)
        merge.type_conflict = not types_settled
        modes_settled, mode = _three_way(b.mode if b else None, s.mode, d.mode)
        merge.mode_conflict = not modes_settled
        merge.mode = mode
        oids_settled, oid = _three_way(b.oid if b else None, s.oid, d.oid)
        if level == FILE_LEVEL:
            # Any change to the file on both sides is a conflict, whatever the lines.
            merge.content_conflict = s.oid != d.oid
            merge.oid = None if merge.content_conflict else s.oid
        elif oids_settled:
            merge.oid = oid
        elif not merge.type_conflict and self._mergeable_text(b, s, d):
            lines = self.line_merge(path, b, s, d)
            merge.content_conflict = lines.merged is None
            merge.data = lines.merged
        else:
            merge.content_conflict = True
        return merge

    @staticmethod
    def _settle(merge: _PathMerge, entry: Entry | None) -> _PathMerge:
        settled = _Settled.of(entry)
        merge.deleted = settled.deleted
        merge.oid, merge.mode = settled.oid, settled.mode
        return merge

    def _mergeable_text(self, *entries: Entry | None) -> bool:
        for entry in entries:
            if entry is None:
                continue
            if entry.object_type != "FILE" or _blob(self.git, entry.oid).is_binary:
                return False
        return True

    def line_merge(
        self, path: str, base: Entry | None, source: Entry, destination: Entry
    ) -> _LineMerge:
        cached = self._line_merges.get(path)
        if cached is None:
            self._loaded += 1
            if self._loaded > MAX_FILES_TO_LOAD:
                raise errors.MaximumFileContentToLoadExceededException(
                    f"More than {MAX_FILES_TO_LOAD} files would have to be merged line by line."
                )
            cached = self._line_merges[path] = _merge_lines(self.git, base, source, destination)
        return cached

    def _flag_files_over_directories(self) -> None:
        """A path settled to a file while something still lands beneath it conflicts."""
        for path in self.paths:
            merge = self.merges[path]
            if merge.is_conflict or merge.deleted:
                continue
            prefix = path + "/"
            index = bisect.bisect_left(self.paths, prefix)
            while index < len(self.paths) and self.paths[index].startswith(prefix):
                below = self.merges[self.paths[index]]
                if below.is_conflict or not below.deleted:
                    merge.type_conflict = True
                    merge.oid = merge.data = merge.mode = None
                    break
                index += 1

    # .. resolution .......................................................................
    def settle(self, strategy: str, resolution: _Resolution) -> _Outcome:
        conflicting = {path for path, merge in self.merges.items() if merge.is_conflict}
        unknown = sorted(resolution.paths() - conflicting)
        if unknown:
            raise errors.InvalidConflictResolutionException(
                f"The conflict resolution names {unknown[0]!r}, which is not in conflict."
            )
        results: dict[str, _Settled] = {}
        unresolved: list[_PathMerge] = []
        for path in self.paths:
            merge = self.merges[path]
            if not merge.is_conflict:
                results[path] = merge.settled()
                continue
            merge = self._apply_strategy(merge, strategy)
            merge = self._apply_entries(merge, resolution)
            if merge.is_conflict:
                unresolved.append(merge)
            else:
                results[path] = merge.settled()
        # A path that became a file takes the place of anything beneath it.
        files = {path for path, settled in results.items() if not settled.deleted}

        def shadowed(path: str) -> bool:
            parts = path.split("/")
            return any("/".join(parts[:depth]) in files for depth in range(1, len(parts)))

        results = {path: value for path, value in results.items() if not shadowed(path)}
        unresolved = [merge for merge in unresolved if not shadowed(merge.path)]
        return _Outcome(results, unresolved)

    def _apply_strategy(self, merge: _PathMerge, strategy: str) -> _PathMerge:
        if strategy == ACCEPT_SOURCE:
            return self._settle(dataclasses.replace(merge, **_CLEAR), merge.source)
        if strategy == ACCEPT_DESTINATION:
            return self._settle(dataclasses.replace(merge, **_CLEAR), merge.destination)
        if strategy == AUTOMERGE and merge.level == FILE_LEVEL:
            again = self._merge_path(merge.path, LINE_LEVEL)
            again.type_conflict = again.type_conflict or merge.type_conflict
            return again
        return merge

    def _apply_entries(self, merge: _PathMerge, resolution: _Resolution) -> _PathMerge:
        path = merge.path
        if path in resolution.delete:
            merge = dataclasses.replace(merge, **_CLEAR)
            merge.deleted = True
            return merge
        replacement = resolution.replace.get(path)
        if replacement is not None:
            merge = dataclasses.replace(merge, **_CLEAR)
            kept = {
                KEEP_BASE: merge.base,
                KEEP_SOURCE: merge.source,
                KEEP_DESTINATION: merge.destination,
            }
            if replacement.replacement_type == USE_NEW_CONTENT:
                merge.data = replacement.content
                merge.mode = (
                    replacement.file_mode or self._natural_mode(merge) or FILE_MODES["NORMAL"]
                )
            else:
                self._settle(merge, kept[replacement.replacement_type])
                if replacement.file_mode is not None and not merge.deleted:
                    merge.mode = replacement.file_mode
        mode = resolution.modes.get(path)
        if mode is not None:
            if merge.deleted:
                raise errors.InvalidConflictResolutionException(
                    f"Cannot set the file mode of {path!r}: the resolution deletes it."
                )
            merge.mode = mode
            merge.mode_conflict = False
        return merge

    @staticmethod
    def _natural_mode(merge: _PathMerge) -> int | None:
        if merge.mode is not None:
            return merge.mode
        for entry in (merge.destination, merge.source, merge.base):
            if entry is not None and entry.mode in MODE_NAMES:
                return entry.mode
        return None

    def conflict_info(self, merge: _PathMerge) -> ConflictInfo:
        return ConflictInfo(
            path=merge.path,
            base=merge.base,
            source=merge.source,
            destination=merge.destination,
            content_conflict=merge.content_conflict,
            file_mode_conflict=merge.mode_conflict,
            object_type_conflict=merge.type_conflict,
            conflict_detail_level=merge.level,
            git=self.git,
        )

    # .. writing ..........................................................................
    def write_tree(self, results: Mapping[str, _Settled], keep_empty_folders: bool) -> str:
        root = _Node()
        for path, settled in results.items():
            if settled == _Settled.of(_entry_at(self.destination_tree, path)):
                continue  # already so in the destination
            node = root
            for part in path.split("/"):
                node = node.children.setdefault(part, _Node())
            node.leaf = settled
        tree_id = _build_tree(self.git, self.destination_tree, root, keep_empty_folders)
        if tree_id is None:
            tree_id = self.git.TreeBuilder().write()
        return str(tree_id)


_CLEAR: dict[str, Any] = {
    "content_conflict": False,
    "mode_conflict": False,
    "type_conflict": False,
    "oid": None,
    "data": None,
    "mode": None,
    "deleted": False,
}


@dataclasses.dataclass
class _Outcome:
    results: dict[str, _Settled]
    unresolved: list[_PathMerge]


@dataclasses.dataclass
class _Node:
    leaf: _Settled | None = None
    children: dict[str, _Node] = dataclasses.field(default_factory=dict)


def _entry_at(tree: pygit2.Tree, path: str) -> Entry | None:
    try:
        obj = tree[path]
    except KeyError:
        return None
    mode = int(obj.filemode)
    if mode & 0o170000 == 0o100000:
        # Old repositories carry 100664 and the like; git reads those as 100644/100755.
        mode = FILE_MODES["EXECUTABLE"] if mode & 0o111 else FILE_MODES["NORMAL"]
    return Entry(str(obj.id), mode)


def _blob(git: pygit2.Repository, oid: Any) -> pygit2.Blob:
    blob = git[oid]
    assert isinstance(blob, pygit2.Blob)
    return blob


def _tree(git: pygit2.Repository, oid: Any) -> pygit2.Tree:
    tree = git[oid]
    assert isinstance(tree, pygit2.Tree)
    return tree


def _build_tree(
    git: pygit2.Repository, tree: pygit2.Tree | None, node: _Node, keep_empty: bool
) -> pygit2.Oid | None:
    builder = git.TreeBuilder(tree) if tree is not None else git.TreeBuilder()
    for name, child in node.children.items():
        existing = builder.get(name)
        leaf = child.leaf
        if leaf is not None and not leaf.deleted:
            oid = leaf.oid if leaf.oid is not None else git.create_blob(leaf.data or b"")
            builder.insert(name, oid, int(leaf.mode or FILE_MODES["NORMAL"]))
            continue
        existing_is_tree = existing is not None and existing.filemode == TREE_MODE
        if child.children:
            subtree = _tree(git, existing.id) if existing_is_tree else None
            sub_id = _build_tree(git, subtree, child, keep_empty)
            if sub_id is not None:
                builder.insert(name, sub_id, TREE_MODE)
            elif existing is not None:
                builder.remove(name)
        elif existing is not None and not existing_is_tree:
            builder.remove(name)
    if len(builder) == 0:
        if not (keep_empty and tree is not None):
            return None
        builder.insert(GITKEEP, git.create_blob(b""), FILE_MODES["NORMAL"])
    return builder.write()


# -- line merging ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Edit:
    """One change of a side against the base: base lines [base_start, base_end) became
    side lines [side_start, side_end)."""

    base_start: int
    base_end: int
    side_start: int
    side_end: int


@dataclasses.dataclass(frozen=True)
class _Region:
    """A run of base lines changed by one or both sides, with each side's lines."""

    base: tuple[int, int]
    source: tuple[int, int]
    destination: tuple[int, int]
    by_source: bool
    by_destination: bool
    conflict: bool


@dataclasses.dataclass(frozen=True)
class _LineMerge:
    base_lines: list[bytes]
    source_lines: list[bytes]
    destination_lines: list[bytes]
    regions: list[_Region]
    merged: bytes | None  # None when a region conflicts


def _split_lines(data: bytes) -> list[bytes]:
    if not data:
        return []
    pieces = data.split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def _edits(
    git: pygit2.Repository, base: Entry | None, side: Entry, side_lines: list[bytes]
) -> list[_Edit]:
    if base is None:
        return [_Edit(0, 0, 0, len(side_lines))] if side_lines else []
    patch = _blob(git, base.oid).diff(  # type: ignore[call-arg]
        _blob(git, side.oid), context_lines=0, interhunk_lines=0
    )
    edits = []
    for hunk in patch.hunks:
        base_start = hunk.old_start - 1 if hunk.old_lines else hunk.old_start
        side_start = hunk.new_start - 1 if hunk.new_lines else hunk.new_start
        edits.append(
            _Edit(base_start, base_start + hunk.old_lines, side_start, side_start + hunk.new_lines)
        )
    return edits


def _merge_lines(
    git: pygit2.Repository, base: Entry | None, source: Entry, destination: Entry
) -> _LineMerge:
    base_lines = _split_lines(_blob(git, base.oid).data) if base else []
    source_lines = _split_lines(_blob(git, source.oid).data)
    destination_lines = _split_lines(_blob(git, destination.oid).data)
    tagged = sorted(
        [(edit, 0) for edit in _edits(git, base, source, source_lines)]
        + [(edit, 1) for edit in _edits(git, base, destination, destination_lines)],
        key=lambda pair: (pair[0].base_start, pair[0].base_end),
    )
    # Group edits whose base ranges overlap or touch: git treats those as one change.
    clusters: list[list[tuple[_Edit, int]]] = []
    end = -1
    for edit, side in tagged:
        if clusters and edit.base_start <= end:
            clusters[-1].append((edit, side))
            end = max(end, edit.base_end)
        else:
            clusters.append([(edit, side)])
            end = edit.base_end
    regions: list[_Region] = []
    merged: list[bytes] | None = []
    shift = [0, 0]  # side line minus base line, after the edits seen so far
    position = 0
    for cluster in clusters:
        low = min(edit.base_start for edit, _ in cluster)
        high = max(edit.base_end for edit, _ in cluster)
        ranges = []
        for side in (0, 1):
            own = [edit for edit, owner in cluster if owner == side]
            if own:
                start = own[0].side_start - (own[0].base_start - low)
                stop = own[-1].side_end + (high - own[-1].base_end)
            else:
                start, stop = low + shift[side], high + shift[side]
            ranges.append((start, stop))
            shift[side] = stop - high
        changed = [any(owner == side for _, owner in cluster) for side in (0, 1)]
        source_part = source_lines[ranges[0][0] : ranges[0][1]]
        destination_part = destination_lines[ranges[1][0] : ranges[1][1]]
        conflict = all(changed) and source_part != destination_part
        regions.append(_Region((low, high), ranges[0], ranges[1], changed[0], changed[1], conflict))
        if merged is not None:
            merged.extend(base_lines[position:low])
            if conflict:
                merged = None
            else:
                merged.extend(source_part if changed[0] else destination_part)
        position = high
    if merged is not None:
        merged.extend(base_lines[position:])
    return _LineMerge(
        base_lines,
        source_lines,
        destination_lines,
        regions,
        b"".join(merged) if merged is not None else None,
    )


def _side(lines: list[bytes], span: tuple[int, int]) -> HunkSide:
    return HunkSide(span[0], span[1], b"".join(lines[span[0] : span[1]]))


def _describe_hunks(info: ConflictInfo) -> list[MergeHunk]:
    """The merge hunks of a file: each changed region, with whether it conflicts."""
    git = info.git
    present = [entry for entry in (info.base, info.source, info.destination) if entry]
    if any(entry.object_type != "FILE" or _blob(git, entry.oid).is_binary for entry in present):
        return []
    source = _file(info.source)
    destination = _file(info.destination)
    base = _file(info.base)
    if source is None or destination is None:
        # Deleted on one side: the whole file against the base is the one hunk.
        def whole(entry: Entry | None) -> HunkSide | None:
            if entry is None:
                return None
            lines = _split_lines(_blob(git, entry.oid).data)
            return HunkSide(0, len(lines), b"".join(lines))

        if source is None and destination is None:
            return []
        return [MergeHunk(info.content_conflict, whole(source), whole(destination), whole(base))]
    lines = _merge_lines(git, base, source, destination)
    whole_file = info.conflict_detail_level == FILE_LEVEL and info.content_conflict
    return [
        MergeHunk(
            is_conflict=region.conflict or whole_file,
            source=_side(lines.source_lines, region.source),
            destination=_side(lines.destination_lines, region.destination),
            base=_side(lines.base_lines, region.base),
        )
        for region in lines.regions
    ]
