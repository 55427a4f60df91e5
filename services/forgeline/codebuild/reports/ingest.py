"""Turn the `reports` section of a finished build's buildspec into stored reports.

For each entry: find or create its report group, collect the raw files, parse them and
store one report with its summary. A buildspec name `n` means the group
`<project>-<n>`, created on first use with the type the file format implies; an ARN
names an existing group of this account and region. A missing file set or an unreadable
file makes the report INCOMPLETE (AWS: "a problem with the configuration of the report
group ... the path to the test cases ... might be incorrect"); whatever did parse is
kept. Problems never fail the ingestion: they are passed to `log` for the build log.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.codebuild.buildspec import ReportGroup as BuildspecReportGroup
from forgeline.codebuild.generated import errors
from forgeline.codebuild.reports import files, groups, records
from forgeline.codebuild.reports.export import export_raw_files
from forgeline.codebuild.reports.model import (
    MAX_REPORT_FILE_BYTES,
    FileCoverage,
    ReportParseError,
    TestCaseResult,
    percentage,
)
from forgeline.codebuild.reports.parsers import parse_coverage_file, parse_test_file, report_type
from forgeline.codebuild.tables.reports import (
    Report,
    ReportCodeCoverage,
    ReportGroup,
    ReportTestCase,
)
from forgeline.core.blobstore.base import BlobStore

# AWS: "A test report can have a maximum of 500 test case results. If more than 500 test
# cases are run, CodeBuild prioritizes tests with the status FAILED and truncates".
MAX_TEST_CASES = 500
# Raw data read for one report; beyond it the remaining files are left out.
MAX_REPORT_BYTES = 256 * 1024 * 1024
_KEEP_FIRST = ("FAILED", "ERROR")

Log = Callable[[str], None]


@dataclass
class ParsedFiles:
    """What an entry's files held: test cases or per-file coverage, and any problems."""

    raw_files: list[tuple[str, Path]] = field(default_factory=list)
    cases: list[tuple[str, TestCaseResult]] = field(default_factory=list)
    coverage: dict[str, FileCoverage] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class PendingReport:
    """One buildspec report entry, its files already read and parsed."""

    key: str
    kind: str | None
    parsed: ParsedFiles


def collect_build_reports(
    reports: Mapping[str, BuildspecReportGroup], src_dir: Path
) -> list[PendingReport]:
    """Find and parse every entry's files. No database work: callers that hold a write
    transaction can do this first and keep the transaction short."""
    pending = []
    for key, spec in reports.items():
        try:
            kind = report_type(spec.file_format)
        except ReportParseError as exc:
            pending.append(PendingReport(key, None, ParsedFiles(problems=[str(exc)])))
            continue
        pending.append(PendingReport(key, kind, _parse_files(kind, spec, src_dir)))
    return pending


def store_build_reports(
    session: Session,
    account_id: str,
    region: str,
    project_name: str,
    build_arn: str,
    pending: Sequence[PendingReport],
    now: dt.datetime,
    *,
    log: Log | None = None,
    blob_store: BlobStore | None = None,
) -> list[str]:
    """Store collected reports (see ingest_build_reports); return their ARNs."""
    say: Log = log or (lambda _message: None)
    report_id = _report_id(build_arn)
    arns: list[str] = []
    used: set[str] = set()
    for entry in pending:
        if entry.kind is None:
            for problem in entry.parsed.problems:
                say(f"Report {entry.key}: {problem}")
            continue
        group = _group_for(
            session, account_id, region, project_name, entry.key, entry.kind, now, say
        )
        if group is None:
            continue
        if group.id in used:
            # One report per group and build: a second entry would replace the first.
            say(f"Report group {group.name} appears twice in the buildspec; {entry.key} skipped")
            continue
        used.add(group.id)
        parsed = entry.parsed
        report = _store(session, group, report_id, build_arn, entry.kind, parsed, now)
        problems = list(parsed.problems)
        if blob_store is not None:
            try:
                export_raw_files(
                    blob_store, group.export_config, group.name, report_id, parsed.raw_files
                )
            except Exception as exc:  # noqa: BLE001 - any store failure; the report stands
                problems.append(f"exporting the raw files failed: {exc}")
        for problem in problems:
            say(f"Report {group.name}: {problem}")
        arns.append(report.arn)
    return arns


