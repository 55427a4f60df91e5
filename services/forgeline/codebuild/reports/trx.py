"""Visual Studio TRX (vstest, `dotnet test --logger trx`): TestRun / Results /
UnitTestResult, joined to TestDefinitions for each test's class name."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from forgeline.codebuild.reports.model import ReportParseError, TestCaseResult, clip
from forgeline.codebuild.reports.safexml import parse_xml, text_of

_STATUS = {
    "passed": "SUCCEEDED",
    "passedbutrunaborted": "SUCCEEDED",
    "completed": "SUCCEEDED",
    "failed": "FAILED",
    "error": "ERROR",
    "timeout": "ERROR",
    "aborted": "ERROR",
    "notrunnable": "ERROR",
    "disconnected": "ERROR",
    "notexecuted": "SKIPPED",
    "pending": "SKIPPED",
}

_DURATION = re.compile(r"^(?:(\d+)\.)?(\d+):(\d{1,2}):(\d{1,2})(?:\.(\d{1,9}))?$")


def parse_trx(data: bytes) -> list[TestCaseResult]:
    root = parse_xml(data)
    if root.tag != "TestRun":
        raise ReportParseError(f"expected a TRX <TestRun> root element, found <{root.tag}>")
    classes = {}
    for unit_test in root.iter("UnitTest"):
        method = unit_test.find("TestMethod")
        if method is not None and unit_test.get("id"):
            classes[unit_test.get("id")] = method.get("className")
    run_name = root.get("name")
    results = []
    for result in root.iter("UnitTestResult"):
        class_name = classes.get(result.get("testId"))
        results.append(
            TestCaseResult(
                name=result.get("testName") or "",
                status=_STATUS.get((result.get("outcome") or "").lower(), "UNKNOWN"),
                prefix=_short_class(class_name),
                suite_name=run_name,
                duration_ns=duration_ns(result.get("duration")),
                message=_message(result),
            )
        )
    return results


def _short_class(class_name: str | None) -> str | None:
    # "Ns.Class, Assembly, Version=..." -> "Ns.Class"
    return class_name.split(",", 1)[0].strip() if class_name else None


def duration_ns(text: str | None) -> int:
    """A TRX duration, "[d.]hh:mm:ss[.fffffff]", as nanoseconds; unreadable ones are 0."""
    match = _DURATION.match((text or "").strip())
    if not match:
        return 0
    days, hours, minutes, seconds, fraction = match.groups()
    whole = ((int(days or 0) * 24 + int(hours)) * 60 + int(minutes)) * 60 + int(seconds)
    return whole * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def _message(result: ET.Element) -> str | None:
    info = result.find("Output/ErrorInfo")
    if info is None:
        return None
    parts = [text_of(info.find("Message")), text_of(info.find("StackTrace"))]
    return clip("\n".join(part.strip() for part in parts if part and part.strip()))
