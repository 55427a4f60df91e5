"""Report file parsers on realistic samples, broken files and hostile input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from forgeline.codebuild.reports import files, trend
from forgeline.codebuild.reports.model import (
    MAX_REPORT_FILE_BYTES,
    FileCoverage,
    ReportParseError,
    percentage,
    seconds_to_ns,
)
from forgeline.codebuild.reports.parsers import (
    COVERAGE_PARSERS,
    TEST_PARSERS,
    parse_coverage_file,
    parse_test_file,
    report_type,
)
from forgeline.codebuild.reports.safexml import parse_xml
from forgeline.codebuild.reports.trx import duration_ns
from forgeline.codebuild.tables.reports import Report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reports"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def summary(results: list) -> list[tuple]:
    return [(r.prefix, r.name, r.status, r.duration_ns) for r in results]


# ---------------------------------------------------------------- test formats


def test_junit_surefire_statuses_messages_and_durations():
    results = parse_test_file("JUNITXML", fixture("junit-surefire.xml"))
    cls = "com.example.CalculatorTest"
    assert summary(results) == [
        (cls, "addsTwoNumbers", "SUCCEEDED", 12_000_000),
        (cls, "subtracts", "SUCCEEDED", 3_000_000),
        (cls, "dividesByZero", "FAILED", 41_000_000),
        (cls, "parsesInput", "ERROR", 28_000_000),
        (cls, "squareRoot", "SKIPPED", 0),
    ]
    assert {r.suite_name for r in results} == {cls}
    failed = results[2]
    assert failed.message is not None
    assert failed.message.startswith("expected: <Infinity> but was: <NaN>")
    assert "CalculatorTest.java:31" in failed.message
    assert results[4].message == "not implemented yet"
    assert results[0].message is None


def test_junit_pytest_nested_suites_and_thousands_separators():
    results = parse_test_file("JUNITXML", fixture("junit-pytest.xml"))
    assert summary(results) == [
        ("tests.test_api", "test_create", "SUCCEEDED", 501_000_000),
        ("tests.test_api", "test_delete[missing]", "FAILED", 1_203_010_000_000),
        ("tests.test_util", "test_slug", "SUCCEEDED", 1_000_000),
    ]
    assert results[1].suite_name == "pytest"
    assert "assert 404 == 200" in (results[1].message or "")


def test_nunit2_matches_the_prefixes_aws_shows():
    results = parse_test_file("NUNITXML", fixture("nunit2.xml"))
    fixture_name = "NUnit.Tests.Assemblies.MockTestFixture"
    assert summary(results) == [
        (fixture_name, f"{fixture_name}.MockTest1", "SUCCEEDED", 10_000_000),
        (fixture_name, f"{fixture_name}.FailingTest", "FAILED", 13_000_000),
        (fixture_name, f"{fixture_name}.NotRunnableTest", "ERROR", 0),
        (fixture_name, f"{fixture_name}.MockTest4", "SKIPPED", 0),
    ]
    assert results[2].message == "No arguments were provided"
    assert "line 121" in (results[1].message or "")


def test_nunit3_labels_turn_failures_into_errors():
    results = parse_test_file("NUNIT3XML", fixture("nunit3.xml"))
    cls = "Shop.Tests.CartTests"
    assert summary(results) == [
        (cls, f"{cls}.AddsItem", "SUCCEEDED", 21_000_000),
        (cls, f"{cls}.AppliesDiscount(10)", "FAILED", 104_000_000),
        (cls, f"{cls}.Checkout", "ERROR", 7_000_000),
        (cls, f"{cls}.Refund", "SKIPPED", 0),
    ]
    assert results[3].message == "refunds are not built yet"


def test_testng_skips_configuration_methods():
    results = parse_test_file("TESTNGXML", fixture("testng-results.xml"))
    orders = "com.example.orders.OrderServiceTest"
    assert summary(results) == [
        (orders, "placesOrder", "SUCCEEDED", 1_200_000_000),
        (orders, "cancelsOrder", "FAILED", 35_000_000),
        (orders, "refundsOrder", "SKIPPED", 0),
        ("com.example.orders.PriceTest", "rounds", "SUCCEEDED", 3_000_000),
    ]
    assert {r.suite_name for r in results} == {"Regression"}
    assert "expected [CANCELLED] but found [OPEN]" in (results[1].message or "")


def test_cucumber_scenarios_take_their_background_and_worst_step():
    results = parse_test_file("CUCUMBERJSON", fixture("cucumber.json"))
    assert summary(results) == [
        ("Login", "Valid password", "SUCCEEDED", 24_500_000),
        ("Login", "Wrong password", "FAILED", 13_000_000),
        ("Signup", "Email confirmation", "SKIPPED", 200),
    ]
    assert "Invalid password" in (results[1].message or "")


def test_trx_joins_class_names_from_test_definitions():
    results = parse_test_file("VISUALSTUDIOTRX", fixture("results.trx"))
    assert summary(results) == [
        ("Billing.Tests.AmountTests", "ParsesAmount", "SUCCEEDED", 12_345_600),
        ("Billing.Tests.AmountTests", "RejectsNegative", "FAILED", 1_500_000_000),
        ("Billing.Tests.FormatTests", "FormatsCurrency", "SKIPPED", 0),
    ]
    assert "No exception was thrown" in (results[1].message or "")
    assert "AmountTests.cs:line 18" in (results[1].message or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:01.5", 1_500_000_000),
        ("1.02:03:04.0000001", ((26 * 60 + 3) * 60 + 4) * 10**9 + 100),
        ("00:00:00", 0),
        ("garbage", 0),
        (None, 0),
    ],
)
def test_trx_durations(text, expected):
    assert duration_ns(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.5", 500_000_000), ("1,000.25", 1_000_250_000_000), ("-3", 0), ("nan", 0), ("x", 0)],
)
def test_seconds_to_ns(text, expected):
    assert seconds_to_ns(text) == expected


# ---------------------------------------------------------------- coverage formats


def coverage(fmt: str, name: str) -> dict[str, tuple[int, int, int, int]]:
    return {
        c.file_path: (c.lines_covered, c.lines_missed, c.branches_covered, c.branches_missed)
        for c in parse_coverage_file(fmt, fixture(name))
    }


def test_cobertura_with_its_doctype():
    assert coverage("COBERTURAXML", "cobertura.xml") == {
        "shop/cart.py": (5, 1, 1, 1),
        "shop/util.py": (3, 2, 2, 0),
    }


def test_cobertura_merges_classes_of_one_file():
    data = b"""<coverage><packages><package name="p"><classes>
      <class name="A" filename="src/a.ts"><lines><line number="1" hits="0"/><line number="2" hits="1"/></lines></class>
      <class name="B" filename="src/a.ts"><lines><line number="1" hits="4"/><line number="3" hits="0"/></lines></class>
    </classes></package></packages></coverage>"""
    (only,) = parse_coverage_file("COBERTURAXML", data)
    assert (only.file_path, only.lines_covered, only.lines_missed) == ("src/a.ts", 2, 1)


def test_jacoco_counters_and_line_fallback():
    assert coverage("JACOCOXML", "jacoco.xml") == {
        "com/example/orders/OrderService.java": (10, 2, 3, 1),
        "com/example/orders/Price.java": (2, 1, 2, 2),
    }


def test_clover_metrics_and_line_fallback():
    assert coverage("CLOVERXML", "clover.xml") == {
        "/codebuild/output/src1/src/src/lib/math.js": (8, 2, 3, 1),
        "src/index.js": (2, 1, 1, 1),
    }


def test_simplecov_resultset_merges_commands():
    assert coverage("SIMPLECOV", "resultset.json") == {
        "/codebuild/output/src1/src/lib/shop/cart.rb": (4, 1, 1, 1),
        "/codebuild/output/src1/src/lib/shop/price.rb": (3, 0, 0, 0),
    }


def test_simplecov_json_formatter_and_simplecov_json_gem():
    assert coverage("SIMPLECOV", "simplecov-coverage.json") == {"/app/lib/greeter.rb": (3, 1, 1, 1)}
    assert coverage("SIMPLECOV", "simplecov-json-gem.json") == {"/app/lib/a.rb": (3, 1, 0, 0)}


def test_simplecov_legacy_line_arrays():
    data = json.dumps({"RSpec": {"coverage": {"/a.rb": [1, 0, None, 2]}, "timestamp": 1}})
    assert parse_coverage_file("SIMPLECOV", data.encode()) == [FileCoverage("/a.rb", 2, 1)]


@pytest.mark.parametrize(
    ("covered", "missed", "expected"),
    [(5, 1, 83.33), (10, 1, 90.9), (2, 1, 66.66), (1, 0, 100.0), (0, 0, 0.0), (0, 7, 0.0)],
)
def test_percentages_are_cut_to_two_decimals_as_aws_shows_them(covered, missed, expected):
    assert percentage(covered, missed) == expected


def test_report_types_follow_file_formats():
    assert {report_type(f) for f in TEST_PARSERS} == {"TEST"}
    assert {report_type(f) for f in COVERAGE_PARSERS} == {"CODE_COVERAGE"}
    with pytest.raises(ReportParseError):
        report_type("HTML")


# ---------------------------------------------------------------- malformed input

XML_FORMATS = ["JUNITXML", "NUNITXML", "NUNIT3XML", "TESTNGXML", "VISUALSTUDIOTRX"]
XML_COVERAGE = ["COBERTURAXML", "JACOCOXML", "CLOVERXML"]


def parse_any(fmt: str, data: bytes) -> list:
    if fmt in TEST_PARSERS:
        return parse_test_file(fmt, data)
    return parse_coverage_file(fmt, data)


@pytest.mark.parametrize("fmt", XML_FORMATS + XML_COVERAGE)
@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<testsuite><testcase name='a'>",
        b"not xml at all",
        bytes(range(256)),
        b"<?xml version='1.0'?><unexpected-root/>",
        "<testsuite name='\u00e9'>".encode("utf-16"),
    ],
    ids=["empty", "truncated", "text", "binary", "wrong-root", "utf16-truncated"],
)
def test_malformed_xml_is_a_clear_parse_error(fmt, data):
    with pytest.raises(ReportParseError) as error:
        parse_any(fmt, data)
    assert str(error.value)


@pytest.mark.parametrize("fmt", ["CUCUMBERJSON", "SIMPLECOV"])
@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"\xff\xfe\x00", b'"just a string"', b"42", b"[1, 2"],
    ids=["empty", "open", "not-utf8", "string", "number", "unclosed"],
)
def test_malformed_json_is_a_clear_parse_error(fmt, data):
    with pytest.raises(ReportParseError):
        parse_any(fmt, data)


def test_wrong_json_shapes_do_not_crash():
    assert parse_test_file("CUCUMBERJSON", b"[]") == []
    with pytest.raises(ReportParseError):
        parse_test_file("CUCUMBERJSON", b'[{"elements": 1}, 3]')
    weird = b'[{"name": "F", "elements": [{"name": "S", "steps": [{"result": {"status": 7, "duration": "x"}}]}]}]'
    (case,) = parse_test_file("CUCUMBERJSON", weird)
    assert (case.name, case.status, case.duration_ns) == ("S", "UNKNOWN", 0)
    assert parse_coverage_file("SIMPLECOV", b'{"coverage": {"a.rb": {"lines": "x"}}}') == [
        FileCoverage("a.rb", 0, 0)
    ]
    with pytest.raises(ReportParseError):
        parse_coverage_file("SIMPLECOV", b'{"RSpec": 1}')


def test_junit_attributes_with_junk_values_still_parse():
    data = b'<testsuite><testcase name="a" time="soon"/><testcase time="-1"><failure/></testcase></testsuite>'
    results = parse_test_file("JUNITXML", data)
    assert [(r.name, r.status, r.duration_ns) for r in results] == [
        ("a", "SUCCEEDED", 0),
        ("", "FAILED", 0),
    ]


# ---------------------------------------------------------------- hostile input


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<testsuite><testcase name="&lol9;"/></testsuite>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<testsuite><testcase name="&secret;"/></testsuite>"""

