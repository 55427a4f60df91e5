"""`forgeline build-local`: run a buildspec on this machine, with no server.

The counterpart of AWS's local CodeBuild agent (`codebuild_build.sh`), built from the same
parts as a server build: a throwaway state directory holds an SQLite database migrated
like a server's, CreateProject and StartBuild go through the same dispatcher and
handlers as API calls (so the same checks apply), and the build engine runs the build
in this process on the Docker or host runner, under a lease and heartbeat as a worker
would: composed like a worker's, with the local directories as options of its steps and
a reporter (local_report.py) that shows the build as it runs and makes its summary.
Nothing listens on the network.

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
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from forgeline.codebuild import cache, images
from forgeline.codebuild.build_reporter import DatabaseReporter
from forgeline.codebuild.build_steps import (
    BuildSnapshot,
    LocalDirectories,
    WorkspaceSteps,
    build_deadline,
)
from forgeline.codebuild.buildspec import BuildspecError, parse_buildspec
from forgeline.codebuild.engine import BuildRun
from forgeline.codebuild.local_report import Echo, LocalReporter, summarize, write_artifacts
from forgeline.codebuild.phases import phase_from_json
from forgeline.codebuild.runners import Runner, choose_runner, describe_runner_choice
from forgeline.codebuild.runners.select import reset_runner_choice
from forgeline.codebuild.tables.builds import Build
from forgeline.core import lifecycle
from forgeline.core.blobstore import get_blob_store
from forgeline.core.context import RequestContext
from forgeline.core.db import dispose_engines, get_sessionmaker, utcnow
from forgeline.core.protocol.catalog import service_model
from forgeline.core.protocol.dispatch import Dispatcher
from forgeline.core.protocol.errors import AwsError
from forgeline.core.providers import load_providers
from forgeline.core.settings import Settings, get_settings, reset_settings_cache
from forgeline.core.work import celery_app
from forgeline.core.work.jobs import Heartbeat
from forgeline.core.work.leases import SUCCEEDED, claim, complete, new_owner
from forgeline.s3 import buckets

ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
ARTIFACT_BUCKET = "build-local-artifacts"
SERVICE_ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/build-local"
DEFAULT_PROJECT = "build-local"
PACKAGINGS = ("ZIP", "NONE")
RUNNERS = ("auto", "docker", "host")
# How often the waiting main thread looks up from the build (and notices Ctrl-C).
WAIT_SECONDS = 0.2

# Names a shell can export: the engine passes only these on to commands.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PROJECT_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
_SOURCE_IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,127}\Z")


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
    # (sourceIdentifier, directory): each copied to CODEBUILD_SRC_DIR_<sourceIdentifier>.
    secondary_sources: tuple[tuple[str, Path], ...] = ()
    # Where the report files the buildspec names are copied (AWS's agent: -r).
    report_dir: Path | None = None


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
                f"{origin}, line {number}: expected NAME=VALUE with a shell variable name, "
                f"got {raw.strip()!r}"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        variables[name] = value
    return [
        {"name": name, "value": value, "type": "PLAINTEXT"} for name, value in variables.items()
    ]


def parse_secondary_source(text: str) -> tuple[str, Path]:
    """`IDENTIFIER:DIRECTORY` (as AWS's agent takes `-s`) -> (identifier, directory)."""
    identifier, sep, directory = text.partition(":")
    if not sep or not directory:
        raise LocalBuildUsageError(f"secondary source {text!r}: expected IDENTIFIER:DIRECTORY")
    if not _SOURCE_IDENTIFIER.match(identifier):
        raise LocalBuildUsageError(
            f"secondary source identifier {identifier!r}: use up to 127 letters, digits "
            "and underscores"
        )
    path = Path(directory)
    if not path.is_dir():
        raise LocalBuildUsageError(f"secondary source {identifier}: {directory} is not a directory")
    return identifier, path.resolve()


def default_cache_dir(source: Path) -> Path:
    """~/.cache/forgeline/build-local/<hash of the source path>: one cache per source tree."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    return base / "forgeline" / "build-local" / digest


def project_name_for(source: Path) -> str:
    """A valid CodeBuild project name from the source directory's name."""
    name = _PROJECT_NAME_CHARS.sub("-", source.resolve().name).strip("-_")[:255]
    # CodeBuild wants 2 to 255 characters, starting with a letter or digit.
    return name if len(name) >= 2 else DEFAULT_PROJECT


def read_buildspec(options: LocalBuildOptions) -> str:
    path = options.buildspec or options.source / "buildspec.yml"
    if not path.is_file():
        if options.buildspec is None:
            raise LocalBuildUsageError(
                f"no buildspec.yml in {options.source}; name one with --buildspec"
            )
        raise LocalBuildUsageError(f"buildspec {path} is not a file")
    return path.read_text(encoding="utf-8", errors="replace")


# ---------------------------------------------------------------- the throwaway state


def _state_environment(data_dir: Path, runner: str) -> dict[str, str]:
    """Settings that keep the run to its own directory, whatever FORGELINE_* says.

    FORGELINE_BUILD_DIR is left as set: it says where Docker can see build directories
    (e.g. from inside a container using the host's engine), which holds here too.
    Privileged builds are allowed: the person running `build-local` is the operator of
    this machine, and `--privileged` is their own choice (as with AWS's local agent).
    """
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
        "FORGELINE_BUILD_PRIVILEGED": ACCOUNT_ID,
    }


