"""The git CLI as CodeCommit users run it against a test server, isolated from this
machine's git config, and the helpers the git tests share."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import uuid
from pathlib import Path

from forgeline.core.auth import sigv4
from forgeline.core.events import EventReader

# The Redis database of the git tests' servers (each server has its own queue in it).
REDIS_DB = 8
AWS_HELPER = "!aws --profile forgeline codecommit credential-helper --ignore-host-check $@"


def write_credentials(path: Path, key: str, secret: str, region: str = "us-east-1") -> Path:
    parser = configparser.ConfigParser()
    parser["forgeline"] = {
        "aws_access_key_id": key,
        "aws_secret_access_key": secret,
        "region": region,
    }
    with path.open("w") as handle:
        parser.write(handle)
    return path


class Git:
    """The git CLI as a CodeCommit user runs it, isolated from this machine's git config."""

    def __init__(self, server, home: Path, credentials_file: Path | None = None) -> None:
        self.server = server
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.credentials_file = credentials_file or server.credentials_file
        self.tls_port = int(server.env.get("FORGELINE_TLS_PORT", "0"))

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        return self.server.data_dir / "tls" / "ca.pem"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "AWS_"))}
        env.update(
            HOME=str(self.home),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_TERMINAL_PROMPT="0",
            GIT_AUTHOR_NAME="Tester",
            GIT_AUTHOR_EMAIL="tester@example.com",
            GIT_COMMITTER_NAME="Tester",
            GIT_COMMITTER_EMAIL="tester@example.com",
            AWS_SHARED_CREDENTIALS_FILE=str(self.credentials_file),
            AWS_CONFIG_FILE=str(self.home / "no-aws-config"),
            AWS_PROFILE="forgeline",
            GIT_SSL_CAINFO=str(self.ca_file),
            CODE_COMMIT_ENDPOINT=f"127.0.0.1:{self.tls_port}",
            # botocore would otherwise probe for an EC2 metadata service on every call.
            AWS_EC2_METADATA_DISABLED="true",
        )
        env.update(extra)
        return env

    def run(
        self, *args: str, cwd: Path | None = None, check: bool = True, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=self.env(**extra_env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"git {' '.join(args)} failed ({result.returncode}):\n{result.stderr}\n"
                f"server log:\n{self.server.log()}"
            )
        return result

    def helper(self, *args: str, cwd: Path | None = None, check: bool = True, **extra_env: str):
        """git with the AWS CLI's credential helper, as AWS documents it."""
        return self.run(
            "-c",
            f"credential.helper={AWS_HELPER}",
            "-c",
            "credential.UseHttpPath=true",
            *args,
            cwd=cwd,
            check=check,
            **extra_env,
        )

    def commit(self, work: Path, name: str, content: str, message: str) -> str:
        (work / name).write_text(content)
        self.run("add", name, cwd=work)
        self.run("commit", "-q", "-m", message, cwd=work)
        return self.run("rev-parse", "HEAD", cwd=work).stdout.strip()

    def new_work_tree(self, path: Path, branch: str = "main") -> Path:
        self.run("init", "-q", "-b", branch, str(path))
        return path


def http_url(server, name: str) -> str:
    return f"{server.url}/v1/repos/{name}"


def signed_url(server, name: str, credentials: tuple[str, str] | None = None) -> str:
    """A clone URL carrying a SigV4-derived password, as git-remote-codecommit builds it."""
    key, secret = credentials or server.admin_credentials()
    host = f"127.0.0.1:{server.port}"
    password = sigv4.git_password(secret, f"/v1/repos/{name}", host, "us-east-1")
    return f"http://{key}:{password}@{host}/v1/repos/{name}"


def new_repository(server, prefix: str = "git", credentials=None, region: str = "us-east-1"):
    client = server.client("codecommit", credentials=credentials, region=region)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    meta = client.create_repository(repositoryName=name)["repositoryMetadata"]
    return client, name, meta


def bare_path(server, meta) -> Path:
    return server.data_dir / "repositories" / f"{meta['repositoryId']}.git"


def fsck(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "--git-dir", str(path), "fsck", "--full", "--strict"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def sigv4_password(server, name: str, host: str, now=None, secret=None) -> tuple[str, str]:
    key, admin_secret = server.admin_credentials()
    password = sigv4.git_password(
        secret or admin_secret, f"/v1/repos/{name}", host, "us-east-1", now=now
    )
    return key, password


def repository_events(server, name: str) -> list[dict]:
    reader = EventReader(f"git-test-{uuid.uuid4().hex}", url=server.database_url)
    found = []
    while batch := reader.read(limit=1000, source="aws.codecommit"):
        found += [e.detail for e in batch if e.detail.get("repositoryName") == name]
    return found
