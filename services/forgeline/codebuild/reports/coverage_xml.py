"""Coverage XML formats: Cobertura, JaCoCo and Clover, each reduced to per-file counts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from forgeline.codebuild.reports.model import FileCoverage, ReportParseError
from forgeline.codebuild.reports.safexml import parse_xml

_CONDITIONS = re.compile(r"\((\d+)\s*/\s*(\d+)\)")


def _int(text: str | None) -> int:
    try:
        return max(int(float((text or "0").strip())), 0)
    except ValueError:
        return 0


# ---------------------------------------------------------------- Cobertura


def parse_cobertura(data: bytes) -> list[FileCoverage]:
    """`coverage/packages/package/classes/class[@filename]/lines/line`; one file may hold
    several classes, so lines are merged by number (a line is covered if any hit it)."""
    root = parse_xml(data)
    if root.tag != "coverage":
        raise ReportParseError(f"expected a Cobertura <coverage> root element, found <{root.tag}>")
    hits: dict[str, dict[int, int]] = {}
    branches: dict[str, dict[int, tuple[int, int]]] = {}
    for cls in root.iter("class"):
        filename = cls.get("filename") or cls.get("name")
        if not filename:
            continue
        file_hits = hits.setdefault(filename, {})
        file_branches = branches.setdefault(filename, {})
        lines = cls.find("lines")
        for line in lines if lines is not None else ():
            if line.tag != "line":
                continue
            number = _int(line.get("number"))
            file_hits[number] = max(file_hits.get(number, 0), _int(line.get("hits")))
            if (line.get("branch") or "").lower() == "true":
                match = _CONDITIONS.search(line.get("condition-coverage") or "")
                if match:
                    covered, total = int(match.group(1)), int(match.group(2))
                    seen = file_branches.get(number, (0, 0))
                    file_branches[number] = (max(seen[0], covered), max(seen[1], total))
    files = []
    for filename, file_hits in hits.items():
        covered = sum(1 for count in file_hits.values() if count > 0)
        branch_covered = sum(c for c, _ in branches[filename].values())
        branch_total = sum(t for _, t in branches[filename].values())
        files.append(
            FileCoverage(
                file_path=filename,
                lines_covered=covered,
                lines_missed=len(file_hits) - covered,
                branches_covered=min(branch_covered, branch_total),
                branches_missed=max(branch_total - branch_covered, 0),
            )
        )
    return files


# ---------------------------------------------------------------- JaCoCo


def parse_jacoco(data: bytes) -> list[FileCoverage]:
    """`report/[group/]package[@name]/sourcefile[@name]` with LINE and BRANCH counters
    (or `line` elements with mi/ci/mb/cb when a counter is missing)."""
    root = parse_xml(data)
    if root.tag != "report":
        raise ReportParseError(f"expected a JaCoCo <report> root element, found <{root.tag}>")
    files = []
    for package in root.iter("package"):
        package_name = (package.get("name") or "").strip("/")
        for source in package.findall("sourcefile"):
            name = source.get("name") or ""
            path = f"{package_name}/{name}" if package_name else name
            counters = {c.get("type"): c for c in source.findall("counter")}
            lines_covered, lines_missed = _counter(counters.get("LINE"))
            branches_covered, branches_missed = _counter(counters.get("BRANCH"))
            if "LINE" not in counters or "BRANCH" not in counters:
                from_lines = _jacoco_lines(source)
                if "LINE" not in counters:
                    lines_covered, lines_missed = from_lines[0], from_lines[1]
                if "BRANCH" not in counters:
                    branches_covered, branches_missed = from_lines[2], from_lines[3]
            files.append(
                FileCoverage(path, lines_covered, lines_missed, branches_covered, branches_missed)
            )
    return files


def _counter(counter: ET.Element | None) -> tuple[int, int]:
    if counter is None:
        return 0, 0
    return _int(counter.get("covered")), _int(counter.get("missed"))


def _jacoco_lines(source: ET.Element) -> tuple[int, int, int, int]:
    covered = missed = branches_covered = branches_missed = 0
    for line in source.findall("line"):
        if _int(line.get("ci")) > 0:
            covered += 1
        elif _int(line.get("mi")) > 0:
            missed += 1
        branches_covered += _int(line.get("cb"))
        branches_missed += _int(line.get("mb"))
    return covered, missed, branches_covered, branches_missed


# ---------------------------------------------------------------- Clover


def parse_clover(data: bytes) -> list[FileCoverage]:
    """`coverage/project/[package/]file` with a `metrics` element (statements,
    coveredstatements, conditionals, coveredconditionals) or `line` elements."""
    root = parse_xml(data)
    if root.tag != "coverage":
        raise ReportParseError(f"expected a Clover <coverage> root element, found <{root.tag}>")
    files = []
    for project in [*root.findall("project"), *root.findall("testproject")]:
        for file in project.iter("file"):
            path = file.get("path") or file.get("name")
            if not path:
                continue
            metrics = file.find("metrics")
            if metrics is not None and metrics.get("statements") is not None:
                statements = _int(metrics.get("statements"))
                covered = min(_int(metrics.get("coveredstatements")), statements)
                conditionals = _int(metrics.get("conditionals"))
                covered_conditionals = min(_int(metrics.get("coveredconditionals")), conditionals)
                files.append(
                    FileCoverage(
                        path,
                        covered,
                        statements - covered,
                        covered_conditionals,
                        conditionals - covered_conditionals,
                    )
                )
            else:
                files.append(_clover_lines(path, file))
    return files


def _clover_lines(path: str, file: ET.Element) -> FileCoverage:
    covered = missed = branches_covered = branches_missed = 0
    for line in file.findall("line"):
        kind = line.get("type")
        if kind == "stmt":
            if _int(line.get("count")) > 0:
                covered += 1
            else:
                missed += 1
        elif kind == "cond":
            # Each condition has a true and a false branch.
            true_count, false_count = _int(line.get("truecount")), _int(line.get("falsecount"))
            taken = (true_count > 0) + (false_count > 0)
            branches_covered += taken
            branches_missed += 2 - taken
            if true_count + false_count > 0:
                covered += 1
            else:
                missed += 1
    return FileCoverage(path, covered, missed, branches_covered, branches_missed)
