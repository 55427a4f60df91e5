"""NUnit results: NUnit 2 (`test-results` root, `result` attribute Success/Failure/...)
and NUnit 3 (`test-run` root, `result` Passed/Failed/... refined by `label`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from forgeline.codebuild.reports.model import (
    ReportParseError,
    TestCaseResult,
    clip,
    seconds_to_ns,
)
from forgeline.codebuild.reports.safexml import parse_xml, text_of

_NUNIT2_STATUS = {
    "success": "SUCCEEDED",
    "failure": "FAILED",
    "error": "ERROR",
    "notrunnable": "ERROR",
    "ignored": "SKIPPED",
    "skipped": "SKIPPED",
    "notrun": "SKIPPED",
    "inconclusive": "UNKNOWN",
    "cancelled": "UNKNOWN",
}

# NUnit 3 marks errors as result="Failed" with label="Error" (or Invalid/Cancelled).
_NUNIT3_ERROR_LABELS = ("error", "invalid", "cancelled")
_NUNIT3_STATUS = {
    "passed": "SUCCEEDED",
    "failed": "FAILED",
    "skipped": "SKIPPED",
    "inconclusive": "UNKNOWN",
    "warning": "UNKNOWN",
}


def _detail(case: ET.Element) -> str | None:
    """failure/message plus stack trace, or the reason a test did not run."""
    parts = []
    for path in ("failure/message", "failure/stack-trace", "reason/message"):
        text = text_of(case.find(path))
        if text and text.strip():
            parts.append(text.strip())
    return clip("\n".join(parts))


def _prefix_of(full_name: str, fallback: str | None) -> str | None:
    # "Ns.Fixture.Method" -> "Ns.Fixture"; parameterised names keep their arguments out.
    head = full_name.split("(", 1)[0]
    return head.rsplit(".", 1)[0] if "." in head else fallback


def parse_nunit2(data: bytes) -> list[TestCaseResult]:
    root = parse_xml(data)
    if root.tag != "test-results":
        raise ReportParseError(
            f"expected an NUnit 2 <test-results> root element, found <{root.tag}>"
        )
    results = []
    for suite, case in _cases(root, None):
        result = (case.get("result") or "").lower()
        if not result:
            executed = (case.get("executed") or "").lower() == "true"
            success = (case.get("success") or "").lower() == "true"
            result = ("success" if success else "failure") if executed else "notrun"
        name = case.get("name") or ""
        results.append(
            TestCaseResult(
                name=name,
                status=_NUNIT2_STATUS.get(result, "UNKNOWN"),
                prefix=_prefix_of(name, suite),
                suite_name=suite,
                duration_ns=seconds_to_ns(case.get("time")),
                message=_detail(case),
            )
        )
    return results


def parse_nunit3(data: bytes) -> list[TestCaseResult]:
    root = parse_xml(data)
    if root.tag != "test-run":
        raise ReportParseError(f"expected an NUnit 3 <test-run> root element, found <{root.tag}>")
    results = []
    for suite, case in _cases(root, None):
        result = (case.get("result") or "").lower()
        label = (case.get("label") or "").lower()
        status = _NUNIT3_STATUS.get(result, "UNKNOWN")
        if result == "failed" and label in _NUNIT3_ERROR_LABELS:
            status = "ERROR"
        full_name = case.get("fullname") or case.get("name") or ""
        results.append(
            TestCaseResult(
                name=full_name,
                status=status,
                prefix=case.get("classname") or _prefix_of(full_name, suite),
                suite_name=suite,
                duration_ns=seconds_to_ns(case.get("duration")),
                message=_detail(case),
            )
        )
    return results


def _cases(element: ET.Element, suite: str | None) -> list[tuple[str | None, ET.Element]]:
    """Every test-case under `element`, in document order, with its innermost suite's name.

    Recursion is bounded: safexml refuses documents nested deeper than MAX_DEPTH.
    """
    found: list[tuple[str | None, ET.Element]] = []
    for child in element:
        if child.tag == "test-case":
            found.append((suite, child))
        elif child.tag == "test-suite":
            found.extend(_cases(child, child.get("fullname") or child.get("name") or suite))
        elif child.tag == "results":
            found.extend(_cases(child, suite))
    return found
