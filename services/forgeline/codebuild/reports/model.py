"""What every report parser produces: test cases, or coverage per source file.

Field names follow the CodeBuild API (`TestCase`, `CodeCoverage`) so ingestion only
copies values across.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TEST_STATUSES = ("SUCCEEDED", "FAILED", "ERROR", "SKIPPED", "UNKNOWN")

# A single raw report file larger than this is refused rather than read into memory.
MAX_REPORT_FILE_BYTES = 32 * 1024 * 1024


class ReportParseError(ValueError):
    """A report file that cannot be read as its declared format; the message says why."""


@dataclass(frozen=True)
class TestCaseResult:
    name: str
    status: str
    prefix: str | None = None
    suite_name: str | None = None
    duration_ns: int = 0
    message: str | None = None


@dataclass(frozen=True)
class FileCoverage:
    file_path: str
    lines_covered: int
    lines_missed: int
    branches_covered: int = 0
    branches_missed: int = 0

    @property
    def line_coverage_percentage(self) -> float:
        return percentage(self.lines_covered, self.lines_missed)

    @property
    def branch_coverage_percentage(self) -> float:
        return percentage(self.branches_covered, self.branches_missed)


def percentage(covered: int, missed: int) -> float:
    """Covered share in percent, cut (not rounded) to two decimals as CodeBuild shows it
    (10 of 11 lines is 90.9, not 90.91); nothing to cover counts as 0."""
    total = covered + missed
    if total <= 0:
        return 0.0
    return math.floor(covered * 10000 / total) / 100


def seconds_to_ns(text: str | None) -> int:
    """A duration in (fractional) seconds as nanoseconds; junk or negatives count as 0."""
    if text is None:
        return 0
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        return 0
    if not math.isfinite(value) or value < 0:
        return 0
    return int(round(value * 1_000_000_000))


def clip(text: str | None, limit: int = 64 * 1024) -> str | None:
    """Messages and stack traces are kept, but bounded."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    return text if len(text) <= limit else text[:limit]
