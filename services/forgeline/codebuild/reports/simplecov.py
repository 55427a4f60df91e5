"""SimpleCov JSON: its `.resultset.json`, the `coverage.json` of its JSON formatter, and
the older simplecov-json gem's `files` list.

Lines are arrays with one entry per source line: null for lines that are not code, else
the hit count. Branch data, when present, is counted per branch.
"""

from __future__ import annotations

from typing import Any

from forgeline.codebuild.reports.cucumber import load_json
from forgeline.codebuild.reports.model import FileCoverage, ReportParseError


def parse_simplecov(data: bytes) -> list[FileCoverage]:
    document = load_json(data)
    if not isinstance(document, dict):
        raise ReportParseError("expected a SimpleCov JSON object")
    if isinstance(document.get("files"), list):
        return [_from_gem_file(entry) for entry in document["files"] if isinstance(entry, dict)]
    if isinstance(document.get("coverage"), dict):
        return _from_coverage_map([document["coverage"]])
    runs = [
        run["coverage"]
        for run in document.values()
        if isinstance(run, dict) and isinstance(run.get("coverage"), dict)
    ]
    if not runs and document:
        raise ReportParseError(
            "expected SimpleCov .resultset.json (command name -> coverage) or coverage.json"
        )
    return _from_coverage_map(runs)


def _from_coverage_map(runs: list[dict[str, Any]]) -> list[FileCoverage]:
    """Merge every run's per-file data (several test commands may cover one file)."""
    lines: dict[str, dict[int, int]] = {}
    branches: dict[str, dict[str, int]] = {}
    for run in runs:
        for path, entry in run.items():
            if isinstance(entry, list):
                entry = {"lines": entry}
            if not isinstance(entry, dict):
                continue
            file_lines = lines.setdefault(path, {})
            for index, count in enumerate(_list(entry.get("lines"))):
                if isinstance(count, int) and not isinstance(count, bool):
                    file_lines[index] = file_lines.get(index, 0) + max(count, 0)
            file_branches = branches.setdefault(path, {})
            for key, count in _branch_counts(entry.get("branches")):
                file_branches[key] = file_branches.get(key, 0) + count
    files = []
    for path, file_lines in lines.items():
        covered = sum(1 for count in file_lines.values() if count > 0)
        counts = branches[path].values()
        branches_covered = sum(1 for count in counts if count > 0)
        files.append(
            FileCoverage(
                path,
                covered,
                len(file_lines) - covered,
                branches_covered,
                len(counts) - branches_covered,
            )
        )
    return files


def _branch_counts(value: Any) -> list[tuple[str, int]]:
    """(branch key, hits): .resultset.json nests {condition: {branch: hits}}; the JSON
    formatter lists {type, start_line, coverage}."""
    found = []
    if isinstance(value, dict):
        for condition, outcomes in value.items():
            if isinstance(outcomes, dict):
                for branch, hits in outcomes.items():
                    if isinstance(hits, int):
                        found.append((f"{condition}{branch}", max(hits, 0)))
    elif isinstance(value, list):
        for index, branch in enumerate(value):
            if isinstance(branch, dict) and isinstance(branch.get("coverage"), int):
                key = f"{branch.get('type')}:{branch.get('start_line')}:{index}"
                found.append((key, max(branch["coverage"], 0)))
    return found


def _from_gem_file(entry: dict[str, Any]) -> FileCoverage:
    counts = [
        c for c in _list(entry.get("coverage")) if isinstance(c, int) and not isinstance(c, bool)
    ]
    covered = sum(1 for c in counts if c > 0)
    return FileCoverage(str(entry.get("filename") or ""), covered, len(counts) - covered)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