EXTERNAL_DTD_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:1/evil.dtd">
<testsuite><testcase name="t"><failure>&fromdtd;</failure></testcase></testsuite>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY % remote SYSTEM "http://127.0.0.1:1/x.dtd"> %remote;]>
<testsuite/>"""


@pytest.mark.parametrize(
    "data",
    [BILLION_LAUGHS, XXE, EXTERNAL_DTD_ENTITY, PARAMETER_ENTITY],
    ids=["billion-laughs", "xxe", "external-dtd-entity", "parameter-entity"],
)
@pytest.mark.parametrize("fmt", XML_FORMATS + XML_COVERAGE)
def test_entities_and_dtd_subsets_are_refused(fmt, data):
    started = time.monotonic()
    with pytest.raises(ReportParseError) as error:
        parse_any(fmt, data)
    assert time.monotonic() - started < 1
    assert "root" in str(error.value) or "not accepted" in str(error.value)
    assert "root:x:0:0" not in str(error.value)


def test_an_entity_from_an_unread_dtd_in_an_attribute_expands_to_nothing():
    # expat skips such references in attribute values silently; the DTD is never read.
    data = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:1/evil.dtd">
<testsuite><testcase name="a&fromdtd;b"/></testsuite>"""
    (case,) = parse_test_file("JUNITXML", data)
    assert case.name == "ab"


