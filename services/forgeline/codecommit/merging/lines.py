"""Three-way merge of lines, from each side's edits against the merge base.

The edits come from a line diff of each side against the base (the caller runs it).
Edits from the two sides whose base ranges overlap or touch form one region, as git
treats them: such a region conflicts unless both sides made the same change there. Line
numbers are 0-based with an exclusive end, so an insertion is an empty range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Edit:
    """One change of a side against the base: base lines [base_start, base_end) became
    side lines [side_start, side_end)."""

    base_start: int
    base_end: int
    side_start: int
    side_end: int


@dataclasses.dataclass(frozen=True)
class Region:
    """A run of base lines changed by one or both sides, with each side's lines."""

    base: tuple[int, int]
    source: tuple[int, int]
    destination: tuple[int, int]
    by_source: bool
    by_destination: bool
    conflict: bool


@dataclasses.dataclass(frozen=True)
class LineMerge:
    base_lines: list[bytes]
    source_lines: list[bytes]
    destination_lines: list[bytes]
    regions: list[Region]
    merged: bytes | None  # None when a region conflicts


def split_lines(data: bytes) -> list[bytes]:
    """Lines with their newline kept; a last line without one is a line too."""
    if not data:
        return []
    pieces = data.split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


def edit_from_hunk(old_start: int, old_lines: int, new_start: int, new_lines: int) -> Edit:
    """An Edit from a unified-diff hunk header (1-based starts; an empty side's start
    names the line before the change)."""
    base_start = old_start - 1 if old_lines else old_start
    side_start = new_start - 1 if new_lines else new_start
    return Edit(base_start, base_start + old_lines, side_start, side_start + new_lines)


def whole_addition(side_lines: list[bytes]) -> list[Edit]:
    """The edits of a side that added the file: every line, against an empty base."""
    return [Edit(0, 0, 0, len(side_lines))] if side_lines else []


def merge_lines(
    base_lines: list[bytes],
    source_lines: list[bytes],
    destination_lines: list[bytes],
    source_edits: Sequence[Edit],
    destination_edits: Sequence[Edit],
) -> LineMerge:
    tagged = sorted(
        [(edit, 0) for edit in source_edits] + [(edit, 1) for edit in destination_edits],
        key=lambda pair: (pair[0].base_start, pair[0].base_end),
    )
    # Group edits whose base ranges overlap or touch: git treats those as one change.
    clusters: list[list[tuple[Edit, int]]] = []
    end = -1
    for edit, side in tagged:
        if clusters and edit.base_start <= end:
            clusters[-1].append((edit, side))
            end = max(end, edit.base_end)
        else:
            clusters.append([(edit, side)])
            end = edit.base_end
    regions: list[Region] = []
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
        regions.append(Region((low, high), ranges[0], ranges[1], changed[0], changed[1], conflict))
        if merged is not None:
            merged.extend(base_lines[position:low])
            if conflict:
                merged = None
            else:
                merged.extend(source_part if changed[0] else destination_part)
        position = high
    if merged is not None:
        merged.extend(base_lines[position:])
    return LineMerge(
        base_lines,
        source_lines,
        destination_lines,
        regions,
        b"".join(merged) if merged is not None else None,
    )
