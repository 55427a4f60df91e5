"""Details other AWS clients rely on: cloneUrlSsh, AWS's fixed error messages, moto's reset
path, CORS for browser SDKs, refusal of session tokens never issued, lean repositories.

Each runs against a real server over HTTP, with boto3, httpx and git.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from forgeline.core.auth import sigv4
from tests.support.server import running_server
from tests.support.signing import signed_headers

INVALID_NAME_MESSAGE = (
    "The repository name is not valid. Repository names can be any valid combination of "
    "letters, numbers, periods, underscores, and dashes between 1 and 100 characters in "
    "length. Names are case sensitive. For more information, see Limits in the AWS "
    "CodeCommit User Guide. "
)
CONSOLE = "https://console.example.test"
TARGET = "CodeCommit_20150413.ListRepositories"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def public(tmp_path_factory):
    """A server behind a public URL, allowing one browser origin, with reset enabled."""
    with running_server(
        tmp_path_factory.mktemp("compat-public"),
        extra_env={
            "FORGELINE_PUBLIC_URL": "https://git.example.test:8443",
            "FORGELINE_CORS_ALLOWED_ORIGINS": f"{CONSOLE}, https://other.example.test",
        },
    ) as server:
        yield server


@pytest.fixture(scope="module")
def permissive(tmp_path_factory):
    """A permissive server (made-up credentials welcome) with reset left disabled."""
    with running_server(
        tmp_path_factory.mktemp("compat-permissive"),
        auth="permissive",
        extra_env={"FORGELINE_ALLOW_RESET": "0"},
    ) as server:
        yield server


# --- item: cloneUrlSsh ------------------------------------------------------------------------


def test_repository_metadata_always_carries_clone_url_ssh(forgeline):
    client = forgeline.client("codecommit")
    name = _name("ssh")
    created = client.create_repository(repositoryName=name)["repositoryMetadata"]
    fetched = client.get_repository(repositoryName=name)["repositoryMetadata"]
    batch = client.batch_get_repositories(repositoryNames=[name])["repositories"][0]
    expected = f"ssh://127.0.0.1/v1/repos/{name}"
    assert created["cloneUrlSsh"] == fetched["cloneUrlSsh"] == batch["cloneUrlSsh"] == expected
    assert fetched["cloneUrlHttp"] == f"http://127.0.0.1:{forgeline.port}/v1/repos/{name}"
    client.delete_repository(repositoryName=name)


def test_clone_url_ssh_names_the_public_host(public):
    client = public.client("codecommit")
    name = _name("ssh")
    meta = client.create_repository(repositoryName=name)["repositoryMetadata"]
    assert meta["cloneUrlHttp"] == f"https://git.example.test:8443/v1/repos/{name}"
    # The HTTP port is not an SSH port: the SSH URL names the host alone, as AWS's does.
    assert meta["cloneUrlSsh"] == f"ssh://git.example.test/v1/repos/{name}"


# --- item: AWS's fixed error messages ---------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        ("create_repository", {"repositoryName": "no spaces!"}),  # the model's pattern
        ("create_repository", {"repositoryName": "a" * 101}),  # the model's length
        ("create_repository", {"repositoryName": "ends-with.git"}),  # CodeCommit's own rule
        ("get_repository", {"repositoryName": "bad/name"}),
        ("update_repository_name", {"oldName": "fine", "newName": "not fine"}),
    ],
)
def test_invalid_repository_name_carries_aws_message(forgeline, operation, params):
    client = forgeline.client("codecommit")
    with pytest.raises(ClientError) as raised:
        getattr(client, operation)(**params)
    error = raised.value.response["Error"]
    assert error["Code"] == "InvalidRepositoryNameException"
    assert error["Message"] == INVALID_NAME_MESSAGE


# --- item: moto's reset path ------------------------------------------------------------------


def test_moto_reset_path_wipes_state_like_the_forgeline_one(public):
    client = public.client("codecommit")
    client.create_repository(repositoryName=_name("before-reset"))
    response = httpx.post(f"{public.url}/moto-api/reset", timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"  # what moto's server answers
    assert "repositories" in body["tables"]
    assert client.list_repositories()["repositories"] == []
    # The Forgeline path is the same implementation and gives the same answer.
    again = httpx.post(f"{public.url}/_forgeline/reset", timeout=30)
    assert again.status_code == 200 and again.json()["status"] == "ok"


def test_moto_reset_path_is_refused_unless_enabled(permissive):
    for path in ("/moto-api/reset", "/_forgeline/reset"):
        response = httpx.post(permissive.url + path, timeout=30)
        assert response.status_code == 403
        assert response.json()["__type"] == "AccessDeniedException"


# --- item: CORS -------------------------------------------------------------------------------


def _preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(
        url + "/",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-amz-date,x-amz-target",
        },
    )


def _signed_post_with_origin(server, origin: str) -> httpx.Response:
    body = b"{}"
    headers = signed_headers(
        server.url,
        body,
        target=TARGET,
        signing_name="codecommit",
        credentials=server.admin_credentials(),
    )
    # A browser adds Origin itself; the SDK does not sign it.
    headers["Origin"] = origin
    return httpx.post(server.url + "/", content=body, headers=headers, timeout=30)


def test_preflight_is_answered_for_any_origin_on_loopback(forgeline):
    response = _preflight(forgeline.url, "http://localhost:3000")
    assert response.status_code == 200
    headers = response.headers
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-headers"] == (
        "authorization,content-type,x-amz-date,x-amz-target"
    )
    assert "POST" in headers["access-control-allow-methods"].split(",")
    assert int(headers["access-control-max-age"]) > 0
    # Any path: the git and S3 paths are preflighted the same way.
    assert _preflight(forgeline.url + "/v1/repos/x", "http://localhost:3000").status_code == 200


def test_signed_post_with_origin_gets_cors_headers(forgeline):
    response = _signed_post_with_origin(forgeline, "http://localhost:3000")
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"x-amzn-requestid", "x-amz-request-id", "x-amz-id-2", "date", "etag"} <= exposed
    # An error answer carries them too: the SDK must read its code and request id.
    headers = signed_headers(
        forgeline.url, b"{}", target=TARGET, signing_name="codecommit", credentials=("AKIAX", "s")
    )
    headers["Origin"] = "http://localhost:3000"
    refused = httpx.post(forgeline.url + "/", content=b"{}", headers=headers)
    assert refused.status_code == 403
    assert refused.headers["access-control-allow-origin"] == "*"


def test_requests_without_origin_carry_no_cors_headers(forgeline):
    response = forgeline.client("codecommit").list_repositories()
    assert not any(
        name.lower().startswith("access-control-")
        for name in response["ResponseMetadata"]["HTTPHeaders"]
    )


def test_configured_origins_are_allowed_and_others_are_not(public):
    allowed = _preflight(public.url, CONSOLE)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == CONSOLE
    assert "origin" in allowed.headers["vary"].lower()
    post = _signed_post_with_origin(public, CONSOLE)
    assert post.status_code == 200
    assert post.headers["access-control-allow-origin"] == CONSOLE

    refused = _preflight(public.url, "https://evil.example.test")
    assert "access-control-allow-origin" not in refused.headers
    post = _signed_post_with_origin(public, "https://evil.example.test")
    assert post.status_code == 200  # the call itself is signed; only the browser is kept out
    assert "access-control-allow-origin" not in post.headers


# --- item: session tokens Forgeline never issued ------------------------------------------------


def _client_with_token(server) -> Any:
    key, secret = server.admin_credentials()
    return boto3.client(
        "codecommit",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token="FwoGZXIvYXdzEMadeUpSessionToken",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_enforce_mode_refuses_an_unknown_session_token(forgeline):
    with pytest.raises(ClientError) as raised:
        _client_with_token(forgeline).list_repositories()
    error = raised.value.response["Error"]
    assert error["Code"] == "UnrecognizedClientException"
    assert error["Message"] == "The security token included in the request is invalid."


def test_permissive_mode_accepts_a_session_token(permissive):
    assert _client_with_token(permissive).list_repositories()["repositories"] == []


def _git_status(server, name: str, user_suffix: str) -> int:
    key, secret = server.admin_credentials()
    host = f"127.0.0.1:{server.port}"
    password = sigv4.git_password(secret, f"/v1/repos/{name}", host, "us-east-1")
    url = f"{server.url}/v1/repos/{name}/info/refs?service=git-upload-pack"
    return httpx.get(url, auth=(key + user_suffix, password)).status_code


def test_git_password_with_session_token_follows_the_same_rule(forgeline, permissive):
    for server, with_token in ((forgeline, 401), (permissive, 200)):
        name = _name("token")
        server.client("codecommit").create_repository(repositoryName=name)
        assert _git_status(server, name, "") == 200
        assert _git_status(server, name, "%FwoGZXIvYXdzEMadeUp") == with_token


# --- item: lean repositories ------------------------------------------------------------------


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.test",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.test",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_new_repository_has_no_template_files_and_still_pushes_and_clones(forgeline, tmp_path):
    client = forgeline.client("codecommit")
    name = _name("lean")
    meta = client.create_repository(repositoryName=name)["repositoryMetadata"]
    bare = forgeline.data_dir / "repositories" / f"{meta['repositoryId']}.git"
    assert not list(bare.glob("hooks/*.sample"))
    assert not (bare / "description").exists()
    for needed in ("HEAD", "config", "objects", "refs/heads", "refs/tags"):
        assert (bare / needed).exists(), needed

    key, secret = forgeline.admin_credentials()
    host = f"127.0.0.1:{forgeline.port}"
    password = sigv4.git_password(secret, f"/v1/repos/{name}", host, "us-east-1")
    url = f"http://{key}:{password}@{host}/v1/repos/{name}"
    work = tmp_path / "work"
    _git("init", "-q", "-b", "main", str(work))
    (work / "README").write_text("lean\n")
    _git("add", "README", cwd=work)
    _git("commit", "-q", "-m", "first", cwd=work)
    _git("push", "-q", url, "main", cwd=work)
    _git("clone", "-q", url, str(tmp_path / "clone"))
    assert (tmp_path / "clone" / "README").read_text() == "lean\n"
    assert client.get_repository(repositoryName=name)["repositoryMetadata"]["defaultBranch"] == (
        "main"
    )