def test_a_bare_external_doctype_is_allowed_but_never_fetched():
    data = (
        b'<?xml version="1.0"?><!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" '
        b'"http://127.0.0.1:1/report.dtd"><report name="x"/>'
    )
    assert parse_coverage_file("JACOCOXML", data) == []


def test_deep_nesting_is_refused():
    data = b"<testsuites>" + b"<testsuite>" * 5000 + b"</testsuite>" * 5000 + b"</testsuites>"
    with pytest.raises(ReportParseError, match="deeper"):
        parse_test_file("JUNITXML", data)
    deep_json = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ReportParseError):
        parse_test_file("CUCUMBERJSON", deep_json)


def test_oversized_files_are_refused_before_parsing():
    big = b" " * (MAX_REPORT_FILE_BYTES + 1)
    with pytest.raises(ReportParseError, match="larger"):
        parse_xml(big)
    with pytest.raises(ReportParseError, match="larger"):
        parse_coverage_file("SIMPLECOV", big)


def test_namespaced_and_prefixed_elements_are_read_by_local_name():
    data = b'<ns:testsuite xmlns:ns="urn:x" name="s"><ns:testcase name="t" classname="C"/></ns:testsuite>'
    (case,) = parse_test_file("JUNITXML", data)
    assert (case.prefix, case.name, case.suite_name) == ("C", "t", "s")


