"""One function per command name: DownloadBundle, Install, and the hook events.

`CommandExecutor.execute` never raises: whatever goes wrong becomes a CommandResult with
AWS's error code (a problem that is not a script's, such as a bundle that cannot be
read or a file Install may not replace, is UnknownError with the reason as its message).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from forgeline.codedeploy.agent import bundle, events, install
from forgeline.codedeploy.agent.appspec import AppSpec, AppSpecError, parse_appspec
from forgeline.codedeploy.agent.hooks import HookRun, run_scripts
from forgeline.codedeploy.agent.layout import Layout, archive_of
from forgeline.codedeploy.agent.results import (
    CommandFailed,
    CommandResult,
    succeeded,
    unknown_error,
)
from forgeline.codedeploy.agent.spec import (
    DeploymentSpec,
    GitHubRevision,
    LocalRevision,
    S3Revision,
)

log = logging.getLogger("forgeline.agent")

# Fetches an S3 revision's bundle into the given file (the agent's S3 client does it).
S3Fetcher = Callable[[S3Revision, Path], None]
# How many of a deployment group's revisions stay on disk, as AWS's agent's :max_revisions:.
DEFAULT_MAX_REVISIONS = 5


class CommandExecutor:
    def __init__(
        self,
        layout: Layout,
        *,
        s3_fetcher: S3Fetcher | None = None,
        max_revisions: int = DEFAULT_MAX_REVISIONS,
        destination_root: Path | None = None,
    ) -> None:
        self.layout = layout
        self.destination_root = destination_root
        self.s3_fetcher = s3_fetcher
        self.max_revisions = max_revisions
        self._commands: dict[str, Callable[[str, DeploymentSpec], CommandResult]] = {
            events.DOWNLOAD_BUNDLE: self.download_bundle,
            events.INSTALL: self.install,
        }

    def execute(self, command_name: str, spec: DeploymentSpec) -> CommandResult:
        command = self._commands.get(command_name, self.run_hook)
        try:
            self.layout.deployment_dir(spec).mkdir(parents=True, exist_ok=True)
            return command(command_name, spec)
        except CommandFailed as exc:
            return exc.result
        except (
            OSError,
            bundle.BundleError,
            AppSpecError,
            install.InstallError,
        ) as exc:
            return unknown_error(_describe(exc))
        except Exception as exc:  # noqa: BLE001 - reported to the server, never lost
            log.exception("%s failed unexpectedly", command_name)
            return unknown_error(f"{type(exc).__name__}: {exc}")

    def is_noop(self, command_name: str, spec: DeploymentSpec) -> bool:
        """A hook event with no scripts to run (what the acknowledgement reports)."""
        if command_name in events.AGENT_STEPS:
            return False
        try:
            found = self._hook_revision(command_name, spec)
            return found is None or not found[1].scripts_for(command_name)
        except (CommandFailed, OSError, bundle.BundleError, AppSpecError):
            return False  # running it will report what is wrong

    # -- DownloadBundle --------------------------------------------------------------------
    def download_bundle(self, command_name: str, spec: DeploymentSpec) -> CommandResult:
        self.layout.prune_old_archives(spec, self.max_revisions)
        archive = self.layout.archive_dir(spec)
        revision = spec.revision
        if isinstance(revision, LocalRevision) and revision.bundle_type == "directory":
            bundle.copy_directory_bundle(Path(revision.location), archive)
        else:
            bundle_file = self.layout.bundle_file(spec)
            self._fetch(revision, bundle_file)
            bundle.extract_bundle(bundle_file, revision.bundle_type, archive)
        bundle.hoist_nested_root(archive)
        # Read now, so a broken appspec fails here with its reason rather than later.
        parse_appspec(bundle.appspec_file(archive, spec.appspec_filename).read_bytes())
        self.layout.record_most_recent_install(spec)
        return succeeded()

    def _fetch(self, revision: S3Revision | LocalRevision | GitHubRevision, target: Path) -> None:
        if isinstance(revision, S3Revision):
            if self.s3_fetcher is None:
                raise CommandFailed(unknown_error("this agent has no S3 endpoint to fetch from"))
            self.s3_fetcher(revision, target)
        elif isinstance(revision, LocalRevision):
            shutil.copyfile(revision.location, target)
        else:
            raise CommandFailed(
                unknown_error(
                    "GitHub revisions are not supported: this agent fetches bundles from S3 "
                    "or from local paths"
                )
            )

    # -- Install ---------------------------------------------------------------------------
    def install(self, command_name: str, spec: DeploymentSpec) -> CommandResult:
        archive = self._downloaded_archive(spec)
        appspec = parse_appspec(bundle.appspec_file(archive, spec.appspec_filename).read_bytes())
        behavior = spec.file_exists_behavior or appspec.file_exists_behavior or "DISALLOW"
        install.install(
            archive,
            appspec,
            behavior,
            self.layout.cleanup_file(spec.deployment_group_id),
            self.destination_root,
        )
        self.layout.record_last_successful_install(spec)
        return succeeded()

    # -- hook events -----------------------------------------------------------------------
    def run_hook(self, event: str, spec: DeploymentSpec) -> CommandResult:
        found = self._hook_revision(event, spec)
        if found is None:
            return succeeded("no revision has been installed yet")
        deployment_dir, appspec = found
        run = HookRun(
            event=event,
            archive_dir=archive_of(deployment_dir),
            environment=spec.hook_environment(event),
            log_file=self.layout.script_log(deployment_dir),
        )
        return run_scripts(run, appspec.scripts_for(event))

    def _hook_revision(self, event: str, spec: DeploymentSpec) -> tuple[Path, AppSpec] | None:
        """The deployment dir whose scripts `event` runs, with its appspec; None when the
        event runs the last successful revision and there is none yet (a first deploy)."""
        deployment_dir = self.layout.deployment_dir(spec)
        if events.runs_previous_revision(event) and not archive_of(deployment_dir).is_dir():
            previous = self.layout.last_successful_install(spec.deployment_group_id)
            if previous is None or not archive_of(previous).is_dir():
                return None
            deployment_dir = previous
        else:
            self._downloaded_archive(spec)
        archive = archive_of(deployment_dir)
        return deployment_dir, parse_appspec(
            bundle.appspec_file(archive, spec.appspec_filename).read_bytes()
        )

    def _downloaded_archive(self, spec: DeploymentSpec) -> Path:
        archive = self.layout.archive_dir(spec)
        if not archive.is_dir():
            raise CommandFailed(
                unknown_error(
                    f"the bundle of deployment {spec.deployment_id} is not on this host: "
                    "DownloadBundle has not run"
                )
            )
        return archive


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if isinstance(exc, AppSpecError):
        return f"the appspec cannot be used: {exc}"
    return str(exc)
