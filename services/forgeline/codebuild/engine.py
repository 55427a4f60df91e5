"""Run one claimed build from PROVISIONING to COMPLETED.

The engine drives the pure phase state machine (phases.py): each phase's work returns an
event, the machine says where to go next, and every transition is written to the build
row (so BatchGetBuilds shows live phases) with a "Build Phase Change" event. The work
itself is delegated: a runner provides the container or host sandbox, sources.py fetches,
artifacts.py/cache.py/reports collect, the log writer streams output.

A watcher thread polls for StopBuild and the build timeout; either stops the runner, and
the interrupted phase ends STOPPED or TIMED_OUT before FINALIZING cleans up.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
from dataclasses import replace
from typing import Any

from forgeline.codebuild import aws_images, builds, git_credentials, images, scheduler, sources
from forgeline.codebuild import build_workspace as workspace
from forgeline.codebuild import environment as build_environment
from forgeline.codebuild import events as build_events
from forgeline.codebuild.build_log import BuildLog, LineEcho, open_log
from forgeline.codebuild.buildspec import BuildspecError, parse_buildspec
from forgeline.codebuild.phases import (
    BUILDSPEC_PHASES,
    DOWNLOAD_SOURCE,
    FINALIZING,
    INSTALL,
    PROVISIONING,
    UPLOAD_ARTIFACTS,
    BuildFinished,
    BuildState,
    EnterPhase,
    Event,
    PhaseContext,
    PhaseFailed,
    PhaseSucceeded,
    StopRequested,
    StopWork,
    TimedOut,
    next_phase,
)
from forgeline.codebuild.plan import BuildPlan, PhasePlan, compile_plan, evaluate_phase
from forgeline.codebuild.runners import (
    UNABLE_TO_PULL_IMAGE,
    RunInterrupted,
    RunnerError,
    RunSpec,
    choose_runner,
)
from forgeline.codebuild.secret_values import SecretResolutionError
from forgeline.codebuild.tables.builds import Build
from forgeline.core.db import get_sessionmaker, utcnow
from forgeline.core.settings import Settings, builds_root
from forgeline.core.work.jobs import Heartbeat

logger = logging.getLogger(__name__)

WATCH_INTERVAL_SECONDS = 0.25
# computeType -> (CPUs, memory): AWS's published sizes, capped by what this machine has.
COMPUTE_SIZES: dict[str, tuple[float, int]] = {
    "BUILD_GENERAL1_SMALL": (2, 3 * 1024**3),
    "BUILD_GENERAL1_MEDIUM": (4, 7 * 1024**3),
    "BUILD_GENERAL1_LARGE": (8, 15 * 1024**3),
    "BUILD_GENERAL1_XLARGE": (36, 70 * 1024**3),
    "BUILD_GENERAL1_2XLARGE": (72, 145 * 1024**3),
}


class BuildRun:
    def __init__(self, settings: Settings, build_id: str, heartbeat: Heartbeat) -> None:
        self.settings = settings
        self.build_id = build_id
        self.heartbeat = heartbeat
        self.sessions = get_sessionmaker(settings.resolved_database_url)
        self.runner = choose_runner(settings)
        self.runner_session: Any = None
        self.local_image = ""  # the image the runner started (AWS names are mapped)
        self.plan: BuildPlan | None = None
        self.variables: dict[str, str] = {}
        self.results: dict[str, Any] = {}
        self.log: BuildLog | None = None
        self.state: BuildState | None = None
        self._interrupt: Event | None = None
        self._interrupt_used = False
        self._opened_up = False
        self._git_credential_issued = False
        self._lock = threading.Lock()
        self._done = threading.Event()
        # Receives each log line as it is written (`forgeline build-local`); None on servers.
        self.log_echo: LineEcho | None = None

    # ------------------------------------------------------------ the run

    def run(self) -> None:
        with self.sessions.begin() as session:
            build = session.get(Build, self.build_id)
            if build is None or build.build_complete:
                return
            if scheduler.lost_before(build):
                scheduler.end_lost_build(session, build)
                self.runner.remove_build_container(self.build_id)
                shutil.rmtree(builds_root(self.settings) / build.uuid, ignore_errors=True)
                return
            self.snapshot = _Snapshot.of(build)
            self.state = BuildState(
                phases=tuple(builds.phase_from_json(data) for data in build.phases)
            )
        self.root = builds_root(self.settings) / self.snapshot.uuid
        watcher = threading.Thread(target=self._watch, name="build-watch", daemon=True)
        try:
            self.log = open_log(self.settings, self.snapshot, self.log_echo)
            watcher.start()
            self._advance(PhaseSucceeded(utcnow()))
            while self.state is not None and not self.state.build_complete:
                self._advance(self._work(self.state.current_phase))
        finally:
            self._done.set()
            if self.state is not None and self.state.build_complete:
                # Removing a container takes a few hundred milliseconds: the build is
                # over, so its slot goes to the next build while that happens.
                threading.Thread(target=self._tear_down, name="build-teardown").start()
            else:
                self._tear_down()

    def _tear_down(self) -> None:
        self._release()
        if self._git_credential_issued:
            try:
                with self.sessions.begin() as session:
                    git_credentials.revoke(session, self.snapshot.account_id, self.snapshot.uuid)
            except Exception:
                logger.warning("could not revoke the git credential of %s", self.build_id)
        if self.log is not None:
            self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _work(self, phase: str) -> Event:
        pending = self._take_interrupt()
        if pending is not None:
            return pending
        try:
            event = self._phase_work(phase)
        except RunInterrupted:
            event = PhaseFailed(utcnow())
        pending = self._take_interrupt()
        return pending if pending is not None else event

    def _phase_work(self, phase: str) -> Event:
        if phase == PROVISIONING:
            return self._provision()
        if phase == DOWNLOAD_SOURCE:
            return self._download_source()
        if phase in BUILDSPEC_PHASES:
            return self._buildspec_phase(phase)
        if phase == UPLOAD_ARTIFACTS:
            return self._upload_artifacts()
        if phase == FINALIZING:
            return self._finalize()
        return PhaseSucceeded(utcnow())

    # ------------------------------------------------------------ transitions

    def _advance(self, event: Event) -> None:
        assert self.state is not None
        with self._lock:
            self.state, effects = next_phase(self.state, event)
        finished = self.state.phases[-2] if len(self.state.phases) > 1 else None
        if finished is not None and self.log is not None:
            self.log.phase_complete(finished)
        for effect in effects:
            if isinstance(effect, StopWork) and self.runner_session is not None:
                self.runner_session.stop()
        with self.sessions.begin() as session:
            build = session.get(Build, self.build_id)
            assert build is not None
            build.phases = [builds.phase_to_json(record) for record in self.state.phases]
            build.current_phase = self.state.current_phase
            build.results = dict(self.results)
            if finished is not None:
                build_events.publish_phase_change(session, build, finished)
            for effect in effects:
                if isinstance(effect, BuildFinished):
                    builds.finish(session, build, effect.build_status, utcnow())
        for effect in effects:
            if isinstance(effect, EnterPhase) and self.log is not None:
                self.log.entering(effect.phase_type)

    def _take_interrupt(self) -> Event | None:
        with self._lock:
            if self._interrupt is None or self._interrupt_used:
                return None
            self._interrupt_used = True
            return self._interrupt

    def _watch(self) -> None:
        """Turn StopBuild and the build timeout into an interrupt of the running phase."""
        minutes = self.snapshot.document.get("timeoutInMinutes", 60)
        deadline = self.snapshot.start + dt.timedelta(
            seconds=minutes * self.settings.build_minute_seconds
        )
        while not self._done.wait(WATCH_INTERVAL_SECONDS):
            event: Event | None = None
            now = utcnow()
            if self.heartbeat.lost:
                # Another worker may own the build now: stop working on it at once.
                self.abort("This worker lost the build's lease before the build ended.")
                return
            if now >= deadline:
                event = TimedOut(now, (PhaseContext("BUILD_TIMED_OUT", "Build has timed out. "),))
            elif self._stop_requested():
                event = StopRequested(now)
            if event is None:
                continue
            with self._lock:
                if self._interrupt is None:
                    self._interrupt = event
            if self.runner_session is not None:
                self.runner_session.stop()
            return

    def abort(self, message: str) -> None:
        """End the build soon, as a fault: its worker is shutting down (any thread)."""
        event = PhaseFailed(utcnow(), (PhaseContext("BUILD_WORKER_STOPPED", message),), fault=True)
        with self._lock:
            if self._interrupt is None:
                self._interrupt = event
        session = self.runner_session
        if session is not None:
            session.stop()

    def _stop_requested(self) -> bool:
        try:
            with self.sessions() as session:
                build = session.get(Build, self.build_id)
                return bool(build is not None and build.stop_requested)
        except Exception:
            logger.warning("could not read the stop flag of %s", self.build_id, exc_info=True)
            return False

    # ------------------------------------------------------------ phases

    def _provision(self) -> Event:
        environment = self.snapshot.document.get("environment", {})
        image = environment.get("image") or ""
        cpus, memory = COMPUTE_SIZES.get(
            environment.get("computeType", ""), COMPUTE_SIZES["BUILD_GENERAL1_SMALL"]
        )
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        for part in ("src", "plan", "state"):
            (self.root / part).mkdir(parents=True, exist_ok=True)
        try:
            choice = self._local_image(image)
        except aws_images.ImageMapError as exc:
            return PhaseFailed(
                utcnow(), (PhaseContext("SERVER_CONFIGURATION_ERROR", str(exc)),), fault=True
            )
        self.local_image = choice.local
        spec = RunSpec(
            build_id=self.build_id,
            root=self.root,
            image=choice.local,
            env=workspace.base_environment(self.runner.name, self.root),
            cpus=workspace.cap_cpus(cpus),
            memory_bytes=workspace.cap_memory(memory),
            privileged=bool(environment.get("privilegedMode")),
            network="host",
        )
        try:
            self.runner_session = self.runner.prepare(spec)
        except RunnerError as exc:
            message = exc.message
            if exc.code == UNABLE_TO_PULL_IMAGE and choice.mapped:
                message = choice.missing_message()
            return PhaseFailed(utcnow(), (PhaseContext(exc.code, message),), fault=exc.fault)
        assert self.log is not None
        shown = image or "(host)"
        if choice.mapped and self.runner.name != "host":
            shown = f"{image} (local image {choice.local})"
        self.log.note(f"Running on {self.runner.name} runner, image {shown}")
        return PhaseSucceeded(utcnow())

    def _local_image(self, image: str) -> aws_images.ImageChoice:
        """The image the runner starts for IMAGE (AWS's curated names map to local ones)."""
        if self.runner.name == "host":
            return aws_images.ImageChoice(image, image, False)
        overrides = aws_images.parse_image_map(self.settings.build_image_map)
        return aws_images.choose_local_image(image, overrides, images.image_present)

    def _download_source(self) -> Event:
        document = self.snapshot.document
        assert self.log is not None
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
            return self._failed(exc.code, exc.message)
        if fetched.buildspec_text is None:
            message = sources.missing_buildspec_message(self._src_in_runner(), fetched)
            return self._failed("YAML_FILE_ERROR", message)
        try:
            spec = parse_buildspec(fetched.buildspec_text)
        except BuildspecError as exc:
            return self._failed("YAML_FILE_ERROR", _strip_code(exc.message, "YAML_FILE_ERROR"))
        self.plan = compile_plan(spec)
        assert self.state is not None
        with self._lock:
            self.state = replace(
                self.state,
                on_failure={phase.phase_type: phase.on_failure for phase in self.plan.phases},
            )
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
            return self._failed(exc.status_code, exc.message)
        self.variables = assembled.variables
        self.log.mask(assembled.secrets)
        if self.plan.git_credential_helper:
            self._issue_git_credential()
        workspace.write_plan(self.root, self.plan, self.variables)
        return PhaseSucceeded(utcnow())

    def _issue_git_credential(self) -> None:
        assert self.log is not None
        with self.sessions.begin() as session:
            issued = git_credentials.issue(
                session,
                self.snapshot.account_id,
                self.snapshot.uuid,
                self.root / "plan",
                f"{self.runner_session.root_in_runner}/plan",
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
            directories[identifier] = f"{self.runner_session.root_in_runner}/src_{identifier}"
            if fetched.resolved_version:
                resolved.append(
                    {"sourceIdentifier": identifier, "sourceVersion": fetched.resolved_version}
                )
        if resolved:
            self.results["resolvedSecondarySourceVersions"] = resolved
        return directories

    def _src_in_runner(self) -> str:
        return f"{self.runner_session.root_in_runner}/src"

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
        variables["CODEBUILD_SRC_DIR"] = self._src_in_runner()
        if resolved:
            variables["CODEBUILD_RESOLVED_SOURCE_VERSION"] = resolved
        for identifier, directory in secondary_dirs.items():
            variables[f"CODEBUILD_SRC_DIR_{identifier}"] = directory
        return variables

    def _buildspec_phase(self, phase_type: str) -> Event:
        assert self.plan is not None
        phase = self.plan.phase(phase_type)
        if phase_type == INSTALL:
            problem = workspace.runtime_problem(self.runner.name, self.local_image, self.plan)
            if problem is not None:
                return self._failed("CLIENT_ERROR", problem)
            self._restore_cache()
        if not phase.commands and not phase.finally_commands:
            return PhaseSucceeded(utcnow())
        exit_status = self._run_phase_script(phase)
        status_file = self.root / "state" / phase.status_file
        status_text = status_file.read_text() if status_file.exists() else ""
        outcome = evaluate_phase(phase, status_text)
        if outcome.succeeded and exit_status == 0:
            return PhaseSucceeded(utcnow())
        context = outcome.failure_context or (
            "COMMAND_EXECUTION_ERROR",
            f"Error while executing the {phase.name} phase. Reason: exit status {exit_status}",
        )
        return self._failed(*context)

    def _run_phase_script(self, phase: PhasePlan) -> int:
        assert self.plan is not None and self.log is not None
        if phase.run_as:
            # The phase's user must write the shared session state and the sources.
            workspace.open_to_other_users(self.root, first_time=not self._opened_up)
            self._opened_up = True
        root = self.runner_session.root_in_runner
        argv = workspace.phase_argv(root, self.plan.shell, phase.name)
        return int(
            self.runner_session.run(
                argv, cwd=f"{root}/src", on_output=self.log.write, user=phase.run_as
            )
        )

    def _restore_cache(self) -> None:
        script = workspace.cache_restore(self.settings, self.snapshot, self.plan, self.root)
        if script is None or self.log is None:
            return
        root = self.runner_session.root_in_runner
        self.runner_session.run(
            ["sh", f"{root}/plan/{script}"], cwd=f"{root}/src", on_output=self.log.write
        )

    def _upload_artifacts(self) -> Event:
        assert self.log is not None
        if self.plan is None:
            return PhaseSucceeded(utcnow())
        if self.runner_session is not None and not self._interrupted():
            script = workspace.cache_save_script(self.settings, self.snapshot, self.plan, self.root)
            if script is not None:
                root = self.runner_session.root_in_runner
                self.runner_session.run(
                    ["sh", f"{root}/plan/{script}"], cwd=f"{root}/src", on_output=self.log.write
                )
                workspace.cache_persist(self.settings, self.snapshot, self.plan, self.root)
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
            return self._failed(exc.code, exc.message)
        return PhaseSucceeded(utcnow())

    def _finalize(self) -> Event:
        if self.plan is not None and self.plan.exported_variables:
            self.results["exportedEnvironmentVariables"] = workspace.exported_variables(
                self.root, self.plan, self.variables
            )
        if self.log is not None:
            self.results["logs"] = self.log.finish(self.snapshot)
        return PhaseSucceeded(utcnow())

    # ------------------------------------------------------------ helpers

    def _failed(self, code: str, message: str) -> Event:
        # The log shows the context once the phase completes (BuildLog.phase_complete).
        return PhaseFailed(utcnow(), (PhaseContext(code, message),))

    def _interrupted(self) -> bool:
        with self._lock:
            return self._interrupt is not None

    def _release(self) -> None:
        """Remove the container (or kill every process the build left behind)."""
        session, self.runner_session = self.runner_session, None
        if session is not None:
            try:
                session.cleanup()
            except Exception:
                logger.warning("could not clean up build %s", self.build_id, exc_info=True)


class _Snapshot:
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

    @classmethod
    def of(cls, build: Build) -> _Snapshot:
        return cls(build)


def _strip_code(message: str, code: str) -> str:
    for prefix in (f"{code}: ", f"{code} Message: ", f"{code} "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
