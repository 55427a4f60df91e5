"""Cucumber's JSON formatter output: features, each with scenario elements and steps.

A scenario is one test case. Its outcome is the worst of its steps and hooks (a
background's steps count towards the scenario that follows it); its duration the sum
of theirs, which Cucumber already gives in nanoseconds.
"""

from __future__ import annotations

import json
from typing import Any

from forgeline.codebuild.reports.model import (
    MAX_REPORT_FILE_BYTES,
    ReportParseError,
    TestCaseResult,
    clip,
)

# Step statuses, worst first.
_RANK = ("failed", "ambiguous", "undefined", "pending", "skipped", "passed")
_STATUS = {
    "failed": "FAILED",
    "ambiguous": "ERROR",
    "undefined": "UNKNOWN",
    "pending": "SKIPPED",
    "skipped": "SKIPPED",
    "passed": "SUCCEEDED",
}


def load_json(data: bytes) -> Any:
    if len(data) > MAX_REPORT_FILE_BYTES:
        raise ReportParseError(f"file is larger than {MAX_REPORT_FILE_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ReportParseError("file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ReportParseError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise ReportParseError("JSON nests too deeply") from None


def parse_cucumber(data: bytes) -> list[TestCaseResult]:
    document = load_json(data)
    if not isinstance(document, list):
        raise ReportParseError("expected a Cucumber JSON array of features")
    results = []
    for feature in document:
        if not isinstance(feature, dict):
            raise ReportParseError("expected each Cucumber feature to be an object")
        feature_name = _text(feature.get("name")) or _text(feature.get("uri"))
        pending_background: list[Any] = []
        for element in _list(feature.get("elements")):
            if not isinstance(element, dict):
                continue
            steps = [
                *_list(element.get("before")),
                *_list(element.get("steps")),
                *_list(element.get("after")),
            ]
            if element.get("type") == "background":
                pending_background = steps
                continue
            results.append(_scenario(element, [*pending_background, *steps], feature_name))
            pending_background = []
    return results


def _scenario(element: dict[str, Any], steps: list[Any], feature: str | None) -> TestCaseResult:
    worst, duration, messages = "passed", 0, []
    for step in steps:
        result = step.get("result") if isinstance(step, dict) else None
        if not isinstance(result, dict):
            continue
        status = str(result.get("status") or "undefined").lower()
        if status not in _RANK:
            status = "undefined"
        if _RANK.index(status) < _RANK.index(worst):
            worst = status
        value = result.get("duration")
        if isinstance(value, int | float) and value > 0:
            duration += int(value)
        error = _text(result.get("error_message"))
        if error:
            messages.append(error)
    return TestCaseResult(
        name=_text(element.get("name")) or _text(element.get("id")) or "",
        status=_STATUS[worst],
        prefix=feature,
        suite_name=feature,
        duration_ns=duration,
        message=clip("\n".join(messages)),
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