def ingest_build_reports(
    session: Session,
    account_id: str,
    region: str,
    project_name: str,
    build_arn: str,
    reports: Mapping[str, BuildspecReportGroup],
    src_dir: Path,
    now: dt.datetime,
    *,
    log: Log | None = None,
    blob_store: BlobStore | None = None,
) -> list[str]:
    """Store one report per buildspec report entry; return their ARNs (the build's
    `reportArns`). Entries whose group cannot be used are logged and skipped.

    With `blob_store`, groups that export to S3 get the raw files written there.
    Parsing happens here too; to keep a write transaction short, call
    collect_build_reports before opening it and store_build_reports inside it.
    """
    return store_build_reports(
        session,
        account_id,
        region,
        project_name,
        build_arn,
        collect_build_reports(reports, src_dir),
        now,
        log=log,
        blob_store=blob_store,
    )


def delete_reports_for_build(session: Session, account_id: str, region: str, build_arn: str) -> int:
    """Delete every report a build produced (e.g. when the build is deleted)."""
    ids = session.scalars(
        select(Report.id).where(
            Report.account_id == account_id,
            Report.region == region,
            Report.execution_id == build_arn,
        )
    ).all()
    records.delete_reports(session, ids)
    return len(ids)


def _report_id(build_arn: str) -> str:
    """A report of a build carries the build's id, as on AWS (build/<project>:<uuid>)."""
    candidate = build_arn.rsplit(":", 1)[-1]
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        return str(uuid.uuid4())


def _group_for(
    session: Session,
    account_id: str,
    region: str,
    project_name: str,
    key: str,
    kind: str,
    now: dt.datetime,
    say: Log,
) -> ReportGroup | None:
    if key.startswith("arn:"):
        group = groups.find(session, account_id, region, key)
        if group is None:
            say(f"Report group {key} does not exist in this account and region; skipped")
            return None
    else:
        name = f"{project_name}-{key}"
        try:
            groups.check_name(name)
        except errors.InvalidInputException as exc:
            say(f"Report {key}: {exc}")
            return None
        group = groups.find_by_name(session, account_id, region, name) or _create_group(
            session, account_id, region, name, kind, now
        )
    if group.type != kind:
        say(
            f"Report group {group.name} is of type {group.type}; "
            f"its files must be a {group.type} format, not {kind}; skipped"
        )
        return None
    return group


def _create_group(
    session: Session, account_id: str, region: str, name: str, kind: str, now: dt.datetime
) -> ReportGroup:
    group = groups.new_group(account_id, region, name, kind, groups.NO_EXPORT)
    group.created_at = group.updated_at = now
    try:
        # A savepoint: another build of the project may create the same group meanwhile.
        with session.begin_nested():
            session.add(group)
    except IntegrityError:
        existing = groups.find_by_name(session, account_id, region, name)
        if existing is None:
            raise
        return existing
    return group


def _parse_files(kind: str, spec: BuildspecReportGroup, src_dir: Path) -> ParsedFiles:
    parsed = ParsedFiles()
    try:
        paths = files.collect(src_dir, spec.base_directory, spec.files)
    except files.ReportFilesError as exc:
        parsed.problems.append(str(exc))
        return parsed
    if not paths:
        parsed.problems.append(
            f"no files matched {', '.join(spec.files)}"
            + (f" in {spec.base_directory}" if spec.base_directory else "")
        )
        return parsed
    root = src_dir.resolve()
    budget = MAX_REPORT_BYTES
    for path in paths:
        raw_path = _relative(path, root)
        try:
            size = path.stat().st_size
            if size > MAX_REPORT_FILE_BYTES:
                raise ReportParseError(f"file is larger than {MAX_REPORT_FILE_BYTES} bytes")
            if size > budget:
                parsed.problems.append(
                    f"{raw_path} and later files left out: the report's files exceed "
                    f"{MAX_REPORT_BYTES} bytes"
                )
                break
            budget -= size
            parsed.raw_files.append((raw_path, path))
            with path.open("rb") as stream:
                # Bounded even if the file grew after stat().
                data = stream.read(MAX_REPORT_FILE_BYTES + 1)
            if kind == "TEST":
                for case in parse_test_file(spec.file_format, data):
                    parsed.cases.append((raw_path, case))
            else:
                for coverage in parse_coverage_file(spec.file_format, data):
                    _merge_coverage(parsed.coverage, coverage)
        except (ReportParseError, OSError) as exc:
            parsed.problems.append(f"{raw_path} is not a valid {spec.file_format} file: {exc}")
    return parsed


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _merge_coverage(into: dict[str, FileCoverage], coverage: FileCoverage) -> None:
    # The same source file in two coverage files: keep the better-covered measurement
    # rather than adding (adding would count every line twice).
    seen = into.get(coverage.file_path)
    if seen is None or (coverage.lines_covered, coverage.branches_covered) > (
        seen.lines_covered,
        seen.branches_covered,
    ):
        into[coverage.file_path] = coverage


