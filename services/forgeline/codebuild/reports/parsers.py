"""One entry point per report kind: the buildspec's `file-format` picks the parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from forgeline.codebuild.reports.coverage_xml import parse_clover, parse_cobertura, parse_jacoco
from forgeline.codebuild.reports.cucumber import parse_cucumber
from forgeline.codebuild.reports.junit import parse_junit
from forgeline.codebuild.reports.model import FileCoverage, ReportParseError, TestCaseResult
from forgeline.codebuild.reports.nunit import parse_nunit2, parse_nunit3
from forgeline.codebuild.reports.simplecov import parse_simplecov
from forgeline.codebuild.reports.testng import parse_testng
from forgeline.codebuild.reports.trx import parse_trx

T = TypeVar("T")

TEST_PARSERS: dict[str, Callable[[bytes], list[TestCaseResult]]] = {
    "JUNITXML": parse_junit,
    "NUNITXML": parse_nunit2,
    "NUNIT3XML": parse_nunit3,
    "TESTNGXML": parse_testng,
    "CUCUMBERJSON": parse_cucumber,
    "VISUALSTUDIOTRX": parse_trx,
}

COVERAGE_PARSERS: dict[str, Callable[[bytes], list[FileCoverage]]] = {
    "COBERTURAXML": parse_cobertura,
    "JACOCOXML": parse_jacoco,
    "CLOVERXML": parse_clover,
    "SIMPLECOV": parse_simplecov,
}


def report_type(file_format: str) -> str:
    """The report group type a file format belongs to: TEST or CODE_COVERAGE."""
    if file_format in TEST_PARSERS:
        return "TEST"
    if file_format in COVERAGE_PARSERS:
        return "CODE_COVERAGE"
    raise ReportParseError(f"unknown report file format {file_format!r}")


def parse_test_file(file_format: str, data: bytes) -> list[TestCaseResult]:
    return _run(TEST_PARSERS[file_format], data)


def parse_coverage_file(file_format: str, data: bytes) -> list[FileCoverage]:
    return _run(COVERAGE_PARSERS[file_format], data)


def _run(parser: Callable[[bytes], list[T]], data: bytes) -> list[T]:
    # Any parser slip on hostile input is a parse failure of that file, never a crash
    # of the build that produced it.
    try:
        return parser(data)
    except ReportParseError:
        raise
    except (RecursionError, MemoryError):
        raise ReportParseError("the file is too large or too deeply nested") from None
    except Exception as exc:  # noqa: BLE001 - see above
        raise ReportParseError(f"the file could not be read: {type(exc).__name__}") from None
