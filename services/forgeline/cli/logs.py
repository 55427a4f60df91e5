"""`forgeline logs tail`: a build's log through the server's CloudWatch Logs API, as
`aws logs tail` (AWS CLI v2 only) would show it, with what a Forgeline install has."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from forgeline.cli.boundary import CliError, Group
from forgeline.cli.profile import credential_options, load

DEFAULT_ENDPOINT = "http://127.0.0.1:4750"
# After the build ends, its last lines may still be on their way to the store (the log
# writer stores in batches a tenth of a second apart, and its last one at tear-down).
SETTLE_SECONDS = 1.0


@click.group("logs", cls=Group)
def logs_group() -> None:
    """Build logs (CloudWatch Logs, group /aws/codebuild/<project>)."""


def _clients(endpoint_url: str, credentials_file: Path | None, profile: str, region: str | None):
    import boto3
    from botocore.config import Config

    keys = load(credentials_file, profile, region)
    session = boto3.Session(
        aws_access_key_id=keys.access_key_id,
        aws_secret_access_key=keys.secret_access_key,
        aws_session_token=keys.session_token,
        region_name=keys.region,
    )
    config = Config(retries={"max_attempts": 3, "mode": "standard"})
    return (
        session.client("codebuild", endpoint_url=endpoint_url, config=config),
        session.client("logs", endpoint_url=endpoint_url, config=config),
    )


class LogReader:
    """Reads one log stream forward from its start, page by page."""

    def __init__(self, logs: Any, group: str, stream: str) -> None:
        self.logs, self.group, self.stream = logs, group, stream
        self.token: str | None = None

    def read_new(self, emit: Callable[[str], None]) -> int:
        """Emit every event stored since the last call; the number emitted."""
        emitted = 0
        while True:
            params: dict[str, Any] = {
                "logGroupName": self.group,
                "logStreamName": self.stream,
                "startFromHead": True,
            }
            if self.token:
                params["nextToken"] = self.token
            try:
                page = self.logs.get_log_events(**params)
            except self.logs.exceptions.ResourceNotFoundException:
                return emitted  # a build that has not started has no stream yet
            for event in page["events"]:
                emit(event["message"])
            emitted += len(page["events"])
            if not page["events"] or page["nextForwardToken"] == self.token:
                return emitted
            self.token = page["nextForwardToken"]


def _build(codebuild: Any, build_id: str) -> dict[str, Any]:
    found = codebuild.batch_get_builds(ids=[build_id])
    if not found["builds"]:
        raise CliError(f"build {build_id} does not exist")
    return found["builds"][0]


@logs_group.command("tail")
@click.argument("build_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the build ends.")
@click.option(
    "--endpoint-url", default=DEFAULT_ENDPOINT, show_default=True, help="The Forgeline server."
)
@credential_options
@click.option(
    "--interval", type=float, default=0.5, show_default=True, help="Seconds between polls."
)
def tail(
    build_id: str,
    follow: bool,
    endpoint_url: str,
    credentials_file: Path | None,
    profile: str,
    region: str | None,
    interval: float,
) -> None:
    """Print a build's log; with --follow, until the build ends (exit 0 if it SUCCEEDED).

    BUILD_ID is `<project>:<uuid>`, as StartBuild returns it.
    """
    codebuild, logs = _clients(endpoint_url, credentials_file, profile, region)
    build = _build(codebuild, build_id)
    project, _, uuid = build_id.partition(":")
    location = build.get("logs") or {}
    reader = LogReader(
        logs,
        location.get("groupName") or f"/aws/codebuild/{project}",
        location.get("streamName") or uuid,
    )
    reader.read_new(click.echo)
    if not follow:
        return
    while build["buildStatus"] == "IN_PROGRESS":
        time.sleep(interval)
        reader.read_new(click.echo)
        build = _build(codebuild, build_id)
    settle_until = time.monotonic() + SETTLE_SECONDS
    while reader.read_new(click.echo) or time.monotonic() < settle_until:
        time.sleep(min(interval, SETTLE_SECONDS))
    if build["buildStatus"] != "SUCCEEDED":
        raise CliError(f"build {build_id} ended {build['buildStatus']}")
