"""`forgeline deploy-local`: run a bundle's lifecycle on this host with no server, as AWS's
`codedeploy-local` does. Each run is a new deployment (`d-XXXXXXXXX-local`) of one local
deployment group, so ApplicationStop runs the last revision a previous run installed and
Install removes that revision's files first."""

from __future__ import annotations

import dataclasses
import re
import secrets
import string
from collections.abc import Callable
from pathlib import Path

from forgeline.codedeploy.agent import events
from forgeline.codedeploy.agent.command_executor import CommandExecutor
from forgeline.codedeploy.agent.layout import Layout
from forgeline.codedeploy.agent.results import CommandResult
from forgeline.codedeploy.agent.spec import DeploymentSpec, LocalRevision

DEFAULT_DEPLOYMENT_GROUP = "default-local-deployment-group"
LOCAL_TYPES = ("tar", "tgz", "zip", "directory")
_EVENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


class LocalDeployError(ValueError):
    """The command line cannot be run (exit 2)."""


@dataclasses.dataclass(frozen=True)
class LocalOptions:
    bundle_location: Path
    root_dir: Path
    bundle_type: str | None = None  # inferred from the location when None
    events: tuple[str, ...] | None = None
    file_exists_behavior: str | None = None
    deployment_group: str = DEFAULT_DEPLOYMENT_GROUP
    appspec_filename: str | None = None


@dataclasses.dataclass(frozen=True)
class LocalOutcome:
    deployment_dir: Path
    results: tuple[tuple[str, CommandResult], ...]

    @property
    def succeeded(self) -> bool:
        return all(result.succeeded for _, result in self.results)


def run_local(options: LocalOptions, echo: Callable[[str], None]) -> LocalOutcome:
    ordered = check_events(options.events)
    spec = build_spec(options)
    layout = Layout(options.root_dir)
    executor = CommandExecutor(layout)
    echo(
        f"deployment {spec.deployment_id} of {options.bundle_location} "
        f"(group {spec.deployment_group_name}, logs in {layout.deployment_dir(spec)})"
    )
    results: list[tuple[str, CommandResult]] = []
    for event in ordered:
        result = executor.execute(event, spec)
        results.append((event, result))
        if result.succeeded:
            echo(f"{event}: Succeeded")
            continue
        echo(f"{event}: Failed ({result.error_code.name}) {result.message}")
        if result.log:
            echo(result.log.rstrip("\n"))
        break
    return LocalOutcome(layout.deployment_dir(spec), tuple(results))


def check_events(wanted: tuple[str, ...] | None) -> tuple[str, ...]:
    """The events to run, in order; refuses an order in which a hook of the new revision
    would come before the bundle is downloaded or installed (AWS's rules)."""
    if not wanted:
        return events.LOCAL_DEFAULT_EVENTS
    for name in wanted:
        if not _EVENT_NAME.fullmatch(name):
            raise LocalDeployError(f"{name!r} is not a lifecycle event name")
    new_revision = [name for name in wanted if not events.runs_previous_revision(name)]
    before_download = _before(wanted, events.DOWNLOAD_BUNDLE)
    misplaced = [
        name for name in before_download if name in new_revision and name != events.DOWNLOAD_BUNDLE
    ]
    if misplaced:
        raise LocalDeployError(
            f"{', '.join(misplaced)} use the new revision, so they must come after "
            f"DownloadBundle (only {', '.join(sorted(events.PREVIOUS_REVISION_EVENTS))} may "
            "come before it)"
        )
    if events.INSTALL in wanted:
        early = [
            name
            for name in _before(wanted, events.INSTALL)
            if name in new_revision and name not in (events.DOWNLOAD_BUNDLE, "BeforeInstall")
        ]
        if early:
            raise LocalDeployError(f"{', '.join(early)} must come after Install")
    return tuple(wanted)


def _before(wanted: tuple[str, ...], marker: str) -> list[str]:
    if marker not in wanted:
        return list(wanted)
    return list(wanted[: wanted.index(marker)])


def build_spec(options: LocalOptions) -> DeploymentSpec:
    location = options.bundle_location.expanduser().absolute()
    if not location.exists():
        raise LocalDeployError(f"bundle location {location} does not exist")
    bundle_type = options.bundle_type or infer_bundle_type(location)
    if bundle_type not in LOCAL_TYPES:
        raise LocalDeployError(
            f"--type must be one of {', '.join(LOCAL_TYPES)}, not {bundle_type!r}"
        )
    if bundle_type == "directory" and not location.is_dir():
        raise LocalDeployError(f"{location} is a file, but the bundle type is directory")
    if bundle_type != "directory" and location.is_dir():
        raise LocalDeployError(f"{location} is a directory, but the bundle type is {bundle_type}")
    group_id = _identifier(options.deployment_group)
    return DeploymentSpec(
        deployment_id=f"d-{_random_id()}-local",
        deployment_group_id=group_id,
        deployment_group_name=options.deployment_group,
        application_name=_identifier(location.name),
        revision=LocalRevision(location=str(location), bundle_type=bundle_type),
        deployment_creator="user",
        file_exists_behavior=options.file_exists_behavior,
        appspec_filename=options.appspec_filename,
    )


def infer_bundle_type(location: Path) -> str:
    if location.is_dir():
        return "directory"
    name = location.name.lower()
    if name.endswith((".tgz", ".tar.gz")):
        return "tgz"
    for kind in ("zip", "tar"):
        if name.endswith("." + kind):
            return kind
    raise LocalDeployError(f"cannot tell the bundle type of {location.name}: give --type")


def _identifier(text: str) -> str:
    """A name made safe to be a directory name (AWS's local runs do `.` → `-`)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
    return cleaned[:100] or "local"


def _random_id() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(9))
