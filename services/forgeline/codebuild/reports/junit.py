"""JUnit XML (Surefire, pytest, Gradle, jest-junit, ...): `testsuites` / `testsuite` /
`testcase`, where a `failure`, `error` or `skipped` child gives the outcome."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from forgeline.codebuild.reports.model import (
    ReportParseError,
    TestCaseResult,
    clip,
    seconds_to_ns,
)
from forgeline.codebuild.reports.safexml import parse_xml, text_of

# Outcome children in precedence order; rerun/flaky markers that end in a pass are
# ignored, as the final result of the test is what counts.
_OUTCOMES = (("error", "ERROR"), ("failure", "FAILED"), ("skipped", "SKIPPED"))


def parse_junit(data: bytes) -> list[TestCaseResult]:
    root = parse_xml(data)
    if root.tag not in ("testsuites", "testsuite", "testcase"):
        # Worded like CodeBuild's own message for a file of another format.
        raise ReportParseError(f"expected element type <testsuite> but have <{root.tag}>")
    results: list[TestCaseResult] = []
    _walk(root, None, results)
    return results


def _walk(element: ET.Element, suite: str | None, results: list[TestCaseResult]) -> None:
    if element.tag == "testcase":
        results.append(_case(element, suite))
        return
    if element.tag == "testsuite":
        suite = element.get("name") or suite
    for child in element:
        if child.tag in ("testsuite", "testcase"):
            _walk(child, suite, results)


def _case(element: ET.Element, suite: str | None) -> TestCaseResult:
    status, message = "SUCCEEDED", None
    for tag, outcome in _OUTCOMES:
        found = element.find(tag)
        if found is not None:
            status = outcome
            message = _message(found)
            break
    classname = element.get("classname") or element.get("class")
    return TestCaseResult(
        name=element.get("name") or "",
        status=status,
        prefix=classname or suite,
        suite_name=suite,
        duration_ns=seconds_to_ns(element.get("time")),
        message=message,
    )


def _message(outcome: ET.Element) -> str | None:
    parts = [outcome.get("message"), text_of(outcome)]
    return clip("\n".join(part.strip() for part in parts if part and part.strip()))
