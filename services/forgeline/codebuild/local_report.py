"""What `forgeline build-local` shows: the build as it runs, and its summary at the end.

`LocalReporter` is the engine's reporter for a local build: it records like a server's
(the build row and its events, which StopBuild and the reports read), shows each log line
on the terminal as it is written, notes what the output says about the cache, and keeps
the last transition for the summary. `summarize` and `write_artifacts` make the closing
lines and copy the artifacts out.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codebuild import cache, s3locations
from forgeline.codebuild.build_reporter import BuildReporter, Transition
from forgeline.codebuild.phases import COMPLETED, phase_from_json
from forgeline.codebuild.sources import SourceError, extract_zip
from forgeline.codebuild.tables.builds import Build
from forgeline.codebuild.tables.reports import Report
from forgeline.core.blobstore import get_blob_store
from forgeline.core.db import session_scope
from forgeline.core.settings import Settings

Echo = Callable[[str], None]


@dataclass
class CacheUse:
    """What the run's output said about the cache."""

    restored: bool = False
    missed: bool = False
    saved: bool = False


class LocalReporter:
    """Records through `recorder` (the database reporter) and shows the build as it runs."""

    def __init__(self, recorder: BuildReporter, echo: Echo) -> None:
        self.recorder = recorder
        self.echo = echo
        self.cache = CacheUse()
        self.last: Transition | None = None

    def record(self, transition: Transition) -> None:
        self.recorder.record(transition)
        self.last = transition

    def stop_requested(self) -> bool:
        return self.recorder.stop_requested()

    def show_line(self, line: str) -> None:
        """One line of the build's log (masked like the log), as it is written."""
        if cache.cache_hit(line):
            self.cache.restored = True
        elif cache.MISS_MARKER in line:
            self.cache.missed = True
        elif cache.SAVED_MARKER in line:
            self.cache.saved = True
        try:
            self.echo(line)
        except OSError:
            pass  # the terminal went away (a closed pipe): the build itself goes on


@dataclass
class ReportSummary:
    group: str
    status: str
    total: int
    passed: int
    failed: int


@dataclass
class Summary:
    build_id: str
    status: str
    phases: list[tuple[str, str, float | None, str]]
    exported: list[dict[str, str]]
    results: dict[str, Any]
    reports: list[ReportSummary]
    cache: str
    no_artifacts_reason: str = "none"
    artifacts: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def lines(self) -> list[str]:
        out = ["", "Build summary", f"  {'PHASE':<18} {'STATUS':<12} DURATION"]
        for phase, status, seconds, context in self.phases:
            duration = f"{seconds:.2f} s" if seconds is not None else "-"
            out.append(f"  {phase:<18} {status:<12} {duration}")
            if context:
                out.append(f"      {context}")
        out.append(f"Build status: {self.status} ({self.build_id}, {self.elapsed:.1f} s)")
        if self.exported:
            out.append("Exported variables:")
            out += [f"  {item['name']}={item['value']}" for item in self.exported]
        if self.artifacts:
            out.append("Artifacts:")
            out += [f"  {line}" for line in self.artifacts]
        else:
            out.append(f"Artifacts: {self.no_artifacts_reason}")
        if self.reports:
            out.append("Reports:")
            for report in self.reports:
                out.append(
                    f"  {report.group}: {report.status} total {report.total} "
                    f"passed {report.passed} failed {report.failed}"
                )
        out.append(f"Cache: {self.cache}")
        return out


def summarize(
    build_id: str,
    reporter: LocalReporter,
    cache_dir: Path | None,
    *,
    artifacts_wanted: bool,
) -> Summary:
    """The summary from the last transition the reporter saw (the build row, if none)."""
    with session_scope(readonly=True) as session:
        build = session.get(Build, build_id)
        assert build is not None
        last = reporter.last
        if last is not None:
            records = list(last.state.phases)
            results = dict(last.results)
            status = last.state.build_status
        else:
            records = [phase_from_json(data) for data in build.phases]
            results = dict(build.results)
            status = build.build_status
        reports = _report_summaries(session, results.get("reportArns") or [])
    phases = []
    for record in records:
        if record.phase_status is None and record.phase_type == COMPLETED:
            continue
        seconds = (
            (record.end_time - record.start_time).total_seconds()
            if record.end_time is not None
            else None
        )
        context = "; ".join(
            f"{c.status_code}: {c.message}" for c in record.contexts if c.status_code
        )
        phases.append((record.phase_type, record.phase_status or "-", seconds, context))
    return Summary(
        build_id=build_id,
        status=status,
        phases=phases,
        exported=list(results.get("exportedEnvironmentVariables") or []),
        results=results,
        reports=reports,
        cache=_describe_cache(reporter.cache, cache_dir),
        no_artifacts_reason=(
            "none written (the build stored none)"
            if artifacts_wanted
            else "not kept (name a directory with --artifacts)"
        ),
    )


def _describe_cache(use: CacheUse, cache_dir: Path | None) -> str:
    if cache_dir is None:
        return "not used (--no-cache)"
    if use.restored:
        used = "restored from the previous run"
    elif use.missed:
        used = "nothing cached yet"
    else:
        used = "not used by this build (no cache paths, or it ended before INSTALL)"
    saved = ", saved for the next run" if use.saved else ""
    return f"{used}{saved} ({cache_dir})"


def _report_summaries(session: Session, arns: list[str]) -> list[ReportSummary]:
    if not arns:
        return []
    rows = session.scalars(select(Report).where(Report.arn.in_(arns))).all()
    summaries = []
    for row in sorted(rows, key=lambda r: r.report_group_arn):
        counts = row.test_status_counts or {}
        summaries.append(
            ReportSummary(
                group=row.report_group_arn.rsplit("/", 1)[-1],
                status=row.status,
                total=row.test_total or 0,
                passed=counts.get("SUCCEEDED", 0),
                failed=counts.get("FAILED", 0) + counts.get("ERROR", 0),
            )
        )
    return summaries


def write_artifacts(
    settings: Settings, results: dict[str, Any], target: Path, packaging: str
) -> list[str]:
    """Copy the build's stored artifacts into `target`: each zip file as it is (ZIP), or
    unpacked (NONE: the primary's files in `target`, a secondary's in `target/<id>/`)."""
    store = get_blob_store(settings)
    stored = [results.get("artifacts") or {}, *(results.get("secondaryArtifacts") or [])]
    written = []
    for artifact in stored:
        location = artifact.get("location") or ""
        if not location:
            continue
        bucket, key = s3locations.split_location(location)
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as spool:
            with store.open(s3locations.blob_key(bucket, key)) as data:
                shutil.copyfileobj(data, spool)
            if packaging == "ZIP":
                path = target / key.rsplit("/", 1)[-1]
                spool.seek(0)
                with path.open("wb") as out:
                    shutil.copyfileobj(spool, out)
                written.append(f"{path} ({path.stat().st_size} bytes)")
                continue
            identifier = artifact.get("artifactIdentifier")
            folder = target / identifier if identifier else target
            folder.mkdir(parents=True, exist_ok=True)
            spool.seek(0)
            try:
                count = extract_zip(spool, folder)
            except SourceError as exc:
                written.append(f"{folder}: could not unpack the artifact: {exc.message}")
                continue
            written.append(f"{folder} ({count} {'file' if count == 1 else 'files'})")
    return written
