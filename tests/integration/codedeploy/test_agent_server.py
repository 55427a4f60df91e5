"""`forgeline agent` against a live server over HTTPS: registered with `forgeline agent
register` (a key minted for codedeploy/<name>, the server's CA and signer certificate
trusted), then `forgeline agent run` as its own process takes commands queued on the
server's database, fetches the revision from Forgeline's S3, verifies the signed
specification, runs the lifecycle, and reports each result; a command cut off by an agent
killed mid-script is reported FailedAfterRestart when it starts again."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.codedeploy.commands import queue
from forgeline.codedeploy.orchestrator.rollout import MinimumHealthyHosts
from forgeline.codedeploy.orchestrator.state import new_deployment
from forgeline.codedeploy.tables.deployments import Deployment, HostCommand, new_deployment_id
from tests.support.server import FORGELINE, ForgelineServer, free_port

REGION = "us-east-1"
BUCKET = "agent-releases"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForgelineServer]:
    env = {"FORGELINE_TLS_PORT": str(free_port()), "FORGELINE_CODEDEPLOY_POLL_SECONDS": "1"}
    server = ForgelineServer(tmp_path_factory.mktemp("agent-server"), extra_env=env)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def state(server: ForgelineServer) -> Iterator[None]:
    """This process on the server's database and key (to queue commands as the driver does)."""
    from forgeline.core.db import dispose_engines
    from forgeline.core.settings import reset_settings_cache

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FORGELINE_DATA_DIR", str(server.data_dir))
        patch.setenv("FORGELINE_DATABASE_URL", server.database_url)
        reset_settings_cache()
        try:
            yield
        finally:
            dispose_engines()
    reset_settings_cache()


def https_url(server: ForgelineServer) -> str:
    return f"https://127.0.0.1:{server.env['FORGELINE_TLS_PORT']}"


