"""CodeBuild report groups and reports over HTTP with boto3, against a real server.

Reports are produced the way a finished build produces them: `ingest_build_reports`
runs on the server's own database with real files in a source directory; every read
then goes through the API.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import subprocess
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

from forgeline.codebuild.buildspec import parse_buildspec
from forgeline.codebuild.reports.ingest import (
    collect_build_reports,
    delete_reports_for_build,
    ingest_build_reports,
    store_build_reports,
)
from forgeline.core.blobstore import get_blob_store
from forgeline.core.db import session_scope
from forgeline.core.settings import Settings
from tests.support import paths
from tests.support.errors import error_code

FIXTURES = paths.FIXTURES / "reports"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def cb(forgeline):
    return forgeline.client("codebuild", region=REGION)


@pytest.fixture(scope="module")
def raw_cb(forgeline):
    """A client that sends what it is given: the server, not botocore, must refuse it."""
    return forgeline.client("codebuild", region=REGION, parameter_validation=False)


@pytest.fixture(scope="module")
def account_id(cb):
    name = f"whoami-{uuid.uuid4().hex[:8]}"
    arn = cb.create_report_group(
        name=name, type="TEST", exportConfig={"exportConfigType": "NO_EXPORT"}
    )["reportGroup"]["arn"]
    cb.delete_report_group(arn=arn)
    return arn.split(":")[4]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def build_arn(account_id: str, project: str) -> str:
    return f"arn:aws:codebuild:{REGION}:{account_id}:build/{project}:{uuid.uuid4()}"


def ingest(forgeline, account_id, project, buildspec_reports, src, now=None, build=None):
    spec = parse_buildspec("version: 0.2\nreports:\n" + buildspec_reports)
    messages: list[str] = []
    build = build or build_arn(account_id, project)
    with session_scope(forgeline.database_url) as session:
        arns = ingest_build_reports(
            session,
            account_id,
            REGION,
            project,
            build,
            spec.reports,
            src,
            now or dt.datetime.now(dt.UTC),
            log=messages.append,
        )
    return arns, messages, build


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "src"
    (root / "reports" / "junit").mkdir(parents=True)
    (root / "coverage").mkdir()
    shutil.copy(FIXTURES / "junit-surefire.xml", root / "reports" / "junit" / "TEST-calc.xml")
    shutil.copy(FIXTURES / "junit-pytest.xml", root / "reports" / "junit" / "TEST-api.xml")
    shutil.copy(FIXTURES / "cobertura.xml", root / "coverage" / "coverage.xml")
    return root


# ---------------------------------------------------------------- report groups


def test_report_group_create_get_list_update_delete(cb):
    name = unique("rg")
    created = cb.create_report_group(
        name=name,
        type="CODE_COVERAGE",
        exportConfig={"exportConfigType": "NO_EXPORT"},
        tags=[{"key": "team", "value": "qa"}],
    )["reportGroup"]
    arn = created["arn"]
    assert arn.startswith(f"arn:aws:codebuild:{REGION}:") and arn.endswith(f":report-group/{name}")
    assert created["name"] == name
    assert created["type"] == "CODE_COVERAGE"
    assert created["status"] == "ACTIVE"
    assert created["exportConfig"] == {"exportConfigType": "NO_EXPORT"}
    assert created["tags"] == [{"key": "team", "value": "qa"}]
    assert isinstance(created["created"], dt.datetime)

    with pytest.raises(ClientError) as again:
        cb.create_report_group(
            name=name, type="TEST", exportConfig={"exportConfigType": "NO_EXPORT"}
        )
    assert error_code(again) == "ResourceAlreadyExistsException"

    missing_arn = arn.replace(name, unique("nope"))
    got = cb.batch_get_report_groups(reportGroupArns=[arn, missing_arn])
    assert [g["name"] for g in got["reportGroups"]] == [name]
    assert got["reportGroupsNotFound"] == [missing_arn]

    updated = cb.update_report_group(
        arn=arn,
        exportConfig={
            "exportConfigType": "S3",
            "s3Destination": {"bucket": "raw-results", "path": "reports", "packaging": "ZIP"},
        },
        tags=[{"key": "owner", "value": "builds"}],
    )["reportGroup"]
    assert updated["exportConfig"]["exportConfigType"] == "S3"
    assert updated["exportConfig"]["s3Destination"]["bucket"] == "raw-results"
    assert updated["tags"] == [{"key": "owner", "value": "builds"}]
    assert updated["lastModified"] >= created["lastModified"]

    with pytest.raises(ClientError) as no_bucket:
        cb.update_report_group(arn=arn, exportConfig={"exportConfigType": "S3"})
    assert error_code(no_bucket) == "InvalidInputException"
    assert "bucket" in no_bucket.value.response["Error"]["Message"]

    cb.delete_report_group(arn=arn)
    assert cb.batch_get_report_groups(reportGroupArns=[arn])["reportGroupsNotFound"] == [arn]
    with pytest.raises(ClientError) as gone:
        cb.update_report_group(arn=arn, tags=[])
    assert error_code(gone) == "ResourceNotFoundException"
    cb.delete_report_group(arn=arn)  # deleting what is gone is not an error


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "bad/name", "type": "TEST", "exportConfig": {"exportConfigType": "NO_EXPORT"}},
        {"name": "has space", "type": "TEST", "exportConfig": {"exportConfigType": "NO_EXPORT"}},
        {"name": "x", "type": "TEST", "exportConfig": {"exportConfigType": "NO_EXPORT"}},
        {"name": "ok-name", "type": "TESTS", "exportConfig": {"exportConfigType": "NO_EXPORT"}},
        {"name": "ok-name", "type": "TEST", "exportConfig": {}},
        {"name": "ok-name", "type": "TEST", "exportConfig": {"exportConfigType": "S3"}},
        {
            "name": "ok-name",
            "type": "TEST",
            "exportConfig": {"exportConfigType": "NO_EXPORT"},
            "tags": [{"key": "aws:reserved", "value": "x"}],
        },
    ],
    ids=["slash", "space", "short", "type", "no-export-type", "s3-no-bucket", "aws-tag"],
)
def test_bad_report_group_input_is_invalid_input(raw_cb, kwargs):
    with pytest.raises(ClientError) as excinfo:
        raw_cb.create_report_group(**kwargs)
    assert error_code(excinfo) == "InvalidInputException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_bad_arns_are_invalid_input(raw_cb):
    cb = raw_cb
    for call in (
        lambda: cb.delete_report_group(arn="not-an-arn"),
        lambda: cb.update_report_group(arn="arn:aws:codebuild:us-east-1:1:project/x"),
        lambda: cb.delete_report(arn="arn:aws:codebuild:us-east-1:1:report-group/x"),
        lambda: cb.describe_test_cases(reportArn="nope"),
        lambda: cb.describe_code_coverages(reportArn="nope"),
        lambda: cb.list_reports_for_report_group(reportGroupArn=""),
        lambda: cb.get_report_group_trend(reportGroupArn="x", trendField="TOTAL"),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo) == "InvalidInputException"


def test_list_report_groups_sorts_and_pages(cb):
    tag = uuid.uuid4().hex[:6]
    names = [f"list-{tag}-{letter}" for letter in ("b", "c", "a")]
    arns = {}
    for name in names:
        created = cb.create_report_group(
            name=name, type="TEST", exportConfig={"exportConfigType": "NO_EXPORT"}
        )["reportGroup"]
        assert "tags" not in created  # as AWS answers a create without tags
        arns[name] = created["arn"]
    try:
        (untagged,) = cb.batch_get_report_groups(reportGroupArns=[arns[names[1]]])["reportGroups"]
        assert untagged["tags"] == []
        cb.update_report_group(arn=arns[names[0]], tags=[{"key": "touched", "value": "1"}])

        def listed(**kwargs):
            seen, token = [], None
            while True:
                page = cb.list_report_groups(
                    maxResults=2, **kwargs, **({"nextToken": token} if token else {})
                )
                assert len(page["reportGroups"]) <= 2
                seen.extend(page["reportGroups"])
                token = page.get("nextToken")
                if not token:
                    return [arn for arn in seen if arn in arns.values()]

        by_name = listed(sortBy="NAME", sortOrder="ASCENDING")
        assert by_name == [arns[f"list-{tag}-{x}"] for x in "abc"]
        assert listed(sortBy="NAME", sortOrder="DESCENDING") == by_name[::-1]
        assert listed(sortBy="CREATED_TIME") == [arns[n] for n in names]
        assert listed(sortBy="LAST_MODIFIED_TIME")[-1] == arns[names[0]]
        assert cb.list_shared_report_groups()["reportGroups"] == []
        with pytest.raises(ClientError) as forged:
            cb.list_report_groups(nextToken="forged-token")
        assert error_code(forged) == "InvalidInputException"
    finally:
        for arn in arns.values():
            cb.delete_report_group(arn=arn)


# ---------------------------------------------------------------- ingestion and reports


def test_ingested_reports_read_back_over_the_api(forgeline, cb, account_id, src):
    project = unique("proj")
    shared = cb.create_report_group(
        name=unique("shared"), type="TEST", exportConfig={"exportConfigType": "NO_EXPORT"}
    )["reportGroup"]
    ghost_arn = shared["arn"] + "-ghost"
    arns, messages, build = ingest(
        forgeline,
        account_id,
        project,
        f"""
  unit:
    files: ['**/TEST-*.xml']
    base-directory: reports/junit
  coverage:
    files: [coverage/coverage.xml]
    file-format: COBERTURAXML
  missing:
    files: ['nothing/**/*.xml']
  {shared["arn"]}:
    files: [reports/junit/TEST-api.xml]
  {ghost_arn}:
    files: ['**/*']
