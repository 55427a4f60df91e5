"""Operating a server: health, readiness, metrics, reset, the credentials file, the AWS CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import httpx

from tests.support.server import running_server


def test_health_and_ready(forgeline):
    health = httpx.get(forgeline.url + "/health").json()
    assert health["status"] == "ok"
    assert set(health["services"]) == {"repo", "build", "deploy", "pipeline"}
    ready = httpx.get(forgeline.url + "/ready")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"]["ok"] and checks["broker"]["ok"]


def test_metrics_count_requests_by_operation(forgeline):
    client = forgeline.client("codecommit")
    client.list_repositories()
    text = httpx.get(forgeline.url + "/metrics").text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("forgeline_requests_total{")
        and 'operation="ListRepositories"' in line
        and 'status="200"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 1
    assert (
        'forgeline_request_seconds_bucket{le="0.005",operation="ListRepositories"' in text
        or "forgeline_request_seconds_bucket" in text
    )


def test_credentials_file_is_private_and_works_with_the_aws_cli(forgeline):
    mode = stat.S_IMODE(os.stat(forgeline.credentials_file).st_mode)
    assert mode == 0o600
    env = dict(
        os.environ,
        AWS_SHARED_CREDENTIALS_FILE=str(forgeline.credentials_file),
        AWS_CONFIG_FILE="/dev/null",
    )
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    base = ["aws", "--profile", "forgeline", "--endpoint-url", forgeline.url]
    created = subprocess.run(
        [*base, "codecommit", "create-repository", "--repository-name", "cli-repo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["repositoryMetadata"]["repositoryName"] == "cli-repo"
    listed = subprocess.run(
        [*base, "codecommit", "list-repositories"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "cli-repo" in listed.stdout
    unimplemented = subprocess.run(
        [*base, "codebuild", "list-fleets"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unimplemented.returncode != 0
    assert "NotImplementedException" in unimplemented.stderr
    assert "ListFleets" in unimplemented.stderr
    forgeline.client("codecommit").delete_repository(repositoryName="cli-repo")


def test_reset_wipes_resources_but_keeps_credentials(tmp_path):
    with running_server(tmp_path, redis_db=4) as server:
        client = server.client("codecommit")
        client.create_repository(repositoryName="before-reset")
        assert any((tmp_path / "repositories").iterdir())
        response = httpx.post(server.url + "/_forgeline/reset")
        assert response.status_code == 200
        assert "repositories" in response.json()["tables"]
        assert client.list_repositories()["repositories"] == []
        assert not (tmp_path / "repositories").exists() or not any(
            (tmp_path / "repositories").iterdir()
        )


def test_reset_is_refused_unless_enabled(tmp_path):
    with running_server(tmp_path, redis_db=4, extra_env={"FORGELINE_ALLOW_RESET": "0"}) as server:
        response = httpx.post(server.url + "/_forgeline/reset")
        assert response.status_code == 403
        assert response.json()["__type"] == "AccessDeniedException"


def test_embedded_default_starts_quickly(tmp_path):
    started = time.monotonic()
    with running_server(tmp_path, redis_db=4) as server:
        elapsed = time.monotonic() - started
        assert server.client("codecommit").list_repositories()["repositories"] == []
    # The 3 s figure is measured by bench/startup.py on a quiet machine; this bound only
    # catches a start that hangs or regresses badly under a loaded CI machine.
    assert elapsed < 15.0, f"server took {elapsed:.1f}s to become ready"


def test_logs_are_json_with_request_fields(tmp_path):
    with running_server(tmp_path, redis_db=4, extra_env={"FORGELINE_LOG_LEVEL": "INFO"}) as server:
        server.client("codecommit").list_repositories()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            records = [
                json.loads(line) for line in server.log().splitlines() if line.startswith("{")
            ]
            requests = [r for r in records if r.get("message") == "request"]
            if requests:
                break
            time.sleep(0.1)
        entry = requests[-1]
        assert entry["operation"] == "ListRepositories"
        assert entry["service"] == "codecommit"
        assert entry["status"] == 200
        assert len(entry["request_id"]) == 36
        assert entry["account"]


def test_several_server_processes_share_one_port(tmp_path):
    with running_server(tmp_path, redis_db=4, extra_env={"FORGELINE_WORKERS": "2"}) as server:
        client = server.client("codecommit")
        client.create_repository(repositoryName="multi")
        # Calls spread over the processes; every one sees the same state.
        for _ in range(20):
            meta = client.get_repository(repositoryName="multi")["repositoryMetadata"]
            assert meta["repositoryName"] == "multi"
        assert [r["repositoryName"] for r in client.list_repositories()["repositories"]] == [
            "multi"
        ]
        group = os.getpgid(server.processes[0].pid)
    # Stopping the server stops every process it started.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("server processes outlived the stop")
