"""`forgeline build-local`: run a buildspec on this machine, with no server.

The counterpart of AWS's local CodeBuild agent (`codebuild_build.sh`), built from the same
parts as a server build: a throwaway state directory holds an SQLite database migrated
like a server's, CreateProject and StartBuild go through the same dispatcher and
handlers as API calls (so the same checks apply), and the build engine runs the build
in this process on the Docker or host runner, under a lease and heartbeat as a worker
would. Nothing listens on the network.

What differs from a server build:

- The source is a directory of this machine, copied into the build before
  DOWNLOAD_SOURCE's usual work (never mounted: the build cannot change the user's tree).
- Each log line is shown on the terminal as it is written.
- The project's LOCAL cache lives in `--cache-dir` between runs (AWS's agent keeps none).
- Artifacts are copied out of the throwaway blob store into `--artifacts DIR`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.build.buildspec import BuildspecError, parse_buildspec
from services.core.settings import Settings, get_settings, reset_settings_cache

ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
ARTIFACT_BUCKET = "build-local-artifacts"
SERVICE_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/build-local"
DEFAULT_PROJECT = "build-local"
PACKAGINGS = ("ZIP", "NONE")
RUNNERS = ("auto", "docker", "host")
# How often the waiting main thread looks up from the build (and notices Ctrl-C).
WAIT_SECONDS = 0.2

Echo = Callable[[str], None]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_PROJECT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")


class LocalBuildUsageError(Exception):
    """The command line asks for something that cannot be built (exit status 2)."""


@dataclass(frozen=True)
class LocalBuildOptions:
    source: Path
    buildspec: Path | None = None
    image: str | None = None
    runner: str = "auto"
    artifacts: Path | None = None
    packaging: str = "ZIP"
    env_file: Path | None = None
    cache_dir: Path | None = None
    use_cache: bool = True
    compute_type: str = "BUILD_GENERAL1_SMALL"
    privileged: bool = False


# ---------------------------------------------------------------- inputs


def parse_env_file(text: str, origin: str = "env file") -> list[dict[str, str]]:
    """KEY=VALUE lines as StartBuild's environmentVariablesOverride (PLAINTEXT).

    Blank lines and lines starting with `#` are skipped; `export ` before a name is
    allowed; a value wholly in single or double quotes loses them. A later line wins
    over an earlier one of the same name.
    """
    variables: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _ENV_NAME.match(name):
            raise LocalBuildUsageError(
                f"{origin}, line {number}: expected NAME=VALUE, got {raw.strip()!r}"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        variables[name] = value
    return [
        {"name": name, "value": value, "type": "PLAINTEXT"} for name, value in variables.items()
    ]


def default_cache_dir(source: Path) -> Path:
    """~/.cache/forgeline/build-local/<hash of the source path>: one cache per source tree."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    return base / "forgeline" / "build-local" / digest


def project_name_for(source: Path) -> str:
    """A valid CodeBuild project name from the source directory's name."""
    name = _PROJECT_NAME_CHARS.sub("-", source.resolve().name).strip("-_")[:255]
    return name if name else DEFAULT_PROJECT


def read_buildspec(options: LocalBuildOptions) -> str:
    path = options.buildspec or options.source / "buildspec.yml"
    if not path.is_file():
        if options.buildspec is None:
            raise LocalBuildUsageError(
                f"no buildspec.yml in {options.source}; name one with --buildspec"
            )
        raise LocalBuildUsageError(f"buildspec {path} is not a file")
    return path.read_text(encoding="utf-8", errors="replace")


def copy_source(source: Path, dest: Path) -> None:
    """Copy the source tree (links as links, modes kept); sockets, pipes and devices are
    left out, as a copy of them would block or mean nothing."""

    def special(directory: str, names: list[str]) -> set[str]:
        skipped = set()
        for name in names:
            mode = os.lstat(os.path.join(directory, name)).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                skipped.add(name)
        return skipped

    shutil.copytree(source, dest, symlinks=True, ignore=special, dirs_exist_ok=True)