""",
        src,
    )
    build_id = build.rsplit(":", 1)[1]
    prefix = f"arn:aws:codebuild:{REGION}:{account_id}:report/"
    assert arns == [
        f"{prefix}{project}-unit:{build_id}",
        f"{prefix}{project}-coverage:{build_id}",
        f"{prefix}{project}-missing:{build_id}",
        f"{prefix}{shared['name']}:{build_id}",
    ]
    assert any(ghost_arn in m and "does not exist" in m for m in messages)
    assert any("no files matched" in m for m in messages)

    unit_arn, coverage_arn, missing_arn, shared_arn = arns
    unknown = f"{prefix}{project}-unit:{uuid.uuid4()}"
    got = cb.batch_get_reports(reportArns=[*arns, unknown])
    assert got["reportsNotFound"] == [unknown]
    reports = {r["arn"]: r for r in got["reports"]}

    unit = reports[unit_arn]
    assert unit["type"] == "TEST"
    assert unit["name"] == f"{project}-unit"
    assert unit["reportGroupArn"].endswith(f":report-group/{project}-unit")
    assert unit["executionId"] == build
    assert unit["status"] == "FAILED"
    assert unit["truncated"] is False
    assert unit["exportConfig"] == {"exportConfigType": "NO_EXPORT"}
    assert unit["expired"] - unit["created"] == dt.timedelta(days=30)
    assert unit["testSummary"] == {
        "total": 8,
        "statusCounts": {"SUCCEEDED": 4, "FAILED": 2, "ERROR": 1, "SKIPPED": 1, "UNKNOWN": 0},
        "durationInNanoSeconds": 84_000_000 + 1_203_512_000_000,
    }

    cov = reports[coverage_arn]
    assert cov["type"] == "CODE_COVERAGE"
    assert cov["status"] == "SUCCEEDED"
    assert cov["codeCoverageSummary"] == {
        "lineCoveragePercentage": 72.72,
        "linesCovered": 8,
        "linesMissed": 3,
        "branchCoveragePercentage": 75.0,
        "branchesCovered": 3,
        "branchesMissed": 1,
    }
    assert reports[missing_arn]["status"] == "INCOMPLETE"
    assert reports[shared_arn]["testSummary"]["total"] == 3
    assert reports[shared_arn]["reportGroupArn"] == shared["arn"]

    # Report groups named in the buildspec were created with the type of their format.
    made = cb.batch_get_report_groups(
        reportGroupArns=[reports[unit_arn]["reportGroupArn"], cov["reportGroupArn"]]
    )["reportGroups"]
    assert {(g["name"], g["type"]) for g in made} == {
        (f"{project}-unit", "TEST"),
        (f"{project}-coverage", "CODE_COVERAGE"),
    }

    # -- test cases
    cases = cb.describe_test_cases(reportArn=unit_arn)["testCases"]
    assert len(cases) == 8
    by_name = {c["name"]: c for c in cases}
    failed = by_name["dividesByZero"]
    assert failed["status"] == "FAILED"
    assert failed["prefix"] == "com.example.CalculatorTest"
    assert failed["testSuiteName"] == "com.example.CalculatorTest"
    assert failed["testRawDataPath"] == "reports/junit/TEST-calc.xml"
    assert failed["durationInNanoSeconds"] == 41_000_000
    assert failed["reportArn"] == unit_arn
    assert "expected: <Infinity>" in failed["message"]
    assert "message" not in by_name["addsTwoNumbers"]

    failures = cb.describe_test_cases(reportArn=unit_arn, filter={"status": "FAILED"})
    assert sorted(c["name"] for c in failures["testCases"]) == [
        "dividesByZero",
        "test_delete[missing]",
    ]
    keyword = cb.describe_test_cases(reportArn=unit_arn, filter={"keyword": "test_util"})
    assert [c["name"] for c in keyword["testCases"]] == ["test_slug"]  # matched by prefix
    assert (
        cb.describe_test_cases(reportArn=unit_arn, filter={"keyword": "DIVIDES"})["testCases"] == []
    )

    paged, token = [], None
    while True:
        page = cb.describe_test_cases(
            reportArn=unit_arn, maxResults=3, **({"nextToken": token} if token else {})
        )
        paged.extend(c["name"] for c in page["testCases"])
        token = page.get("nextToken")
        if not token:
            break
    assert paged == [c["name"] for c in cases]

    with pytest.raises(ClientError) as bad_status:
        cb.describe_test_cases(reportArn=unit_arn, filter={"status": "PASSED"})
    assert error_code(bad_status) == "InvalidInputException"
    with pytest.raises(ClientError) as not_found:
        cb.describe_test_cases(reportArn=unknown)
    assert error_code(not_found) == "ResourceNotFoundException"

    # -- code coverage
    coverages = cb.describe_code_coverages(reportArn=coverage_arn)["codeCoverages"]
    assert [(c["filePath"], c["lineCoveragePercentage"]) for c in coverages] == [
        ("shop/cart.py", 83.33),
        ("shop/util.py", 60.0),
    ]
    first = coverages[0]
    assert (first["linesCovered"], first["linesMissed"]) == (5, 1)
    assert (
        first["branchesCovered"],
        first["branchesMissed"],
        first["branchCoveragePercentage"],
    ) == (1, 1, 50.0)
    assert first["reportARN"] == coverage_arn and first["id"]
    ordered = cb.describe_code_coverages(
        reportArn=coverage_arn, sortBy="LINE_COVERAGE_PERCENTAGE", sortOrder="ASCENDING"
    )["codeCoverages"]
    assert [c["filePath"] for c in ordered] == ["shop/util.py", "shop/cart.py"]
    high = cb.describe_code_coverages(reportArn=coverage_arn, minLineCoveragePercentage=70)
    assert [c["filePath"] for c in high["codeCoverages"]] == ["shop/cart.py"]
    low = cb.describe_code_coverages(reportArn=coverage_arn, maxLineCoveragePercentage=60)
    assert [c["filePath"] for c in low["codeCoverages"]] == ["shop/util.py"]
    with pytest.raises(ClientError) as inverted:
        cb.describe_code_coverages(
            reportArn=coverage_arn, minLineCoveragePercentage=90, maxLineCoveragePercentage=10
        )
    assert error_code(inverted) == "InvalidInputException"
    assert cb.describe_code_coverages(reportArn=unit_arn)["codeCoverages"] == []

    # -- listing
    in_group = cb.list_reports_for_report_group(reportGroupArn=unit["reportGroupArn"])
    assert in_group["reports"] == [unit_arn]
    incomplete = cb.list_reports(filter={"status": "INCOMPLETE"})["reports"]
    assert missing_arn in incomplete and unit_arn not in incomplete
    with pytest.raises(ClientError) as no_group:
        cb.list_reports_for_report_group(reportGroupArn=ghost_arn)
    assert error_code(no_group) == "ResourceNotFoundException"

    # -- deleting
    with pytest.raises(ClientError) as has_reports:
        cb.delete_report_group(arn=shared["arn"])
    assert error_code(has_reports) == "InvalidInputException"
    cb.delete_report(arn=shared_arn)
    cb.delete_report_group(arn=shared["arn"])
    cb.delete_report_group(arn=unit["reportGroupArn"], deleteReports=True)
    assert cb.batch_get_reports(reportArns=[unit_arn, shared_arn])["reportsNotFound"] == [
        unit_arn,
        shared_arn,
    ]
    with session_scope(forgeline.database_url) as session:
        assert delete_reports_for_build(session, account_id, REGION, build) == 2
    assert cb.batch_get_reports(reportArns=[coverage_arn])["reportsNotFound"] == [coverage_arn]


def test_report_group_trends(forgeline, cb, account_id, tmp_path):
    project = unique("trend")
    src = tmp_path / "src"
    src.mkdir()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    outcomes = [("pass", "pass", "pass", "pass"), ("pass", "fail", "pass", "pass"), ("fail",) * 4]
    for hour, outcome in enumerate(outcomes):
        cases = "".join(
            f'<testcase name="t{i}" classname="C" time="{hour + 1}">'
            + ("<failure/>" if result == "fail" else "")
            + "</testcase>"
            for i, result in enumerate(outcome)
        )
        (src / "junit.xml").write_text(f"<testsuite>{cases}</testsuite>")
        (src / "cov.xml").write_text(
            '<coverage><packages><package><classes><class filename="a.py"><lines>'
            + "".join(f'<line number="{n}" hits="{int(n <= hour + 1)}"/>' for n in range(1, 5))
            + "</lines></class></classes></package></packages></coverage>"
        )
        ingest(
            forgeline,
            account_id,
            project,
            "  tests:\n    files: [junit.xml]\n  cov:\n    files: [cov.xml]\n    file-format: COBERTURAXML\n",
            src,
            now=start + dt.timedelta(hours=hour),
        )
    tests_arn = f"arn:aws:codebuild:{REGION}:{account_id}:report-group/{project}-tests"
    cov_arn = f"arn:aws:codebuild:{REGION}:{account_id}:report-group/{project}-cov"

    pass_rate = cb.get_report_group_trend(reportGroupArn=tests_arn, trendField="PASS_RATE")
    assert [r["data"] for r in pass_rate["rawData"]] == ["0", "75", "100"]  # newest first
    assert pass_rate["stats"] == {"average": "58.33", "max": "100", "min": "0"}
    duration = cb.get_report_group_trend(
        reportGroupArn=tests_arn, trendField="DURATION", numOfReports=2
    )
    assert [r["data"] for r in duration["rawData"]] == ["12000000000", "8000000000"]
    total = cb.get_report_group_trend(reportGroupArn=tests_arn, trendField="TOTAL")
    assert total["stats"] == {"average": "4", "max": "4", "min": "4"}

    lines = cb.get_report_group_trend(reportGroupArn=cov_arn, trendField="LINE_COVERAGE")
    assert [r["data"] for r in lines["rawData"]] == ["75", "50", "25"]
    missed = cb.get_report_group_trend(reportGroupArn=cov_arn, trendField="LINES_MISSED")
    assert missed["stats"] == {"average": "2", "max": "3", "min": "1"}

    with pytest.raises(ClientError) as wrong_field:
        cb.get_report_group_trend(reportGroupArn=cov_arn, trendField="PASS_RATE")
    assert error_code(wrong_field) == "InvalidInputException"
    with pytest.raises(ClientError) as no_group:
        cb.get_report_group_trend(reportGroupArn=cov_arn + "-x", trendField="LINES_MISSED")
    assert error_code(no_group) == "ResourceNotFoundException"

    listed = cb.list_reports_for_report_group(reportGroupArn=tests_arn)["reports"]
    assert listed == [r["reportArn"] for r in pass_rate["rawData"]]
    chronological = cb.list_reports_for_report_group(
        reportGroupArn=tests_arn, sortOrder="ASCENDING", maxResults=2
    )
    assert chronological["reports"] == listed[::-1][:2] and chronological["nextToken"]
    for arn in (tests_arn, cov_arn):
        cb.delete_report_group(arn=arn, deleteReports=True)


def test_large_reports_keep_failures_when_truncated(forgeline, cb, account_id, tmp_path):
    project = unique("big")
    src = tmp_path / "src"
    src.mkdir()
    cases = [f'<testcase name="ok{i:04d}" classname="Big" time="0.001"/>' for i in range(590)]
    cases += [
        f'<testcase name="bad{i}" classname="Big"><failure message="no"/></testcase>'
        for i in range(10)
    ]
    (src / "big.xml").write_text("<testsuite>" + "".join(cases) + "</testsuite>")
    (arn,), _, _ = ingest(forgeline, account_id, project, "  all:\n    files: [big.xml]\n", src)
    (report,) = cb.batch_get_reports(reportArns=[arn])["reports"]
    assert report["truncated"] is True
    assert report["testSummary"]["total"] == 600
    assert report["testSummary"]["statusCounts"]["FAILED"] == 10
    stored = []
    token = None
    while True:
        page = cb.describe_test_cases(reportArn=arn, **({"nextToken": token} if token else {}))
        stored.extend(page["testCases"])
        token = page.get("nextToken")
        if not token:
            break
    assert len(stored) == 500
    assert sum(c["status"] == "FAILED" for c in stored) == 10
    cb.delete_report_group(arn=report["reportGroupArn"], deleteReports=True)


def test_broken_files_mismatched_types_reingestion_and_expiry(forgeline, cb, account_id, tmp_path):
    project = unique("odd")
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.xml").write_text('<testsuite><testcase name="fine"/></testsuite>')
    (src / "evil.xml").write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><testsuite>&e;</testsuite>'
    )
    cb.create_report_group(
        name=f"{project}-cov", type="TEST", exportConfig={"exportConfigType": "NO_EXPORT"}
    )
    build = build_arn(account_id, project)
    arns, messages, _ = ingest(
        forgeline,
        account_id,
        project,
        "  tests:\n    files: ['*.xml']\n  cov:\n    files: [good.xml]\n    file-format: JACOCOXML\n",
        src,
        build=build,
    )
    assert len(arns) == 1  # the type mismatch is skipped, with a message
    assert any(f"{project}-cov is of type TEST" in m for m in messages)
    assert any("evil.xml" in m and "not accepted" in m for m in messages)
    (report,) = cb.batch_get_reports(reportArns=arns)["reports"]
    assert report["status"] == "INCOMPLETE"
    assert report["testSummary"]["total"] == 1  # what parsed is kept

    # Parsing first and storing later (a short write transaction) gives the same result;
    # one group named twice in a buildspec gets one report.
    pending = collect_build_reports(
        parse_buildspec(
            "version: 0.2\nreports:\n  tests:\n    files: [good.xml]\n"
            f"  arn:aws:codebuild:{REGION}:{account_id}:report-group/{project}-tests:\n"
            "    files: [good.xml]\n"
        ).reports,
        src,
    )
    twice: list[str] = []
    with session_scope(forgeline.database_url) as session:
        stored = store_build_reports(
            session,
            account_id,
            REGION,
            project,
            build_arn(account_id, project),
            pending,
            dt.datetime.now(dt.UTC),
            log=twice.append,
        )
    assert len(stored) == 1
    assert any("appears twice" in m for m in twice)
    (stored_report,) = cb.batch_get_reports(reportArns=stored)["reports"]
    assert stored_report["status"] == "SUCCEEDED"
    cb.delete_report(arn=stored[0])

    # The same build ingested again replaces its report instead of failing.
    (evil := src / "evil.xml").unlink()
    again, _, _ = ingest(
        forgeline, account_id, project, "  tests:\n    files: ['*.xml']\n", src, build=build
    )
    assert again == arns
    (report,) = cb.batch_get_reports(reportArns=arns)["reports"]
    assert report["status"] == "SUCCEEDED"
    assert not evil.exists()

    # Reports older than 30 days have expired and are no longer shown.
    old, _, _ = ingest(
        forgeline,
        account_id,
        project,
        "  tests:\n    files: ['*.xml']\n",
        src,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=31),
    )
    assert cb.batch_get_reports(reportArns=old)["reportsNotFound"] == old
    group_arn = report["reportGroupArn"]
    assert cb.list_reports_for_report_group(reportGroupArn=group_arn)["reports"] == arns
    for name in ("tests", "cov"):
        cb.delete_report_group(
            arn=group_arn.replace(f"{project}-tests", f"{project}-{name}"), deleteReports=True
        )


def test_other_accounts_see_nothing(forgeline, cb, account_id, src):
    created = json.loads(forgeline.cli("accounts", "create", "--name", unique("t")).stdout)
    other = forgeline.client(
        "codebuild", credentials=(created["accessKeyId"], created["secretAccessKey"])
    )
    project = unique("iso")
    arns, _, _ = ingest(
        forgeline, account_id, project, "  unit:\n    files: ['reports/**/*.xml']\n", src
    )
    group_arn = f"arn:aws:codebuild:{REGION}:{account_id}:report-group/{project}-unit"
    assert other.batch_get_reports(reportArns=arns)["reportsNotFound"] == arns
    assert other.batch_get_report_groups(reportGroupArns=[group_arn])["reportGroupsNotFound"] == [
        group_arn
    ]
    assert group_arn not in other.list_report_groups()["reportGroups"]
    assert arns[0] not in other.list_reports()["reports"]
    with pytest.raises(ClientError) as excinfo:
        other.describe_test_cases(reportArn=arns[0])
    assert error_code(excinfo) == "ResourceNotFoundException"
    other.delete_report_group(arn=group_arn, deleteReports=True)  # a no-op for them
    assert cb.batch_get_reports(reportArns=arns)["reports"][0]["arn"] == arns[0]
    cb.delete_report_group(arn=group_arn, deleteReports=True)


def test_groups_exporting_to_s3_get_the_raw_files(forgeline, cb, account_id, src):
    store = get_blob_store(
        Settings(data_dir=forgeline.data_dir, database_url=forgeline.database_url)
    )
    plain = cb.create_report_group(
        name=unique("exp"),
        type="TEST",
        exportConfig={
            "exportConfigType": "S3",
            "s3Destination": {"bucket": "results", "path": "raw/", "packaging": "NONE"},
        },
    )["reportGroup"]
    zipped = cb.create_report_group(
        name=unique("zip"),
        type="CODE_COVERAGE",
        exportConfig={
            "exportConfigType": "S3",
            "s3Destination": {"bucket": "results", "packaging": "ZIP"},
        },
    )["reportGroup"]
    spec = parse_buildspec(
        "version: 0.2\nreports:\n"
        f"  {plain['arn']}:\n    files: ['reports/junit/*.xml']\n"
        f"  {zipped['arn']}:\n    files: [coverage/coverage.xml]\n    file-format: COBERTURAXML\n"
    )
    build = build_arn(account_id, unique("exp"))
    report_id = build.rsplit(":", 1)[1]
    with session_scope(forgeline.database_url) as session:
        arns = ingest_build_reports(
            session,
            account_id,
            REGION,
            "exp",
            build,
            spec.reports,
            src,
            dt.datetime.now(dt.UTC),
            blob_store=store,
        )
    assert len(arns) == 2
    exported = f"buckets/results/raw/{plain['name']}/{report_id}/reports/junit/"
    assert sorted(info.key for info in store.list(exported)) == [
        exported + "TEST-api.xml",
        exported + "TEST-calc.xml",
    ]
    assert (
        store.read_bytes(exported + "TEST-calc.xml")
        == (FIXTURES / "junit-surefire.xml").read_bytes()
    )
    archive = store.read_bytes(f"buckets/results/{zipped['name']}/{report_id}.zip")
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        assert opened.namelist() == ["coverage/coverage.xml"]
    (report,) = cb.batch_get_reports(reportArns=arns[:1])["reports"]
    assert report["exportConfig"]["s3Destination"]["bucket"] == "results"
    for group in (plain, zipped):
        cb.delete_report_group(arn=group["arn"], deleteReports=True)


def test_the_aws_cli_pages_through_test_cases_and_coverage(forgeline, account_id, tmp_path):
    env = dict(
        os.environ,
        AWS_SHARED_CREDENTIALS_FILE=str(forgeline.credentials_file),
        AWS_CONFIG_FILE="/dev/null",
        AWS_DEFAULT_REGION=REGION,
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(name, None)

    def aws(*args: str) -> dict:
        done = subprocess.run(
            ["aws", "--profile", "forgeline", "--endpoint-url", forgeline.url]
            + ["--output", "json", "codebuild", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    project = unique("cli")
    src = tmp_path / "src"
    src.mkdir()
    cases = "".join(f'<testcase name="t{i:03d}" classname="Cli"/>' for i in range(230))
    (src / "junit.xml").write_text(f"<testsuite>{cases}</testsuite>")
    (src / "clover.xml").write_bytes((FIXTURES / "clover.xml").read_bytes())
    (tests_arn, cov_arn), _, _ = ingest(
        forgeline,
        account_id,
        project,
        "  unit:\n    files: [junit.xml]\n  cov:\n    files: [clover.xml]\n"
        "    file-format: CLOVERXML\n",
        src,
    )
    listed = aws("describe-test-cases", "--report-arn", tests_arn, "--page-size", "40")
    assert [c["name"] for c in listed["testCases"]] == [f"t{i:03d}" for i in range(230)]
    coverages = aws(
        "describe-code-coverages",
        "--report-arn",
        cov_arn,
        "--sort-by",
        "LINE_COVERAGE_PERCENTAGE",
        "--sort-order",
        "DESCENDING",
        "--page-size",
        "1",
    )["codeCoverages"]
    assert [(c["filePath"], c["lineCoveragePercentage"]) for c in coverages] == [
        ("/codebuild/output/src1/src/src/lib/math.js", 80.0),
        ("src/index.js", 66.66),
    ]
    groups_listed = aws("list-report-groups", "--page-size", "1")["reportGroups"]
    tests_group = f"arn:aws:codebuild:{REGION}:{account_id}:report-group/{project}-unit"
    assert tests_group in groups_listed
    assert aws("list-reports-for-report-group", "--report-group-arn", tests_group)["reports"] == [
        tests_arn
    ]
    trend_ = aws(
        "get-report-group-trend", "--report-group-arn", tests_group, "--trend-field", "TOTAL"
    )
    assert trend_["stats"] == {"average": "230", "max": "230", "min": "230"}
    for suffix in ("unit", "cov"):
        aws(
            "delete-report-group",
            "--arn",
            tests_group.replace("-unit", f"-{suffix}"),
            "--delete-reports",
        )
    assert tests_group not in aws("list-report-groups")["reportGroups"]
