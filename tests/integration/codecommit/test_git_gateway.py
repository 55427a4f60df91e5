"""git through the production gateway (streamed to the repo service), and permissive auth."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from forgeline.core.auth import sigv4
from tests.support.git_cli import (
    REDIS_DB,
    Git,
    bare_path,
    fsck,
    new_repository,
    repository_events,
)
from tests.support.server import FORGELINE, free_port, running_server


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A permissive server: the repo service behind the gateway."""
    with running_server(
        tmp_path_factory.mktemp("git-upstream"),
        auth="permissive",
        redis_db=REDIS_DB,
        extra_env={"FORGELINE_TLS_PORT": "0"},
    ) as running:
        yield running


@contextlib.contextmanager
def gateway_for(server) -> Iterator[str]:
    """`forgeline serve` in proxy mode, forwarding every service to `server`."""
    port = free_port()
    env = dict(server.env)
    env.update(
        FORGELINE_SERVICE_URLS=",".join(
            f"{name}={server.url}" for name in ("repo", "build", "deploy", "pipeline")
        ),
        FORGELINE_WORKER="external",
        FORGELINE_TLS_PORT="0",
    )
    log = open(server.data_dir / "gateway.log", "ab")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [*FORGELINE, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (server.data_dir / "gateway.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.05)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
        log.close()


def test_clone_and_push_through_the_gateway(upstream, tmp_path):
    git = Git(upstream, tmp_path / "home")
    client, name, meta = new_repository(upstream)
    with gateway_for(upstream) as gateway:
        host = gateway.removeprefix("http://")
        key, secret = upstream.admin_credentials()
        password = sigv4.git_password(secret, f"/v1/repos/{name}", host, "us-east-1")
        url = f"http://{key}:{password}@{host}/v1/repos/{name}"

        challenge = httpx.get(f"{gateway}/v1/repos/{name}/info/refs?service=git-receive-pack")
        assert challenge.status_code == 401
        assert challenge.headers["www-authenticate"].startswith("Basic")

        work = git.new_work_tree(tmp_path / "work")
        # A few MB of incompressible content: the pack streams through both hops.
        (work / "blob.bin").write_bytes(os.urandom(4 * 1024 * 1024))
        git.run("add", "blob.bin", cwd=work)
        git.run("commit", "-q", "-m", "big", cwd=work)
        head = git.run("rev-parse", "HEAD", cwd=work).stdout.strip()
        git.run("push", url, "main", cwd=work)
        git.run("clone", "-q", url, str(tmp_path / "clone"))

    assert (tmp_path / "clone" / "blob.bin").read_bytes() == (work / "blob.bin").read_bytes()
    assert client.get_branch(repositoryName=name, branchName="main")["branch"]["commitId"] == head
    assert [e["event"] for e in repository_events(upstream, name)] == ["referenceCreated"]
    assert fsck(bare_path(upstream, meta)).returncode == 0


def test_permissive_mode_accepts_unknown_keys_for_the_default_account(upstream, tmp_path):
    git = Git(upstream, tmp_path / "home")
    _, name, _ = new_repository(upstream)
    host = f"127.0.0.1:{upstream.port}"
    path = f"/v1/repos/{name}"
    info_refs = f"{upstream.url}{path}/info/refs?service=git-receive-pack"

    stranger = sigv4.git_password("any-secret", path, host, "us-east-1")
    assert httpx.get(info_refs, auth=("AKIASTRANGER0000000", stranger)).status_code == 200
    work = git.new_work_tree(tmp_path / "work")
    (work / "f.txt").write_text("permissive\n")
    git.run("add", "f.txt", cwd=work)
    git.run("commit", "-q", "-m", "from a stranger", cwd=work)
    git.run("push", f"http://AKIASTRANGER0000000:{stranger}@{host}{path}", "main", cwd=work)
    created = [e for e in repository_events(upstream, name) if e["event"] == "referenceCreated"]
    assert created[0]["callerUserArn"] == "arn:aws:iam::000000000000:root"

    # Still not "anything goes": a malformed password, and a known key with a bad signature.
    assert httpx.get(info_refs, auth=("AKIASTRANGER0000000", "hunter2")).status_code == 401
    key, _ = upstream.admin_credentials()
    assert httpx.get(info_refs, auth=(key, stranger)).status_code == 401
