"""One file of a merge as the conflict operations describe it: its metadata and hunks."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pygit2

from forgeline.codecommit.generated import shapes
from forgeline.codecommit.merging.blobs import are_text_files, blob, merge_blob_lines
from forgeline.codecommit.merging.entries import MODE_NAMES, Entry, file_only, operation
from forgeline.codecommit.merging.hunks import MergeHunk, region_hunks, whole_file
from forgeline.codecommit.merging.options import FILE_LEVEL

Side = Literal["source", "destination", "base"]


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

    def metadata(self) -> shapes.ConflictMetadata:
        """The model's ConflictMetadata."""
        sides: dict[Side, Entry | None] = {
            "source": self.source,
            "destination": self.destination,
            "base": self.base,
        }
        sizes: shapes.FileSizes = {}
        modes: shapes.FileModes = {}
        types: shapes.ObjectTypes = {}
        binary: shapes.IsBinaryFile = {}
        for name, entry in sides.items():
            if entry is None:
                continue
            types[name] = entry.object_type
            if entry.mode in MODE_NAMES:
                modes[name] = MODE_NAMES[entry.mode]
                found = blob(self.git, entry.oid)
                sizes[name] = found.size
                binary[name] = entry.object_type == "FILE" and found.is_binary
        operations: shapes.MergeOperations = {}
        changed_source = operation(self.base, self.source)
        if changed_source:
            operations["source"] = changed_source
        changed_destination = operation(self.base, self.destination)
        if changed_destination:
            operations["destination"] = changed_destination
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


def _describe_hunks(info: ConflictInfo) -> list[MergeHunk]:
    """The merge hunks of a file: each changed region, with whether it conflicts."""
    git = info.git
    if not are_text_files(git, (info.base, info.source, info.destination)):
        return []
    source = file_only(info.source)
    destination = file_only(info.destination)
    base = file_only(info.base)
    if source is None or destination is None:
        # Deleted on one side: the whole file against the base is the one hunk.
        if source is None and destination is None:
            return []

        return [
            MergeHunk(
                info.content_conflict,
                whole_file(_data(git, source)),
                whole_file(_data(git, destination)),
                whole_file(_data(git, base)),
            )
        ]
    lines = merge_blob_lines(git, base, source, destination)
    return region_hunks(lines, info.conflict_detail_level == FILE_LEVEL and info.content_conflict)


def _data(git: pygit2.Repository, entry: Entry | None) -> bytes | None:
    return blob(git, entry.oid).data if entry is not None else None