# ---------------------------------------------------------------- the throwaway state


def _state_environment(data_dir: Path, runner: str) -> dict[str, str]:
    """Settings that keep the run to its own directory, whatever FORGELINE_* says."""
    return {
        "FORGELINE_DATA_DIR": str(data_dir),
        "FORGELINE_DATABASE_URL": f"sqlite:///{(data_dir / 'forgeline.db').resolve()}",
        "FORGELINE_BLOB_STORE": "local",
        "FORGELINE_BROKER_URL": "memory://",
        "FORGELINE_EVENTS_FANOUT_URL": "",
        "FORGELINE_BUILD_RUNNER": runner,
        "FORGELINE_MIGRATE_ON_START": "true",
        "FORGELINE_DEFAULT_REGION": REGION,
        "FORGELINE_DEFAULT_ACCOUNT": ACCOUNT_ID,
    }


@contextlib.contextmanager
def throwaway_state(runner: str) -> Iterator[Settings]:
    """A migrated state directory for one run; removed afterwards."""
    from services.core import lifecycle
    from services.core.db import dispose_engines
    from services.core.work import celery_app

    data_dir = Path(tempfile.mkdtemp(prefix="forgeline-build-local-"))
    overrides = _state_environment(data_dir, runner)
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    reset_settings_cache()
    settings = get_settings()
    # StartBuild rings the build doorbell; here it rings an in-memory broker nobody reads.
    previous_app = celery_app.activate(celery_app.create_celery(settings))
    try:
        lifecycle.prepare_database(settings)
        yield settings
    finally:
        celery_app.activate(previous_app)
        dispose_engines()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings_cache()
        shutil.rmtree(data_dir, ignore_errors=True)


class _Api:
    """CodeBuild calls through the server's dispatcher: validated against the model and
    answered by the same handlers, without HTTP."""

    def __init__(self) -> None:
        from services.core.protocol.dispatch import Dispatcher
        from services.core.providers import load_providers

        self.dispatcher = Dispatcher(load_providers(["build"]))

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        from services.core.context import RequestContext
        from services.core.protocol.catalog import service_model

        prefix = service_model("codebuild").metadata["targetPrefix"]
        resolved = self.dispatcher.resolve(f"{prefix}.{operation}")
        parsed = self.dispatcher.parse_body(resolved, json.dumps(params).encode())
        ctx = RequestContext(
            account_id=ACCOUNT_ID,
            region=REGION,
            principal_arn=f"arn:aws:iam::{ACCOUNT_ID}:user/{_local_user()}",
            access_key_id=None,
            service="codebuild",
            operation=operation,
        )
        return self.dispatcher.invoke(resolved, ctx, parsed)


def _local_user() -> str:
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or "build-local"
    return _PROJECT_NAME_CHARS.sub("-", user) or "build-local"


# ---------------------------------------------------------------- image and runner


def choose_image(options: LocalBuildOptions, runner_name: str) -> str:
    """The image to build in: --image, else forgeline/standard:latest if present, else the
    tiny image (made on the spot if missing). The host runner uses none."""
    from services.build import images

    if options.image:
        return options.image
    if runner_name != "docker":
        return images.DEFAULT_TAGS["tiny"]
    present = {entry["image"] for entry in images.list_images()}
    if images.DEFAULT_TAGS["standard"] in present:
        return images.DEFAULT_TAGS["standard"]
    return images.ensure_image("tiny")


# ---------------------------------------------------------------- the build


