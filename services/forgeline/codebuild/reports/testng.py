"""TestNG's testng-results.xml: suite / test / class / test-method (status PASS|FAIL|SKIP).

Configuration methods (@BeforeClass and friends, is-config="true") are not test cases.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from forgeline.codebuild.reports.model import ReportParseError, TestCaseResult, clip
from forgeline.codebuild.reports.safexml import parse_xml, text_of

_STATUS = {"PASS": "SUCCEEDED", "FAIL": "FAILED", "SKIP": "SKIPPED"}


def parse_testng(data: bytes) -> list[TestCaseResult]:
    root = parse_xml(data)
    if root.tag != "testng-results":
        raise ReportParseError(
            f"expected a TestNG <testng-results> root element, found <{root.tag}>"
        )
    results = []
    for suite in root.iter("suite"):
        suite_name = suite.get("name")
        for cls in suite.iter("class"):
            for method in cls.iter("test-method"):
                if (method.get("is-config") or "").lower() == "true":
                    continue
                results.append(_case(method, cls.get("name"), suite_name))
    return results


def _case(method: ET.Element, class_name: str | None, suite: str | None) -> TestCaseResult:
    return TestCaseResult(
        name=method.get("name") or "",
        status=_STATUS.get((method.get("status") or "").upper(), "UNKNOWN"),
        prefix=class_name,
        suite_name=suite,
        duration_ns=_ms_to_ns(method.get("duration-ms")),
        message=_message(method.find("exception")),
    )


def _ms_to_ns(text: str | None) -> int:
    try:
        value = int((text or "0").strip())
    except ValueError:
        return 0
    return max(value, 0) * 1_000_000


def _message(exception: ET.Element | None) -> str | None:
    if exception is None:
        return None
    parts = [
        exception.get("class"),
        text_of(exception.find("message")),
        text_of(exception.find("full-stacktrace")),
    ]
    return clip("\n".join(part.strip() for part in parts if part and part.strip()))
