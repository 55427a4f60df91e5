"""Acceptance: a worker killed mid-build leaves the build FAILED with a context saying why,
its container removed, and nothing IN_PROGRESS — real API server, separate worker and beat
processes, Redis as the broker, Docker for the build."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import redis

from tests.support import databases
from tests.support.builds import (
    context_of,
    create_project,
    wait_for_build,
)
from tests.support.server import running_server

pytestmark = pytest.mark.timeout(180)

LEASE_SECONDS = 3
REDIS_DB = {"postgres": 11, "sqlite": 12}[databases.backend()]


def test_a_killed_worker_fails_its_build_and_removes_the_container(
    tmp_path: Any, tiny_image: str
) -> None:
    broker = f"{databases.REDIS_URL}/{REDIS_DB}"
    try:
        redis.Redis.from_url(broker).flushdb()
    except redis.ConnectionError:
        pytest.skip("the multi-process test needs Redis as its broker")
    env = {
        "FORGELINE_WORKER": "external",
        "FORGELINE_BROKER_URL": broker,
        "FORGELINE_BROKER_QUEUE": f"forgeline-kill-{os.getpid()}",
        "FORGELINE_BUILD_RUNNER": "docker",
        "FORGELINE_LEASE_SECONDS": str(LEASE_SECONDS),
        "FORGELINE_REAP_INTERVAL_SECONDS": "0.5",
        "FORGELINE_LOG_LEVEL": "INFO",
    }
    with running_server(tmp_path, extra_env=env) as server:
        # With FORGELINE_WORKER=external the server started exactly one worker: the one
        # that will run the build, and die.
        (worker,) = [p for p in server.processes if p.args[-1] == "worker"]
        server._spawn("beat")
        codebuild = server.client("codebuild")
        project = create_project(
            codebuild, "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n"
        )
        build = codebuild.start_build(projectName=project)["build"]
        deadline = time.monotonic() + 60
        while codebuild.batch_get_builds(ids=[build["id"]])["builds"][0]["currentPhase"] != "BUILD":
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)

        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        killed_at = time.monotonic()
        server._spawn("worker")  # the survivor that notices and cleans up

        try:
            done = wait_for_build(codebuild, build["id"], timeout=60)
        except AssertionError as exc:
            lines = server.log_path.read_text(errors="replace").splitlines()
            relevant = [
                line
                for line in lines
                if "forgeline.api" not in line
                and (
                    "WARN" in line
                    or "ERROR" in line
                    or "reap" in line
                    or "dispatch" in line
                    or "Traceback" in line
                )
            ]
            raise AssertionError(f"{exc}\n" + "\n".join(relevant[-60:])) from None
        assert time.monotonic() - killed_at < LEASE_SECONDS * 2 + 15
        assert done["buildStatus"] == "FAILED"
        assert "BUILD_WORKER_LOST" in context_of(done, "BUILD")
        assert done["buildComplete"] is True

        import docker

        engine = docker.from_env()
        label = f"org.forgeline.build-id={build['id']}"
        deadline = time.monotonic() + 15
        while engine.containers.list(all=True, filters={"label": label}):
            assert time.monotonic() < deadline, "the lost build's container is still there"
            time.sleep(0.2)

        # The survivor runs new builds normally.
        after = codebuild.start_build(
            projectName=project,
            buildspecOverride="version: 0.2\nphases:\n  build:\n    commands:\n      - echo ok\n",
        )["build"]
        assert wait_for_build(codebuild, after["id"])["buildStatus"] == "SUCCEEDED"


def test_a_server_shut_down_mid_build_ends_it_and_removes_the_container(
    tmp_path: Any, tiny_image: str
) -> None:
    import docker

    from forgeline.codebuild.tables.builds import Build
    from forgeline.core.db import session_scope

    with running_server(tmp_path, extra_env={"FORGELINE_BUILD_RUNNER": "docker"}) as server:
        codebuild = server.client("codebuild")
        project = create_project(
            codebuild, "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n"
        )
        build = codebuild.start_build(projectName=project)["build"]
        deadline = time.monotonic() + 60
        while codebuild.batch_get_builds(ids=[build["id"]])["builds"][0]["currentPhase"] != "BUILD":
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        database_url = server.database_url
        stopping = time.monotonic()
        for process in server.processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in server.processes:
            process.wait(timeout=30)
        assert time.monotonic() - stopping < 20
        with session_scope(database_url) as session:
            row = session.get(Build, build["id"])
            assert row is not None
            assert row.build_complete and row.build_status == "FAULT"
            assert "BUILD_WORKER_STOPPED" in str(row.phases)
        label = f"org.forgeline.build-id={build['id']}"
        assert not docker.from_env().containers.list(all=True, filters={"label": label})