# ---------------------------------------------------------------- file selection


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**/*", "a/b/c.xml", True),
        ("**/*", "c.xml", True),
        ("*.xml", "c.xml", True),
        ("*.xml", "a/c.xml", False),
        ("reports/**/*.xml", "reports/x.xml", True),
        ("reports/**/*.xml", "reports/a/b/x.xml", True),
        ("reports/**/*.xml", "other/x.xml", False),
        ("./TEST-*.xml", "TEST-a.xml", True),
        ("TEST-?.xml", "TEST-ab.xml", False),
        (".hidden/*.xml", ".hidden/a.xml", True),
        ("a+b.xml", "aab.xml", False),
    ],
)
def test_buildspec_globs(pattern, path, matches):
    assert bool(files.pattern_regex(pattern).match(path)) is matches


# ---------------------------------------------------------------- trends


def report(arn: str, **fields) -> Report:
    return Report(arn=arn, **fields)


def test_trend_stats_and_raw_data():
    reports = [
        report("r3", test_total=4, test_status_counts={"SUCCEEDED": 3}, test_duration_ns=10),
        report("r2", test_total=4, test_status_counts={"SUCCEEDED": 4}, test_duration_ns=30),
        report("r1", test_total=3, test_status_counts={"FAILED": 3}, test_duration_ns=20),
    ]
    assert trend.trend(reports, "PASS_RATE") == {
        "stats": {"average": "58.33", "max": "100", "min": "0"},
        "rawData": [
            {"reportArn": "r3", "data": "75"},
            {"reportArn": "r2", "data": "100"},
            {"reportArn": "r1", "data": "0"},
        ],
    }
    assert trend.trend(reports, "DURATION")["stats"] == {"average": "20", "max": "30", "min": "10"}
    assert trend.trend(reports, "TOTAL")["stats"]["average"] == "3.67"
    assert trend.trend([], "TOTAL") == {"stats": {}, "rawData": []}
    coverage_report = report(
        "c1",
        lines_covered=8,
        lines_missed=2,
        line_coverage_percentage=80.0,
        branch_coverage_percentage=33.33,
        branches_covered=1,
        branches_missed=2,
    )
    assert trend.trend([coverage_report], "BRANCH_COVERAGE")["rawData"] == [
        {"reportArn": "c1", "data": "33.33"}
    ]
    assert trend.field_applies("LINE_COVERAGE", "CODE_COVERAGE")
    assert not trend.field_applies("LINE_COVERAGE", "TEST")
    assert not trend.field_applies("PASS_RATE", "CODE_COVERAGE")
