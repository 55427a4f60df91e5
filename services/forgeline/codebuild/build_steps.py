"""The work of each build phase, on the build's directory, sources and stores.

The engine (engine.py) decides which phase runs and runs the buildspec phases' commands in
the runner; `WorkspaceSteps` does the rest: it lays out `<builds root>/<uuid>/`, fetches
the sources, reads the buildspec and compiles it into phase scripts, assembles the
variables, restores and saves the cache, collects reports and artifacts, and writes the
build's log. Sources copied from directories of this machine (`forgeline build-local`)
and a directory to copy report files into are options of the same steps.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from forgeline.codebuild import aws_images, build_limits, builds, git_credentials, images, sources
from forgeline.codebuild import build_workspace as workspace
from forgeline.codebuild import environment as build_environment
from forgeline.codebuild.build_log import BuildLog, LineEcho, open_log
from forgeline.codebuild.buildspec import BuildspecError, parse_buildspec
from forgeline.codebuild.cache import CacheError
from forgeline.codebuild.engine import Failure, PhaseCommand, StepOutcome
from forgeline.codebuild.phases import INSTALL
from forgeline.codebuild.plan import BuildPlan, compile_plan, evaluate_phase
from forgeline.codebuild.runners import (
    UNABLE_TO_PULL_IMAGE,
    Runner,
    RunnerError,
    RunnerSession,
    RunSpec,
)
from forgeline.codebuild.runners.server_endpoints import server_endpoints
from forgeline.codebuild.secret_values import SecretResolutionError
from forgeline.codebuild.tables.builds import Build
from forgeline.core.settings import Settings, builds_root

logger = logging.getLogger(__name__)

# computeType -> (CPUs, memory): AWS's published sizes, capped by what this machine has.
COMPUTE_SIZES: dict[str, tuple[float, int]] = {
    "BUILD_GENERAL1_SMALL": (2, 3 * 1024**3),
    "BUILD_GENERAL1_MEDIUM": (4, 7 * 1024**3),
    "BUILD_GENERAL1_LARGE": (8, 15 * 1024**3),
    "BUILD_GENERAL1_XLARGE": (36, 70 * 1024**3),
    "BUILD_GENERAL1_2XLARGE": (72, 145 * 1024**3),
}
# Lambda compute: AWS publishes the memory; CPU comes with it as on Lambda itself
# (one vCPU for each 1,769 MB).
_LAMBDA_MEMORY_MB = {"1GB": 1024, "2GB": 2048, "4GB": 4096, "8GB": 8192, "10GB": 10240}
COMPUTE_SIZES.update(
    {
        f"BUILD_LAMBDA_{size}": (round(megabytes / 1769, 2), megabytes * 1024**2)
        for size, megabytes in _LAMBDA_MEMORY_MB.items()
    }
)


class BuildSnapshot:
    """The build row's fields the run needs, read once (the row itself stays in the DB)."""

    def __init__(self, build: Build) -> None:
        self.build_id = build.id
        self.uuid = build.uuid
        self.arn = build.arn
        self.account_id = build.account_id
        self.region = build.region
        self.project_name = build.project_name
        self.build_number = build.build_number
        self.initiator = build.initiator
        self.document: dict[str, Any] = dict(build.document)
        self.start = build.start_time
        self.group, self.log_stream = builds.log_group_and_stream(build)
        self.logs_enabled = builds.logs_enabled(build)


def build_deadline(settings: Settings, snapshot: BuildSnapshot) -> dt.datetime:
    """When the build times out: timeoutInMinutes after it started."""
    minutes = snapshot.document.get("timeoutInMinutes", 60)
    return snapshot.start + dt.timedelta(seconds=minutes * settings.build_minute_seconds)


@dataclass(frozen=True)
class LocalDirectories:
    """Directories of this machine copied into the build (`forgeline build-local`)."""

    # Copied into the primary source directory before DOWNLOAD_SOURCE's usual fetch.
    source: Path | None = None
    # (sourceIdentifier, directory): each becomes CODEBUILD_SRC_DIR_<sourceIdentifier>.
    secondary_sources: tuple[tuple[str, Path], ...] = ()
    # Where the report files the buildspec names are copied before UPLOAD_ARTIFACTS.
    report_dir: Path | None = None


