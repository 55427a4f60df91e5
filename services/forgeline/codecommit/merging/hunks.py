"""Merge hunks: the regions of a file's merge as DescribeMergeConflicts shows them."""

from __future__ import annotations

import base64
import dataclasses

from forgeline.codecommit.generated import shapes
from forgeline.codecommit.merging.lines import LineMerge, split_lines


@dataclasses.dataclass(frozen=True)
class HunkSide:
    start_line: int  # 0-based
    end_line: int  # exclusive
    content: bytes

    def to_wire(self) -> shapes.MergeHunkDetail:
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

    def to_wire(self) -> shapes.MergeHunk:
        wire: shapes.MergeHunk = {"isConflict": self.is_conflict}
        if self.source is not None:
            wire["source"] = self.source.to_wire()
        if self.destination is not None:
            wire["destination"] = self.destination.to_wire()
        if self.base is not None:
            wire["base"] = self.base.to_wire()
        return wire


def whole_file(data: bytes | None) -> HunkSide | None:
    """A side's whole file as one hunk side (None: the side has no file)."""
    if data is None:
        return None
    lines = split_lines(data)
    return HunkSide(0, len(lines), b"".join(lines))


def region_hunks(lines: LineMerge, whole_file_conflict: bool) -> list[MergeHunk]:
    """A hunk for each changed region; every one conflicts if the whole file does."""
    return [
        MergeHunk(
            is_conflict=region.conflict or whole_file_conflict,
            source=_side(lines.source_lines, region.source),
            destination=_side(lines.destination_lines, region.destination),
            base=_side(lines.base_lines, region.base),
        )
        for region in lines.regions
    ]


def _side(lines: list[bytes], span: tuple[int, int]) -> HunkSide:
    return HunkSide(span[0], span[1], b"".join(lines[span[0] : span[1]]))
