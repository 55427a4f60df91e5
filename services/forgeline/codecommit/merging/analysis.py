"""The tree-level three-way merge of one (base, source, destination) triple.

Every path either side changed is merged on its own: its content, mode and object type
each settle by the three-way rule, or conflict. At LINE_LEVEL a text file changed on
both sides is merged line by line. A resolution strategy and the request's explicit
resolutions then settle what they can; what is left is the merge's conflicts.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping
from typing import Any

import pygit2

from forgeline.codecommit.generated import errors
from forgeline.codecommit.merging import trees
from forgeline.codecommit.merging.blobs import are_text_files, merge_blob_lines
from forgeline.codecommit.merging.conflicts import ConflictInfo
from forgeline.codecommit.merging.entries import (
    DELETED,
    FILE_MODES,
    MODE_NAMES,
    Entry,
    Settled,
    comparable,
    file_only,
    three_way,
)
from forgeline.codecommit.merging.lines import LineMerge
from forgeline.codecommit.merging.options import (
    ACCEPT_DESTINATION,
    ACCEPT_SOURCE,
    AUTOMERGE,
    FILE_LEVEL,
    LINE_LEVEL,
)
from forgeline.codecommit.merging.resolutions import (
    KEEP_BASE,
    KEEP_DESTINATION,
    KEEP_SOURCE,
    USE_NEW_CONTENT,
    Resolution,
)

MAX_FILES_TO_LOAD = 1_000  # files merged line by line in one evaluation: our safety limit


@dataclasses.dataclass
class PathMerge:
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

    def settled(self) -> Settled:
        if self.deleted:
            return DELETED
        return Settled(mode=self.mode, oid=self.oid, data=self.data)


# A path merge with every part unsettled and no conflict, ready to be settled again.
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
class Outcome:
    results: dict[str, Settled]
    unresolved: list[PathMerge]


class Analysis:
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
        self._line_merges: dict[str, LineMerge] = {}
        self.paths = trees.changed_paths(*self.trees)
        self.merges = {path: self._merge_path(path, level) for path in self.paths}
        self._flag_files_over_directories()

    # .. detection ........................................................................
    def entries(self, path: str) -> tuple[Entry | None, Entry | None, Entry | None]:
        """The (base, source, destination) entries at a path."""
        base, source, destination = (trees.entry_at(tree, path) for tree in self.trees)
        return base, source, destination

    def _merge_path(self, path: str, level: str) -> PathMerge:
        base, source, destination = self.entries(path)
        merge = PathMerge(path, base, source, destination, level)
        changed_source = comparable(source) != comparable(base)
        changed_destination = comparable(destination) != comparable(base)
        if not changed_source:
            return self._settle(merge, destination)
        if not changed_destination or comparable(source) == comparable(destination):
            return self._settle(merge, source)

        b, s, d = file_only(base), file_only(source), file_only(destination)
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

        types_settled, _ = three_way(b.object_type if b else None, s.object_type, d.object_type)
        merge.type_conflict = not types_settled
        modes_settled, mode = three_way(b.mode if b else None, s.mode, d.mode)
        merge.mode_conflict = not modes_settled
        merge.mode = mode
        oids_settled, oid = three_way(b.oid if b else None, s.oid, d.oid)
        if level == FILE_LEVEL:
            # Any change to the file on both sides is a conflict, whatever the lines.
            merge.content_conflict = s.oid != d.oid
            merge.oid = None if merge.content_conflict else s.oid
        elif oids_settled:
            merge.oid = oid
        elif not merge.type_conflict and are_text_files(self.git, (b, s, d)):
            lines = self.line_merge(path, b, s, d)
            merge.content_conflict = lines.merged is None
            merge.data = lines.merged
        else:
            merge.content_conflict = True
        return merge

    @staticmethod
    def _settle(merge: PathMerge, entry: Entry | None) -> PathMerge:
        settled = Settled.of(entry)
        merge.deleted = settled.deleted
        merge.oid, merge.mode = settled.oid, settled.mode
        return merge

    def line_merge(
        self, path: str, base: Entry | None, source: Entry, destination: Entry
    ) -> LineMerge:
        cached = self._line_merges.get(path)
        if cached is None:
            self._loaded += 1
            if self._loaded > MAX_FILES_TO_LOAD:
                raise errors.MaximumFileContentToLoadExceededException(
                    f"More than {MAX_FILES_TO_LOAD} files would have to be merged line by line."
                )
            cached = merge_blob_lines(self.git, base, source, destination)
            self._line_merges[path] = cached
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
    def settle(self, strategy: str, resolution: Resolution) -> Outcome:
        conflicting = {path for path, merge in self.merges.items() if merge.is_conflict}
        unknown = sorted(resolution.paths() - conflicting)
        if unknown:
            raise errors.InvalidConflictResolutionException(
                f"The conflict resolution names {unknown[0]!r}, which is not in conflict."
            )
        results: dict[str, Settled] = {}
        unresolved: list[PathMerge] = []
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
        return Outcome(results, unresolved)

    def _apply_strategy(self, merge: PathMerge, strategy: str) -> PathMerge:
        if strategy == ACCEPT_SOURCE:
            return self._settle(dataclasses.replace(merge, **_CLEAR), merge.source)
        if strategy == ACCEPT_DESTINATION:
            return self._settle(dataclasses.replace(merge, **_CLEAR), merge.destination)
        if strategy == AUTOMERGE and merge.level == FILE_LEVEL:
            again = self._merge_path(merge.path, LINE_LEVEL)
            again.type_conflict = again.type_conflict or merge.type_conflict
            return again
        return merge

    def _apply_entries(self, merge: PathMerge, resolution: Resolution) -> PathMerge:
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
    def _natural_mode(merge: PathMerge) -> int | None:
        if merge.mode is not None:
            return merge.mode
        for entry in (merge.destination, merge.source, merge.base):
            if entry is not None and entry.mode in MODE_NAMES:
                return entry.mode
        return None

    def conflict_info(self, merge: PathMerge) -> ConflictInfo:
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
    def write_tree(self, results: Mapping[str, Settled], keep_empty_folders: bool) -> str:
        return trees.write_tree(self.git, self.destination_tree, results, keep_empty_folders)
