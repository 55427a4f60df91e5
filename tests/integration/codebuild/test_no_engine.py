"""With no Docker engine, a build never runs on the host unless told to: the default
runner (`auto`) refuses it as a FAULT that says how to start Docker or choose the host
runner. A real server whose DOCKER_HOST points at a socket nothing listens on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forgeline.codebuild.runners import ENGINE_UNAVAILABLE
from tests.support.builds import build_server, create_project, phases_of, run_build


@pytest.fixture(scope="module")
def server(tmp_path_factory: Any) -> Any:
    socket = tmp_path_factory.mktemp("no-engine") / "docker.sock"
    yield from build_server(tmp_path_factory, "auto", DOCKER_HOST=f"unix://{socket}")


def test_builds_are_refused_as_a_fault_and_nothing_runs_on_the_host(
    server: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-on-the-host"
    codebuild = server.client("codebuild")
    buildspec = f"version: 0.2\nphases:\n  build:\n    commands:\n      - touch {marker}\n"
    build = run_build(codebuild, create_project(codebuild, buildspec))
    assert build["buildStatus"] == "FAULT"
    provisioning = phases_of(build)["PROVISIONING"]
    assert provisioning["phaseStatus"] == "FAULT"
    [context] = provisioning["contexts"]
    assert context["statusCode"] == ENGINE_UNAVAILABLE
    message = context["message"]
    assert "No Docker engine answers" in message
    assert "Start Docker" in message and "FORGELINE_BUILD_RUNNER=host" in message
    assert "docker.errors" not in message and "Traceback" not in message
    assert "BUILD" not in phases_of(build)
    assert not marker.exists()


def test_the_server_warns_at_start(server: Any) -> None:
    [line] = [line for line in server.log().splitlines() if "build runner:" in line]
    assert '"level": "WARNING"' in line
    assert "no Docker engine answers" in line and "refused" in line