@dataclass
class WorkspaceSteps:
    settings: Settings
    snapshot: BuildSnapshot
    sessions: sessionmaker[Session]
    # Receives each log line as it is written (`forgeline build-local`); None on servers.
    echo: LineEcho | None = None
    local: LocalDirectories = field(default_factory=LocalDirectories)

    def __post_init__(self) -> None:
        self.root = builds_root(self.settings) / self.snapshot.uuid
        self.results: dict[str, Any] = {}
        self.on_failure: dict[str, str] = {}
        self.plan: BuildPlan | None = None
        self.variables: dict[str, str] = {}
        self.uses_image = True
        self.local_image = ""  # the image the runner started (AWS names are mapped)
        self.image_choice: aws_images.ImageChoice | None = None
        self.session: RunnerSession | None = None
        self._log: BuildLog | None = None
        self._opened_up = False
        self._git_credential_issued = False
        self.compute_type = ""
        self.memory_bytes: int | None = None
        # The container's limit counters as the last phase left them (build_limits).
        self._limit_counters: dict[str, int] = {}

    @property
    def log(self) -> BuildLog:
        assert self._log is not None, "the log opens before the first transition"
        return self._log

    def open(self) -> None:
        self._log = open_log(self.settings, self.snapshot, self.echo)

    # ------------------------------------------------------------ PROVISIONING

    def run_spec(self, runner: Runner) -> RunSpec | Failure:
        environment = self.snapshot.document.get("environment", {})
        image = environment.get("image") or ""
        self.compute_type = environment.get("computeType") or "BUILD_GENERAL1_SMALL"
        cpus, memory = COMPUTE_SIZES.get(self.compute_type, COMPUTE_SIZES["BUILD_GENERAL1_SMALL"])
        self.memory_bytes = workspace.cap_memory(memory)
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        for part in ("src", "plan", "state"):
            (self.root / part).mkdir(parents=True, exist_ok=True)
        self.uses_image = runner.uses_image
        try:
            choice = self._local_image(image)
        except aws_images.ImageMapError as exc:
            return Failure("SERVER_CONFIGURATION_ERROR", str(exc), fault=True)
        self.image_choice = choice
        self.local_image = choice.local
        return RunSpec(
            build_id=self.snapshot.build_id,
            root=self.root,
            image=choice.local,
            env=workspace.base_environment(runner.uses_image, self.root),
            cpus=workspace.cap_cpus(cpus),
            memory_bytes=self.memory_bytes,
            privileged=bool(environment.get("privilegedMode")),
            # Isolated unless the operator chose the host's network (announced at start).
            network=self.settings.build_network,
            server_endpoints=server_endpoints(self.settings),
            build_network_name=self.settings.build_network_name,
            pids_limit=self.settings.build_pids_limit or None,
            host_docker_socket=self.settings.build_docker_socket,
        )

    def _local_image(self, image: str) -> aws_images.ImageChoice:
        """The image the runner starts for IMAGE (AWS's curated names map to local ones)."""
        if not self.uses_image:
            return aws_images.ImageChoice(image, image, False)
        overrides = aws_images.parse_image_map(self.settings.build_image_map)
        return aws_images.choose_local_image(image, overrides, images.image_present)

    def runner_failure(self, error: RunnerError) -> Failure:
        message = error.message
        choice = self.image_choice
        if error.code == UNABLE_TO_PULL_IMAGE and choice is not None and choice.mapped:
            message = choice.missing_message()
        return Failure(error.code, message, fault=error.fault)

    def provisioned(self, runner: Runner, session: RunnerSession) -> None:
        self.session = session
        image = self.snapshot.document.get("environment", {}).get("image") or ""
        shown = image or "(host)"
        if self.image_choice is not None and self.image_choice.mapped and runner.uses_image:
            shown = f"{image} (local image {self.image_choice.local})"
        self.log.note(f"Running on {runner.name} runner, image {shown}")
        unenforced = build_limits.unenforced_note(runner.not_enforced)
        if unenforced is not None:
            self.log.note(unenforced)
        for note in session.notes:
            self.log.note(note)

    @property
    def _root_in_runner(self) -> str:
        assert self.session is not None
        return self.session.root_in_runner

    # ------------------------------------------------------------ DOWNLOAD_SOURCE

    def download_source(self) -> StepOutcome:
        document = self.snapshot.document
        if self.local.source is not None:
            try:
                workspace.copy_source(self.local.source, self.root / "src")
            except OSError as exc:
                return Failure(
                    "CLIENT_ERROR",
                    f"could not copy the source directory {self.local.source}: {exc}",
                )
        try:
            fetched = sources.fetch_source(
                self.settings,
                self.snapshot.account_id,
                self.snapshot.region,
                document["source"],
                document.get("sourceVersion"),
                self.root / "src",
            )
            if fetched.resolved_version:
                self.results["resolvedSourceVersion"] = fetched.resolved_version
            secondary_dirs = self._fetch_secondary_sources()
        except sources.SourceError as exc:
            return Failure(exc.code, exc.message)
        if fetched.buildspec_text is None:
            message = sources.missing_buildspec_message(f"{self._root_in_runner}/src", fetched)
            return Failure("YAML_FILE_ERROR", message)
        try:
            spec = parse_buildspec(fetched.buildspec_text)
        except BuildspecError as exc:
            return Failure("YAML_FILE_ERROR", _strip_code(exc.message, "YAML_FILE_ERROR"))
        self.plan = compile_plan(spec)
        self.on_failure = {phase.phase_type: phase.on_failure for phase in self.plan.phases}
        try:
            with self.sessions() as session:
                assembled = build_environment.assemble(
                    session,
                    self.snapshot.account_id,
                    self.snapshot.region,
                    self._built_ins(fetched.resolved_version, secondary_dirs),
                    self.plan,
                    document.get("environment", {}).get("environmentVariables", []),
                )
        except SecretResolutionError as exc:
            return Failure(exc.status_code, exc.message)
        self.variables = assembled.variables
        self.log.mask(assembled.secrets)
        if self.plan.git_credential_helper:
            self._issue_git_credential()
        workspace.write_plan(self.root, self.plan, self.variables)
        return None

    def _issue_git_credential(self) -> None:
        with self.sessions.begin() as session:
            issued = git_credentials.issue(
                session,
                self.snapshot.account_id,
                self.snapshot.uuid,
                self.root / "plan",
                f"{self._root_in_runner}/plan",
            )
        self._git_credential_issued = True
        self.log.mask([issued.password])
        self.variables.update(issued.variables)

    def _fetch_secondary_sources(self) -> dict[str, str]:
        """Fetch each secondary source into its own directory; returns identifier -> dir."""
        document = self.snapshot.document
        versions = {
            entry.get("sourceIdentifier"): entry.get("sourceVersion")
            for entry in document.get("secondarySourceVersions", [])
        }
        directories: dict[str, str] = {}
        resolved: list[dict[str, str]] = []
        for source in document.get("secondarySources", []):
            identifier = source.get("sourceIdentifier") or ""
            fetched = sources.fetch_source(
                self.settings,
                self.snapshot.account_id,
                self.snapshot.region,
                source,
                versions.get(identifier),
                self.root / f"src_{identifier}",
                want_buildspec=False,
            )
            directories[identifier] = f"{self._root_in_runner}/src_{identifier}"
            if fetched.resolved_version:
                resolved.append(
                    {"sourceIdentifier": identifier, "sourceVersion": fetched.resolved_version}
                )
        if resolved:
            self.results["resolvedSecondarySourceVersions"] = resolved
        for identifier, path in self.local.secondary_sources:
            try:
                workspace.copy_source(path, self.root / f"src_{identifier}")
            except OSError as exc:
                raise sources.SourceError(
                    "CLIENT_ERROR", f"could not copy secondary source {identifier} ({path}): {exc}"
                ) from exc
            directories[identifier] = f"{self._root_in_runner}/src_{identifier}"
        return directories

    def _built_ins(self, resolved: str | None, secondary_dirs: dict[str, str]) -> dict[str, str]:
        snapshot = self.snapshot
        document = snapshot.document
        source = document.get("source", {})
        facts = build_environment.BuildFacts(
            build_id=snapshot.build_id,
            build_arn=snapshot.arn,
            build_number=snapshot.build_number,
            project_name=snapshot.project_name,
            image=document.get("environment", {}).get("image", ""),
            initiator=snapshot.initiator or "",
            region=snapshot.region,
            account_id=snapshot.account_id,
            start_time=snapshot.start,
            source_version=document.get("sourceVersion") or resolved,
            source_repo_url=source.get("location"),
            kms_key_id=document.get("encryptionKey"),
            log_stream=snapshot.log_stream,
            public_url=self.settings.public_url or None,
        )
        variables = build_environment.built_in_variables(facts)
        variables["CODEBUILD_SRC_DIR"] = f"{self._root_in_runner}/src"
        if resolved:
            variables["CODEBUILD_RESOLVED_SOURCE_VERSION"] = resolved
        for identifier, directory in secondary_dirs.items():
            variables[f"CODEBUILD_SRC_DIR_{identifier}"] = directory
        return variables

    # ------------------------------------------------------------ INSTALL .. POST_BUILD

    def before_phase(self, phase_type: str) -> StepOutcome:
        assert self.plan is not None
        if phase_type != INSTALL:
            return None
        problem = workspace.runtime_problem(self.uses_image, self.local_image, self.plan)
        if problem is not None:
            return Failure("CLIENT_ERROR", problem)
        script = workspace.cache_restore(self.settings, self.snapshot, self.plan, self.root)
        if script is not None:
            self._run_script(script)
        return None

    def phase_command(self, phase_type: str) -> PhaseCommand | None:
        assert self.plan is not None
        phase = self.plan.phase(phase_type)
        if not phase.commands and not phase.finally_commands:
            return None
        if phase.run_as:
            # The phase's user must write the shared session state and the sources.
            workspace.open_to_other_users(self.root, first_time=not self._opened_up)
            self._opened_up = True
        root = self._root_in_runner
        argv = workspace.phase_argv(root, self.plan.shell, phase.name)
        if self.uses_image:
            # The container's own cgroup counters say whether the phase hit a limit.
            argv = build_limits.counting_argv(argv, f"{root}/state/{_counters_file(phase.name)}")
        return PhaseCommand(argv, cwd=f"{root}/src", user=phase.run_as)

    def phase_outcome(self, phase_type: str, exit_status: int) -> StepOutcome:
        assert self.plan is not None
        phase = self.plan.phase(phase_type)
        status_file = self.root / "state" / phase.status_file
        status_text = status_file.read_text() if status_file.exists() else ""
        limit = self._limit_hit(phase.name)
        if limit is not None:
            return limit
        outcome = evaluate_phase(phase, status_text)
        if outcome.succeeded and exit_status == 0:
            return None
        code, message = outcome.failure_context or (
            "COMMAND_EXECUTION_ERROR",
            f"Error while executing the {phase.name} phase. Reason: exit status {exit_status}",
        )
        return Failure(code, message)

    def _limit_hit(self, phase_name: str) -> Failure | None:
        """A Failure when the container ran out of memory or processes during the phase."""
        if not self.uses_image:
            return None
        counters = build_limits.read_counters(self.root / "state" / _counters_file(phase_name))
        if not counters:
            return None
        before, self._limit_counters = self._limit_counters, counters
        found = build_limits.limit_failure(
            before,
            counters,
            memory_bytes=self.memory_bytes,
            compute_type=self.compute_type,
            pids_limit=self.settings.build_pids_limit,
        )
        return None if found is None else Failure(*found)

    def check_disk(self) -> Failure | None:
        limit = self.settings.build_disk_limit_bytes
        if limit <= 0 or not self.root.is_dir():
            return None
        used = build_limits.directory_bytes(self.root)
        if used <= limit:
            return None
        return Failure(build_limits.DISK_LIMIT_EXCEEDED, build_limits.disk_message(used, limit))

    def _run_script(self, script: str) -> None:
        assert self.session is not None
        root = self._root_in_runner
        self.session.run(
            ["sh", f"{root}/plan/{script}"], cwd=f"{root}/src", on_output=self.log.write
        )

    # ------------------------------------------------------------ UPLOAD_ARTIFACTS, FINALIZING

    def upload_artifacts(self, interrupted: bool) -> StepOutcome:
        if self.plan is None:
            return None
        if self.local.report_dir is not None:
            workspace.copy_report_files(self.plan, self.root, self.local.report_dir, self.log)
        if self.session is not None and not interrupted:
            script = workspace.cache_save_script(self.settings, self.snapshot, self.plan, self.root)
            if script is not None:
                self._run_script(script)
                try:
                    workspace.cache_persist(self.settings, self.snapshot, self.plan, self.root)
                except CacheError as exc:
                    # As on AWS, a cache that cannot be saved does not fail the build.
                    self.log.note(f"Cache not saved: {exc.message}")
        self.results["reportArns"] = workspace.ingest_reports(
            self.settings, self.sessions, self.snapshot, self.plan, self.root, self.log
        )
        try:
            self.results.update(
                workspace.upload_artifacts(
                    self.settings, self.snapshot, self.plan, self.root, self.variables
                )
            )
        except workspace.ArtifactError as exc:
            return Failure(exc.code, exc.message)
        return None

    def finalize(self) -> StepOutcome:
        if self.plan is not None and self.plan.exported_variables:
            self.results["exportedEnvironmentVariables"] = workspace.exported_variables(
                self.root, self.plan, self.variables
            )
        if self._log is not None:
            self.results["logs"] = self._log.finish(self.snapshot)
        return None

    def tear_down(self) -> None:
        if self._git_credential_issued:
            try:
                with self.sessions.begin() as session:
                    git_credentials.revoke(session, self.snapshot.account_id, self.snapshot.uuid)
            except Exception:
                logger.warning("could not revoke the git credential of %s", self.snapshot.build_id)
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _counters_file(phase_name: str) -> str:
    return f"limits-{phase_name}"


def _strip_code(message: str, code: str) -> str:
    for prefix in (f"{code}: ", f"{code} Message: ", f"{code} "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
