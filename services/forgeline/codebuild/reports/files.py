"""Find a report's raw files in the build's source directory by its buildspec globs.

Patterns follow the buildspec's rules: relative to `base-directory`, `*` and `?` stay
within one path segment, `**` spans any number of segments. Only regular files inside
the source directory count: a symlink leading out of it is ignored, so a buildspec can
not make the server read its own files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

MAX_REPORT_FILES = 1000


class ReportFilesError(ValueError):
    pass


def pattern_regex(pattern: str) -> re.Pattern[str]:
    text = pattern.strip()
    while text.startswith("./"):
        text = text[2:]
    text = text.lstrip("/")
    out = []
    index = 0
    while index < len(text):
        if text.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif text.startswith("**", index):
            out.append(".*")
            index += 2
        elif text[index] == "*":
            out.append("[^/]*")
            index += 1
        elif text[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(text[index]))
            index += 1
    return re.compile("".join(out) + r"\Z")


def resolve_base(src_dir: Path, base_directory: str | None) -> Path:
    root = src_dir.resolve()
    base = (root / (base_directory or "").lstrip("/")).resolve()
    if base != root and root not in base.parents:
        raise ReportFilesError(f"base-directory {base_directory!r} is outside the source")
    return base


def collect(src_dir: Path, base_directory: str | None, patterns: Iterable[str]) -> list[Path]:
    """Matching files, sorted, at most MAX_REPORT_FILES; ReportFilesError if the base
    directory escapes the source directory."""
    root = src_dir.resolve()
    base = resolve_base(src_dir, base_directory)
    regexes = [pattern_regex(p) for p in patterns if p.strip()]
    if not base.is_dir() or not regexes:
        return []
    found: list[Path] = []
    for directory, subdirs, names in os.walk(base):
        subdirs.sort()
        for name in sorted(names):
            path = Path(directory) / name
            relative = path.relative_to(base).as_posix()
            if not any(regex.match(relative) for regex in regexes):
                continue
            real = path.resolve()
            if root not in real.parents or not real.is_file():
                continue
            found.append(path)
            if len(found) >= MAX_REPORT_FILES:
                return found
    return found
