"""Blobs in a merge: reading them, telling text files from the rest, merging their lines.

libgit2 diffs each side against the base (the same diff git uses), and the pure line
merge in `lines` does the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pygit2

from forgeline.codecommit.merging.entries import Entry
from forgeline.codecommit.merging.lines import (
    Edit,
    LineMerge,
    edit_from_hunk,
    merge_lines,
    split_lines,
    whole_addition,
)


def blob(git: pygit2.Repository, oid: Any) -> pygit2.Blob:
    found = git[oid]
    assert isinstance(found, pygit2.Blob)
    return found


def are_text_files(git: pygit2.Repository, entries: Iterable[Entry | None]) -> bool:
    """Whether every entry present is a regular file that is not binary."""
    for entry in entries:
        if entry is None:
            continue
        if entry.object_type != "FILE" or blob(git, entry.oid).is_binary:
            return False
    return True


def file_lines(git: pygit2.Repository, entry: Entry) -> list[bytes]:
    return split_lines(blob(git, entry.oid).data)


def merge_blob_lines(
    git: pygit2.Repository, base: Entry | None, source: Entry, destination: Entry
) -> LineMerge:
    """The line merge of two versions of a file (base None: both sides added it)."""
    base_lines = file_lines(git, base) if base else []
    source_lines = file_lines(git, source)
    destination_lines = file_lines(git, destination)
    return merge_lines(
        base_lines,
        source_lines,
        destination_lines,
        _edits(git, base, source, source_lines),
        _edits(git, base, destination, destination_lines),
    )


def _edits(
    git: pygit2.Repository, base: Entry | None, side: Entry, side_lines: list[bytes]
) -> list[Edit]:
    if base is None:
        return whole_addition(side_lines)
    patch = blob(git, base.oid).diff(  # type: ignore[call-arg]
        blob(git, side.oid), context_lines=0, interhunk_lines=0
    )
    return [
        edit_from_hunk(hunk.old_start, hunk.old_lines, hunk.new_start, hunk.new_lines)
        for hunk in patch.hunks
    ]