@contextlib.contextmanager
def throwaway_state(runner: str) -> Iterator[Settings]:
    """A migrated state directory for one run; removed afterwards."""
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
        self.dispatcher = Dispatcher(load_providers(["build"]))

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
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


def choose_image(options: LocalBuildOptions, runner: Runner) -> str:
    """The image to build in: --image, else forgeline/standard:latest if present, else the
    tiny image (made on the spot if missing). The host runner uses none."""
    if options.image:
        return options.image
    if not runner.uses_image:
        return images.DEFAULT_TAGS["tiny"]
    present = {entry["image"] for entry in images.list_images()}
    if images.DEFAULT_TAGS["standard"] in present:
        return images.DEFAULT_TAGS["standard"]
    try:
        return images.ensure_image("tiny")
    except Exception:
        # No image could be made (e.g. the engine is gone): PROVISIONING says so clearly.
        return images.DEFAULT_TAGS["tiny"]


# ---------------------------------------------------------------- the build


def build_parameters(
    options: LocalBuildOptions, buildspec_text: str, image: str, variables: list[dict[str, str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """CreateProject's and StartBuild's parameters for this run."""
    project: dict[str, Any] = {
        "name": project_name_for(options.source),
        "description": f"forgeline build-local of {options.source.resolve()}"[:255],
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
        start["artifactsOverride"] = _artifact_config(None)
        secondary = _secondary_artifact_ids(buildspec_text)
        if secondary:
            start["secondaryArtifactsOverride"] = [
                _artifact_config(identifier) for identifier in secondary
            ]
    return project, start


def _make_artifact_bucket(settings: Settings) -> None:
    """Artifacts go to an existing bucket of the build's account, locally too."""
    buckets.save_bucket(
        get_blob_store(settings),
        buckets.Bucket(ARTIFACT_BUCKET, ACCOUNT_ID, settings.default_region, utcnow()),
    )


def _artifact_config(identifier: str | None) -> dict[str, Any]:
    # Always stored as a zip, which keeps modes and links; --packaging NONE unpacks it.
    config: dict[str, Any] = {
        "type": "S3",
        "location": ARTIFACT_BUCKET,
        "name": f"{identifier or 'artifacts'}.zip",
        "packaging": "ZIP",
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


class _BuildThread:
    """Runs the build beside the main thread, which waits and turns Ctrl-C into StopBuild."""

    def __init__(
        self,
        settings: Settings,
        build_id: str,
        options: LocalBuildOptions,
        reporter: LocalReporter,
    ) -> None:
        self.settings = settings
        self.build_id = build_id
        self.options = options
        self.reporter = reporter
        self.echo = reporter.show_line
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
            run = compose_run(
                settings, self.build_id, self.options, self.reporter, lambda: heartbeat.lost
            )
            run.run()
            # The engine may leave its tear-down to a thread (container removal, the
            # log's last flush): the command reports only after it.
            run.torn_down.wait()
        finally:
            heartbeat.stop()
            with sessions.begin() as session:
                complete(session, Build, self.build_id, owner, SUCCEEDED)


def compose_run(
    settings: Settings,
    build_id: str,
    options: LocalBuildOptions,
    reporter: LocalReporter,
    lease_lost: Callable[[], bool],
) -> BuildRun:
    """The engine for the claimed build, as a server's slot composes it, with the local
    directories copied in and `reporter` showing the build as it runs."""
    sessions = get_sessionmaker(settings.resolved_database_url)
    with sessions() as session:
        build = session.get(Build, build_id)
        assert build is not None
        snapshot = BuildSnapshot(build)
        phases = [phase_from_json(data) for data in build.phases]
    local = LocalDirectories(options.source, options.secondary_sources, options.report_dir)
    steps = WorkspaceSteps(settings, snapshot, sessions, echo=reporter.show_line, local=local)
    return BuildRun(
        build_id,
        phases,
        steps,
        # One build and gone: no namespaces made ahead for builds that will not come.
        choose_runner(settings.model_copy(update={"build_prepared_namespaces": 0})),
        reporter,
        deadline=build_deadline(settings, snapshot),
        lease_lost=lease_lost,
    )


# ---------------------------------------------------------------- the command


@dataclass(frozen=True)
class _Inputs:
    """The checked command line, read before any state exists."""

    options: LocalBuildOptions
    buildspec_text: str
    variables: list[dict[str, str]]
    cache_dir: Path | None


def _check(options: LocalBuildOptions) -> _Inputs:
    if options.packaging not in PACKAGINGS:
        raise LocalBuildUsageError(f"packaging must be one of {', '.join(PACKAGINGS)}")
    if options.runner not in RUNNERS:
        raise LocalBuildUsageError(f"runner must be one of {', '.join(RUNNERS)}")
    source = options.source.resolve()
    if not source.is_dir():
        raise LocalBuildUsageError(f"source {options.source} is not a directory")
    identifiers = [identifier for identifier, _ in options.secondary_sources]
    for identifier in identifiers:
        if identifiers.count(identifier) > 1:
            raise LocalBuildUsageError(f"secondary source {identifier} is given twice")
    options = replace(options, source=source)
    env_file = options.env_file
    variables = (
        parse_env_file(env_file.read_text(encoding="utf-8", errors="replace"), str(env_file))
        if env_file is not None
        else []
    )
    return _Inputs(
        options=options,
        buildspec_text=read_buildspec(options),
        variables=variables,
        cache_dir=(options.cache_dir or default_cache_dir(source)) if options.use_cache else None,
    )


def run_local_build(options: LocalBuildOptions, echo: Echo) -> int:
    """Run the build; return the exit status (0 SUCCEEDED, 1 otherwise).

    Raises LocalBuildUsageError for a command line that cannot be built.
    """
    inputs = _check(options)
    options, cache_dir = inputs.options, inputs.cache_dir
    with throwaway_state(options.runner) as settings:
        # The choice is cached per process; a fresh one follows this run's --runner.
        reset_runner_choice()
        runner = choose_runner(settings)
        image = choose_image(options, runner)
        echo(f"Source: {options.source}")
        for identifier, path in options.secondary_sources:
            echo(f"Secondary source {identifier}: {path}")
        echo(f"Runner: {describe_runner_choice(settings).removeprefix('build runner: ')}")
        echo(f"Image: {image if runner.uses_image else f'(none: {runner.name} runner)'}")
        if cache_dir is not None:
            echo(f"Cache: {cache_dir}")
        project_params, start_params = build_parameters(
            options, inputs.buildspec_text, image, inputs.variables
        )
        api = _Api()
        _make_artifact_bucket(settings)
        try:
            api.call("CreateProject", project_params)
            build_id = api.call("StartBuild", start_params)["build"]["id"]
        except AwsError as exc:
            raise LocalBuildUsageError(f"{exc.code}: {exc.message}") from None
        echo(f"Build: {build_id}")
        sessions = get_sessionmaker(settings.resolved_database_url)
        reporter = LocalReporter(DatabaseReporter(sessions, build_id), echo)
        build = _BuildThread(settings, build_id, options, reporter)
        started = time.monotonic()
        with (
            _kept_cache(settings, cache_dir, project_params["name"], build.done),
            _terminate_as_interrupt(),
        ):
            build.start()
            try:
                build.wait(api)
            except KeyboardInterrupt:
                echo("Abandoning the build: removing what it left running.")
                choose_runner(settings).remove_build_container(build_id)
                raise
        if build.failure is not None:
            echo(f"Forgeline could not run the build: {build.failure!r}")
        summary = summarize(
            build_id, reporter, cache_dir, artifacts_wanted=options.artifacts is not None
        )
        summary.elapsed = time.monotonic() - started
        if options.artifacts is not None:
            summary.artifacts = write_artifacts(
                settings, summary.results, options.artifacts, options.packaging
            )
        for line in summary.lines():
            echo(line)
        return 0 if summary.status == "SUCCEEDED" and build.failure is None else 1


# ---------------------------------------------------------------- cache in and out


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job's timeout, `kill`) stops the build as Ctrl-C does, rather than
    ending the process with the build's container still running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _kept_cache(
    settings: Settings, cache_dir: Path | None, project_name: str, done: threading.Event
) -> Iterator[None]:
    """Lend the kept cache to the project's LOCAL cache for the run; afterwards keep what
    the build saved. A build that saved nothing (stopped, or failed early) leaves
    `cache_dir` as it was."""
    if cache_dir is None:
        yield
        return
    kept = cache.local_cache_dir(settings, ACCOUNT_ID, REGION, project_name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Linked, not moved: the build renames the cache away and writes a new one beside
    # it, never into its files, so the kept cache survives whatever the build does.
    shutil.copytree(cache_dir, kept, symlinks=True, copy_function=_link_or_copy, dirs_exist_ok=True)
    try:
        yield
    finally:
        # An abandoned build may still be writing its cache: keep the previous one.
        if done.is_set() and cache.has_cached_content(kept):
            _empty_directory(cache_dir)
            for entry in kept.iterdir():
                if not entry.name.startswith("."):  # not a stage a failed save left behind
                    shutil.move(str(entry), str(cache_dir / entry.name))


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(source, destination)


def _empty_directory(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
