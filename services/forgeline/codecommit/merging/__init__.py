"""Merges of two commits, computed on the git objects themselves.

This package answers what CodeCommit's merge operations ask: which merge options are
possible, which files conflict at FILE_LEVEL or LINE_LEVEL, how a resolution strategy
and explicit resolutions settle them, and what merged tree and commit result. It writes
objects (blobs, trees, commits) but never moves a ref: callers move the branch through
gitstore (`move_ref`, or `update_ref_in` and `report_ref_changes` in a transaction of
their own): compare-and-swap, reported once, put back if that transaction rolls back.

Line merges follow git's rule: each side is diffed against the merge base (libgit2's
diff), and changes from the two sides conflict when their base ranges overlap or touch;
the same change made on both sides merges cleanly. MergeHunkDetail line numbers are
0-based with an exclusive end, so an insertion is an empty range.

Pure modules (no git):

- `options`: merge options, conflict detail levels, resolution strategies, their checks.
- `entries`: tree entries, what a path settles to, the three-way rule for one part.
- `lines`: the three-way line merge, from each side's edits against the base.
- `hunks`: a line merge's regions as MergeHunk shapes.
- `paths`: the file paths the merge operations take.
- `resolutions`: a request's ConflictResolution, checked and parsed.

Modules on git objects:

- `history`: commits by id, ancestry, the merge base, the commit that merged a source.
- `blobs`, `trees`: reading blobs and trees for a merge, and writing the merged tree.
- `analysis`: the per-path three-way merge of three trees and how conflicts settle.
- `conflicts`: one file's conflict metadata and hunks.
- `commits`: the merge commit's author, message and object.
- `engine`: the answers the operations use (`merge_options`, `conflicts`, `plan_merge`…).

The names below are this package's interface, so callers need not know its modules.
"""

from __future__ import annotations

from forgeline.codecommit.merging.blobs import merge_blob_lines
from forgeline.codecommit.merging.commits import DEFAULT_AUTHOR_NAME
from forgeline.codecommit.merging.conflicts import ConflictInfo
from forgeline.codecommit.merging.engine import (
    MergeResult,
    conflicts,
    describe_file,
    describe_files,
    merge_options,
    plan_chosen_merge,
    plan_merge,
)
from forgeline.codecommit.merging.entries import Entry
from forgeline.codecommit.merging.history import can_fast_forward, find_merge_commit, merge_base
from forgeline.codecommit.merging.hunks import HunkSide, MergeHunk
from forgeline.codecommit.merging.options import (
    ACCEPT_DESTINATION,
    ACCEPT_SOURCE,
    AUTOMERGE,
    DETAIL_LEVELS,
    FAST_FORWARD,
    FILE_LEVEL,
    LINE_LEVEL,
    MERGE_OPTIONS,
    NONE,
    RESOLUTION_STRATEGIES,
    SQUASH,
    THREE_WAY,
    CommitChoices,
)

__all__ = [
    "ACCEPT_DESTINATION",
    "ACCEPT_SOURCE",
    "AUTOMERGE",
    "CommitChoices",
    "DEFAULT_AUTHOR_NAME",
    "DETAIL_LEVELS",
    "FAST_FORWARD",
    "FILE_LEVEL",
    "LINE_LEVEL",
    "MERGE_OPTIONS",
    "NONE",
    "RESOLUTION_STRATEGIES",
    "SQUASH",
    "THREE_WAY",
    "ConflictInfo",
    "Entry",
    "HunkSide",
    "MergeHunk",
    "MergeResult",
    "can_fast_forward",
    "conflicts",
    "describe_file",
    "describe_files",
    "find_merge_commit",
    "merge_base",
    "merge_blob_lines",
    "merge_options",
    "plan_chosen_merge",
    "plan_merge",
]