def build_parameters(
    options: LocalBuildOptions, buildspec_text: str, image: str, variables: list[dict[str, str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """CreateProject's and StartBuild's parameters for this run."""
    project: dict[str, Any] = {
        "name": project_name_for(options.source),
        "description": f"forgeline build-local of {options.source.resolve()}",
        # The tree itself is copied in by the run; the buildspec travels inline.
        "source": {"type": "NO_SOURCE", "buildspec": buildspec_text},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": image,
            "computeType": options.compute_type,
            "privilegedMode": options.privileged,
        },
        "serviceRole": SERVICE_ROLE,
        "cache": (
            {"type": "LOCAL", "modes": ["LOCAL_CUSTOM_CACHE"]}
            if options.use_cache
            else {"type": "NO_CACHE"}
        ),
    }
    start: dict[str, Any] = {"projectName": project["name"]}
    if variables:
        start["environmentVariablesOverride"] = variables
    if options.artifacts is not None:
        start["artifactsOverride"] = _artifact_config(options.packaging, None)
        secondary = _secondary_artifact_ids(buildspec_text)
        if secondary:
            start["secondaryArtifactsOverride"] = [
                _artifact_config(options.packaging, identifier) for identifier in secondary
            ]
    return project, start


def _artifact_config(packaging: str, identifier: str | None) -> dict[str, Any]:
    name = identifier or "artifacts"
    config: dict[str, Any] = {
        "type": "S3",
        "location": ARTIFACT_BUCKET,
        "name": f"{name}.zip" if packaging == "ZIP" else name,
        "packaging": packaging,
    }
    if identifier is not None:
        config["artifactIdentifier"] = identifier
    return config


def _secondary_artifact_ids(buildspec_text: str) -> list[str]:
    try:
        spec = parse_buildspec(buildspec_text)
    except BuildspecError:
        return []  # the build itself reports the buildspec's error
    artifacts = spec.artifacts
    return list(artifacts.secondary_artifacts) if artifacts is not None else []


@dataclass
class _Watch:
    """What the run's output said about the cache."""

    cache_restored: bool = False
    cache_missed: bool = False
    cache_saved: bool = False
    lines: list[str] = field(default_factory=list)


def _watching_echo(echo: Echo, watch: _Watch) -> Echo:
    from services.build import cache

    def show(line: str) -> None:
        if cache.cache_hit(line):
            watch.cache_restored = True
        elif cache.MISS_MARKER in line:
            watch.cache_missed = True
        elif cache.SAVED_MARKER in line:
            watch.cache_saved = True
        echo(line)

    return show


class _BuildThread:
    """Runs the build beside the main thread, which waits and turns Ctrl-C into StopBuild."""

    def __init__(self, settings: Settings, build_id: str, source: Path, echo: Echo) -> None:
        self.settings = settings
        self.build_id = build_id
        self.source = source
        self.echo = echo
        self.failure: BaseException | None = None
        # Waited on instead of Thread.join: a join interrupted by Ctrl-C can leave the
        # thread looking finished while it still runs.
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="build-local", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self, api: _Api) -> None:
        """Wait for the build; a first Ctrl-C stops it (StopBuild), a second one gives up."""
        stopping = False
        while not self.done.is_set():
            try:
                self.done.wait(WAIT_SECONDS)
            except KeyboardInterrupt:
                if stopping:
                    raise
                stopping = True
                self.echo("Stopping the build (Ctrl-C again to quit at once)...")
                api.call("StopBuild", {"id": self.build_id})

    def _run(self) -> None:
        try:
            self._run_claimed()
        except BaseException as exc:  # the main thread reports it and fails the command
            self.failure = exc
        finally:
            self.done.set()

    def _run_claimed(self) -> None:
        """Claim the build and run it under a renewed lease, as a worker's build slot does."""
        from services.build.tables_builds import Build
        from services.core.db import get_sessionmaker
        from services.core.work.jobs import Heartbeat
        from services.core.work.leases import SUCCEEDED, claim, complete, new_owner

        settings = self.settings
        sessions = get_sessionmaker(settings.resolved_database_url)
        owner = new_owner()
        with sessions.begin() as session:
            claimed = claim(session, Build, self.build_id, owner, settings.lease_seconds)
            if claimed is None:
                raise RuntimeError(f"build {self.build_id} could not be claimed")
            attempt = claimed.attempts
        heartbeat = Heartbeat(
            sessions, self.build_id, owner, settings.lease_seconds, attempt, model=Build
        )
        heartbeat.start()
        try:
            run = _local_build_run(self.source)(settings, self.build_id, heartbeat)
            run.log_echo = self.echo
            run.run()
        finally:
            heartbeat.stop()
            with sessions.begin() as session:
                complete(session, Build, self.build_id, owner, SUCCEEDED)


def _local_build_run(source: Path) -> Any:
    """The engine's BuildRun, with DOWNLOAD_SOURCE first copying `source` into the build."""
    from services.build.engine import BuildRun

    class LocalBuildRun(BuildRun):
        def _download_source(self) -> Any:
            try:
                copy_source(source, self.root / "src")
            except OSError as exc:
                return self._failed(
                    "CLIENT_ERROR", f"could not copy the source directory {source}: {exc}"
                )
            return super()._download_source()

    return LocalBuildRun


# ---------------------------------------------------------------- the command


def run_local_build(options: LocalBuildOptions, echo: Echo) -> int:
    """Run the build; return the exit status (0 SUCCEEDED, 1 otherwise).

    Raises LocalBuildUsageError for a command line that cannot be built.
    """
    from services.build.runners import choose_runner, describe_runner_choice
    from services.build.runners.select import reset_runner_choice
    from services.core.protocol.errors import AwsError

    if options.packaging not in PACKAGINGS:
        raise LocalBuildUsageError(f"packaging must be one of {', '.join(PACKAGINGS)}")
    if options.runner not in RUNNERS:
        raise LocalBuildUsageError(f"runner must be one of {', '.join(RUNNERS)}")
    source = options.source.resolve()
    if not source.is_dir():
        raise LocalBuildUsageError(f"source {options.source} is not a directory")
    buildspec_text = read_buildspec(options)
    variables = (
        parse_env_file(
            options.env_file.read_text(encoding="utf-8", errors="replace"), str(options.env_file)
        )
        if options.env_file is not None
        else []
    )
    cache_dir = (options.cache_dir or default_cache_dir(source)) if options.use_cache else None
    with throwaway_state(options.runner) as settings:
        # The choice is cached per process; a fresh one follows this run's --runner.
        reset_runner_choice()
        runner_name = choose_runner(settings).name
        image = choose_image(options, runner_name)
        echo(f"Source: {source}")
        echo(f"Runner: {describe_runner_choice(settings).removeprefix('build runner: ')}")
        echo(f"Image: {image if runner_name == 'docker' else '(none: host runner)'}")
        if cache_dir is not None:
            echo(f"Cache: {cache_dir}")
        project_params, start_params = build_parameters(options, buildspec_text, image, variables)
        api = _Api()
        try:
            api.call("CreateProject", project_params)
            build_id = api.call("StartBuild", start_params)["build"]["id"]
        except AwsError as exc:
            raise LocalBuildUsageError(f"{exc.code}: {exc.message}") from None
        echo(f"Build: {build_id}")
        project_name = project_params["name"]
        if cache_dir is not None:
            _bring_cache_in(settings, cache_dir, project_name)
        watch = _Watch()
        build = _BuildThread(settings, build_id, source, _watching_echo(echo, watch))
        started = time.monotonic()
        build.start()
        try:
            build.wait(api)
        except KeyboardInterrupt:
            echo("Abandoning the build: removing what it left running.")
            choose_runner(settings).remove_build_container(build_id)
            raise
        finally:
            if cache_dir is not None and build.done.is_set():
                _take_cache_out(settings, cache_dir, project_name)
        if build.failure is not None:
            echo(f"Forgeline could not run the build: {build.failure!r}")
        summary = summarize(settings, build_id, options, watch, cache_dir)
        summary.elapsed = time.monotonic() - started
        for line in summary.lines():
            echo(line)
        return 0 if summary.status == "SUCCEEDED" and build.failure is None else 1


# ---------------------------------------------------------------- cache in and out


def _bring_cache_in(settings: Settings, cache_dir: Path, project_name: str) -> None:
    """Put the kept cache where the engine looks for the project's LOCAL cache."""
    from services.build import cache

    kept = cache.local_cache_dir(settings, ACCOUNT_ID, REGION, project_name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for entry in cache_dir.iterdir():
        shutil.move(str(entry), str(kept / entry.name))


def _take_cache_out(settings: Settings, cache_dir: Path, project_name: str) -> None:
    """Keep what the build saved (or the cache as it came in) for the next run."""
    from services.build import cache

    kept = cache.local_cache_dir(settings, ACCOUNT_ID, REGION, project_name)
    for entry in cache_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    for entry in kept.iterdir():
        if entry.name.startswith("."):
            continue  # a stage a failed save left behind
        shutil.move(str(entry), str(cache_dir / entry.name))


# ---------------------------------------------------------------- the summary


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
    artifacts: list[str]
    reports: list[ReportSummary]
    cache: str
    no_artifacts_reason: str = "none"
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
    settings: Settings,
    build_id: str,
    options: LocalBuildOptions,
    watch: _Watch,
    cache_dir: Path | None,
) -> Summary:
    from services.build import builds
    from services.build.tables_builds import Build
    from services.core.db import session_scope

    with session_scope(readonly=True) as session:
        build = session.get(Build, build_id)
        assert build is not None
        phases = []
        for data in build.phases:
            record = builds.phase_from_json(data)
            if record.phase_status is None and record.phase_type == "COMPLETED":
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
        results = dict(build.results)
        status = build.build_status
        reports = _report_summaries(session, results.get("reportArns") or [])
    written = (
        _write_artifacts(settings, results, options.artifacts, options.packaging)
        if options.artifacts is not None
        else []
    )
    return Summary(
        build_id=build_id,
        status=status,
        phases=phases,
        exported=list(results.get("exportedEnvironmentVariables") or []),
        artifacts=written,
        reports=reports,
        cache=_describe_cache(watch, cache_dir),
        no_artifacts_reason=(
            "none written (the build stored none)"
            if options.artifacts is not None
            else "not kept (name a directory with --artifacts)"
        ),
    )


def _describe_cache(watch: _Watch, cache_dir: Path | None) -> str:
    if cache_dir is None:
        return "not used (--no-cache)"
    if watch.cache_restored:
        used = "restored from the previous run"
    elif watch.cache_missed:
        used = "nothing cached yet"
    else:
        used = "not used by this build (no cache paths, or it ended before INSTALL)"
    saved = ", saved for the next run" if watch.cache_saved else ""
    return f"{used}{saved} ({cache_dir})"


def _report_summaries(session: Any, arns: list[str]) -> list[ReportSummary]:
    from sqlalchemy import select

    from services.build.tables_reports import Report

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


def _write_artifacts(
    settings: Settings, results: dict[str, Any], target: Path, packaging: str
) -> list[str]:
    """Copy the stored artifacts into `target`: a zip file as it is, a folder's files."""
    from services.build import s3locations
    from services.core.blobstore import get_blob_store

    store = get_blob_store(settings)
    stored = [results.get("artifacts") or {}, *(results.get("secondaryArtifacts") or [])]
    written = []
    for artifact in stored:
        location = artifact.get("location") or ""
        if not location:
            continue
        bucket, key = s3locations.split_location(location)
        identifier = artifact.get("artifactIdentifier")
        target.mkdir(parents=True, exist_ok=True)
        if packaging == "ZIP":
            path = target / key.rsplit("/", 1)[-1]
            with store.open(s3locations.blob_key(bucket, key)) as data, path.open("wb") as out:
                shutil.copyfileobj(data, out)
            written.append(f"{path} ({path.stat().st_size} bytes)")
            continue
        folder = target / identifier if identifier else target
        prefix = s3locations.blob_key(bucket, key.rstrip("/") + "/")
        count = 0
        for info in store.list(prefix):
            path = folder / info.key[len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            with store.open(info.key) as data, path.open("wb") as out:
                shutil.copyfileobj(data, out)
            count += 1
        written.append(f"{folder} ({count} files)")
    return written