def register(server: ForgelineServer, workdir: Path, name: str) -> Path:
    key, secret = server.admin_credentials()
    config = workdir / "agent" / "agent.yml"
    result = subprocess.run(
        [
            *FORGELINE,
            "agent",
            "register",
            "--name",
            name,
            "--tags",
            "Env=test",
            "--endpoint",
            https_url(server),
            "--config",
            str(config),
            "--root-dir",
            str(workdir / "root"),
        ],
        env={
            **server.env,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": REGION,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return config


@contextlib.contextmanager
def running_agent(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [*FORGELINE, "agent", "run", "--config", str(config)],
            env={**os.environ, "FORGELINE_LOG_LEVEL": "INFO"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def bundle(www: Path, record: Path, validate_exit: int = 0, stop_word: str = "v1") -> bytes:
    hooks = {
        event: f'#!/bin/sh\necho "$LIFECYCLE_EVENT $DEPLOYMENT_ID $BUNDLE_BUCKET $BUNDLE_KEY" >> {record}\n'
        for event in ("BeforeInstall", "AfterInstall", "ApplicationStart")
    }
    hooks["ApplicationStop"] = f"#!/bin/sh\necho 'stop {stop_word}' >> {record}\n"
    hooks["ValidateService"] = f"#!/bin/sh\necho validating\nexit {validate_exit}\n"
    appspec = "version: 0.0\nos: linux\nfiles:\n  - source: web\n    destination: " + str(www)
    appspec += "\nhooks:\n" + "".join(
        f"  {event}:\n    - location: scripts/{event}.sh\n      timeout: 20\n" for event in hooks
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", appspec)
        archive.writestr("web/index.html", f"<h1>{stop_word}</h1>")
        for event, text in hooks.items():
            info = zipfile.ZipInfo(f"scripts/{event}.sh")
            info.create_system = 3
            info.external_attr = 0o100755 << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def upload(server: ForgelineServer, key: str, body: bytes) -> str:
    s3 = server.client("s3")
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    return s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"]


def instance_account(server: ForgelineServer, name: str) -> tuple[str, str]:
    codedeploy = server.client("codedeploy")
    info = codedeploy.get_on_premises_instance(instanceName=name)["instanceInfo"]
    return info["iamUserArn"].split(":")[4], info["iamUserArn"]


def queue_commands(
    account_id: str, instance: str, group_id: str, key: str, etag: str, *names: str
) -> list[str]:
    from forgeline.core.db import session_scope

    revision = {
        "revisionType": "S3",
        "s3Location": {"bucket": BUCKET, "key": key, "bundleType": "zip", "eTag": etag},
    }
    with session_scope() as session:
        deployment = Deployment(
            id=new_deployment_id(),
            account_id=account_id,
            region=REGION,
            application_name="shop",
            application_id=str(uuid.uuid4()),
            deployment_group_name="web",
            deployment_group_id=group_id,
            deployment_config_name="CodeDeployDefault.OneAtATime",
            deployment_status="InProgress",
            revision=revision,
            request={},
            # A machine state that targets no instance: the driver ignores these results.
            state=new_deployment(
                "unused", "CodeDeployDefault.OneAtATime", MinimumHealthyHosts("HOST_COUNT", 0)
            ).to_document(),
        )
        session.add(deployment)
        session.flush()
        return [queue.enqueue_command(session, deployment, instance, name).id for name in names]


def wait_for(command_ids: list[str], timeout: float = 90) -> list[HostCommand]:
    from forgeline.core.db import session_scope

    deadline = time.monotonic() + timeout
    while True:
        with session_scope(readonly=True) as session:
            rows = [session.get(HostCommand, command_id) for command_id in command_ids]
            done = [
                row for row in rows if row is not None and row.status in ("Succeeded", "Failed")
            ]
            if len(done) == len(command_ids) or any(row.status == "Failed" for row in done):
                for row in rows:
                    session.expunge(row)
                return rows  # type: ignore[return-value]
        assert time.monotonic() < deadline, [(row.command_name, row.status) for row in rows]
        time.sleep(0.2)


def report(row: HostCommand) -> dict[str, Any]:
    assert row.diagnostics is not None
    return json.loads(row.diagnostics["Payload"])


LIFECYCLE = (
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
)


def test_register_then_deploy_two_revisions_through_the_agent(server, state, tmp_path):
    name = f"web-{uuid.uuid4().hex[:6]}"
    config = register(server, tmp_path, name)
    account_id, arn = instance_account(server, name)
    assert arn.endswith(f":user/codedeploy/{name}")
    tags = server.client("codedeploy").get_on_premises_instance(instanceName=name)
    assert tags["instanceInfo"]["tags"] == [{"Key": "Env", "Value": "test"}]
    written = config.read_text()
    assert "signer_certificate:" in written and "ca_file:" in written
    assert oct(config.stat().st_mode & 0o777) == "0o600"

    www, record = tmp_path / "www", tmp_path / "record.txt"
    group_id = str(uuid.uuid4())
    etag = upload(server, "shop/v1.zip", bundle(www, record))
    first = queue_commands(account_id, name, group_id, "shop/v1.zip", etag, *LIFECYCLE)
    with running_agent(config, tmp_path / "agent.log") as agent:
        rows = wait_for(first)
        assert [row.status for row in rows] == ["Succeeded"] * len(LIFECYCLE), (
            tmp_path / "agent.log"
        ).read_text()
        assert (www / "index.html").read_text() == "<h1>v1</h1>"
        lines = record.read_text().splitlines()
        assert [line.split()[0] for line in lines] == [
            "BeforeInstall",
            "AfterInstall",
            "ApplicationStart",
        ]
        assert lines[0].split()[2:] == [BUCKET, "shop/v1.zip"]

        etag = upload(server, "shop/v2.zip", bundle(www, record, validate_exit=3, stop_word="v2"))
        second = queue_commands(account_id, name, group_id, "shop/v2.zip", etag, *LIFECYCLE)
        rows = wait_for(second)
        assert [row.status for row in rows] == ["Succeeded"] * 6 + ["Failed"]
        failed = report(rows[-1])
        assert failed["error_code"] == 4
        assert failed["script_name"] == "scripts/ValidateService.sh"
        assert "[stdout]validating" in failed["log"]
        assert "stop v1" in record.read_text()  # the previous revision's ApplicationStop
        assert (www / "index.html").read_text() == "<h1>v2</h1>"

        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0

    key, secret = server.admin_credentials()
    result = subprocess.run(
        [*FORGELINE, "agent", "deregister", "--config", str(config)],
        env={**server.env, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"instanceName": name, "accessKeyDeleted": True}
    info = server.client("codedeploy").get_on_premises_instance(instanceName=name)
    assert "deregisterTime" in info["instanceInfo"]


def test_sigterm_lets_the_running_command_finish_and_report(server, state, tmp_path):
    name = f"web-{uuid.uuid4().hex[:6]}"
    config = register(server, tmp_path, name)
    account_id, _ = instance_account(server, name)
    started = tmp_path / "started"
    appspec = "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n    - location: wait.sh\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", appspec)
        info = zipfile.ZipInfo("wait.sh")
        info.create_system = 3
        info.external_attr = 0o100755 << 16
        archive.writestr(info, f"#!/bin/sh\ntouch {started}\nsleep 2\necho done\n")
    etag = upload(server, "wait/v1.zip", buffer.getvalue())
    ids = queue_commands(
        account_id, name, str(uuid.uuid4()), "wait/v1.zip", etag, "DownloadBundle", "BeforeInstall"
    )
    log = tmp_path / "agent.log"
    with running_agent(config, log) as agent:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
    rows = wait_for(ids, timeout=5)
    assert [row.status for row in rows] == ["Succeeded", "Succeeded"], log.read_text()


def test_a_command_cut_off_by_a_killed_agent_is_reported_after_restart(server, state, tmp_path):
    name = f"web-{uuid.uuid4().hex[:6]}"
    config = register(server, tmp_path, name)
    account_id, _ = instance_account(server, name)
    started, pid_file = tmp_path / "started", tmp_path / "script.pid"
    appspec = (
        "version: 0.0\nos: linux\nhooks:\n  BeforeInstall:\n"
        "    - location: slow.sh\n      timeout: 120\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("appspec.yml", appspec)
        info = zipfile.ZipInfo("slow.sh")
        info.create_system = 3
        info.external_attr = 0o100755 << 16
        archive.writestr(info, f"#!/bin/sh\necho $$ > {pid_file}\ntouch {started}\nsleep 120\n")
    etag = upload(server, "slow/v1.zip", buffer.getvalue())
    ids = queue_commands(
        account_id, name, str(uuid.uuid4()), "slow/v1.zip", etag, "DownloadBundle", "BeforeInstall"
    )
    log = tmp_path / "agent.log"
    with running_agent(config, log) as agent:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        agent.kill()
        agent.wait(10)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    with running_agent(config, log):
        rows = wait_for(ids)
    assert [row.status for row in rows] == ["Succeeded", "Failed"]
    cut_off = report(rows[1])
    assert cut_off["error_code"] == 7
    assert "agent restart" in cut_off["message"]
