"""Helpers for tests that run real CodeBuild builds against a real server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.server import ForgelineServer, running_server

TINY_IMAGE = "forgeline/tiny:latest"
SERVICE_ROLE = "arn:aws:iam::000000000000:role/forgeline-build"


def build_server(
    tmp_path_factory: Any, runner: str = "docker", **env: str
) -> Iterator[ForgelineServer]:
    """A server for build tests: builds run on `runner`; a build "minute" lasts one second,
    so timeout rules can be tested in seconds."""
    extra = {"FORGELINE_BUILD_RUNNER": runner, "FORGELINE_BUILD_MINUTE_SECONDS": "1", **env}
    with running_server(tmp_path_factory.mktemp(f"builds-{runner}"), extra_env=extra) as server:
        yield server


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_project(
    codebuild: Any,
    buildspec: str | None = None,
    *,
    name: str | None = None,
    source: dict[str, Any] | None = None,
    image: str = TINY_IMAGE,
    **extra: Any,
) -> str:
    name = name or unique("p")
    if source is None:
        source = {"type": "NO_SOURCE", "buildspec": buildspec or ""}
    elif buildspec is not None:
        source = {**source, "buildspec": buildspec}
    environment = extra.pop(
        "environment",
        {"type": "LINUX_CONTAINER", "image": image, "computeType": "BUILD_GENERAL1_SMALL"},
    )
    codebuild.create_project(
        name=name,
        source=source,
        artifacts=extra.pop("artifacts", {"type": "NO_ARTIFACTS"}),
        environment=environment,
        serviceRole=SERVICE_ROLE,
        **extra,
    )
    return name


def wait_for_build(codebuild: Any, build_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        if build["buildComplete"]:
            return build
        if time.monotonic() > deadline:
            raise AssertionError(f"build {build_id} did not finish: {build['currentPhase']}")
        time.sleep(0.1)


def run_build(codebuild: Any, project: str, **params: Any) -> dict[str, Any]:
    build = codebuild.start_build(projectName=project, **params)["build"]
    return wait_for_build(codebuild, build["id"])


def phases_of(build: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {phase["phaseType"]: phase for phase in build["phases"]}


def phase_statuses(build: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(phase["phaseType"], phase.get("phaseStatus")) for phase in build["phases"]]


def log_lines(server: ForgelineServer, build: dict[str, Any]) -> list[str]:
    logs = server.client("logs")
    group, stream = build["logs"]["groupName"], build["logs"]["streamName"]
    lines: list[str] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream,
            "startFromHead": True,
        }
        if token:
            kwargs["nextToken"] = token
        page = logs.get_log_events(**kwargs)
        lines += [event["message"] for event in page["events"]]
        if page["nextForwardToken"] == token or not page["events"]:
            return lines
        token = page["nextForwardToken"]


def output_lines(server: ForgelineServer, build: dict[str, Any]) -> list[str]:
    """The build's own output, without the engine's [Container] lines."""
    return [line for line in log_lines(server, build) if not line.startswith("[Container]")]


def context_of(build: dict[str, Any], phase: str) -> str:
    contexts = phases_of(build)[phase].get("contexts") or []
    return " | ".join(f"{c['statusCode']}: {c['message']}" for c in contexts)


def write_tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