def _store(
    session: Session,
    group: ReportGroup,
    report_id: str,
    build_arn: str,
    kind: str,
    parsed: ParsedFiles,
    now: dt.datetime,
) -> Report:
    arn = records.report_arn(group.account_id, group.region, group.name, report_id)
    # Ingesting the same build again replaces its earlier report.
    previous = session.scalars(select(Report.id).where(Report.arn == arn)).all()
    records.delete_reports(session, previous)
    report = Report(
        id=str(uuid.uuid4()),
        account_id=group.account_id,
        region=group.region,
        arn=arn,
        report_group_id=group.id,
        report_group_arn=group.arn,
        name=group.name,
        type=kind,
        execution_id=build_arn,
        export_config=dict(group.export_config),
        truncated=False,
        created_at=now,
        expires_at=now + records.REPORT_LIFETIME,
    )
    session.add(report)
    if kind == "TEST":
        _summarize_tests(session, report, parsed)
    else:
        _summarize_coverage(session, report, parsed)
    if parsed.problems:
        report.status = "INCOMPLETE"
        report.status_message = "\n".join(parsed.problems)[:8000]
    session.flush()
    return report


def _summarize_tests(session: Session, report: Report, parsed: ParsedFiles) -> None:
    cases = parsed.cases
    counts = Counter(case.status for _, case in cases)
    report.test_total = len(cases)
    report.test_status_counts = dict(counts)
    report.test_duration_ns = sum(case.duration_ns for _, case in cases)
    report.status = "FAILED" if counts["FAILED"] or counts["ERROR"] else "SUCCEEDED"
    kept = _keep(cases)
    report.truncated = len(kept) < len(cases)
    session.add_all(
        ReportTestCase(
            id=str(uuid.uuid4()),
            report_id=report.id,
            seq=seq,
            test_raw_data_path=raw_path,
            prefix=case.prefix,
            name=case.name,
            status=case.status,
            duration_ns=case.duration_ns,
            message=case.message,
            suite_name=case.suite_name,
        )
        for seq, (raw_path, case) in enumerate(kept)
    )


def _keep(cases: Sequence[tuple[str, TestCaseResult]]) -> list[tuple[str, TestCaseResult]]:
    """At most MAX_TEST_CASES, failures first in line for a place, in their run order."""
    if len(cases) <= MAX_TEST_CASES:
        return list(cases)
    ranked = sorted(
        range(len(cases)),
        key=lambda i: (cases[i][1].status not in _KEEP_FIRST, i),
    )
    return [cases[i] for i in sorted(ranked[:MAX_TEST_CASES])]


def _summarize_coverage(session: Session, report: Report, parsed: ParsedFiles) -> None:
    files_ = sorted(parsed.coverage.values(), key=lambda c: c.file_path)
    lines_covered = sum(c.lines_covered for c in files_)
    lines_missed = sum(c.lines_missed for c in files_)
    branches_covered = sum(c.branches_covered for c in files_)
    branches_missed = sum(c.branches_missed for c in files_)
    report.lines_covered, report.lines_missed = lines_covered, lines_missed
    report.branches_covered, report.branches_missed = branches_covered, branches_missed
    report.line_coverage_percentage = percentage(lines_covered, lines_missed)
    report.branch_coverage_percentage = percentage(branches_covered, branches_missed)
    report.status = "SUCCEEDED"
    session.add_all(
        ReportCodeCoverage(
            id=str(uuid.uuid4()),
            report_id=report.id,
            file_path=c.file_path,
            line_coverage_percentage=c.line_coverage_percentage,
            lines_covered=c.lines_covered,
            lines_missed=c.lines_missed,
            branch_coverage_percentage=c.branch_coverage_percentage,
            branches_covered=c.branches_covered,
            branches_missed=c.branches_missed,
        )
        for c in files_
    )
