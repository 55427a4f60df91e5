"""CodeCommit git passwords as the AWS CLI's credential helper makes them, run as git runs it:
a process reading git's request on standard input."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest

from forgeline.core.auth.sigv4 import git_password, verify_git_password

# Files and processes, but no database: run once, not on every backend's pass.
pytestmark = pytest.mark.no_db

# AWS's documented example key pair.
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REPO_PATH = "/v1/repos/demo"


def _stamp_of(password: str) -> dt.datetime:
    return dt.datetime.strptime(password[:15], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)


def test_git_password_matches_aws_cli_credential_helper(tmp_path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "ap-south-1",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "awscli", "codecommit", "credential-helper"]
        + ["--ignore-host-check", "get"],
        input="protocol=http\nhost=127.0.0.1:4750\npath=v1/repos/demo\n\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert answer["username"] == ACCESS_KEY
    password = answer["password"]
    # The CLI signs the host without its port.
    expected = git_password(SECRET, REPO_PATH, "127.0.0.1", "ap-south-1", _stamp_of(password))
    assert password == expected
    region = verify_git_password(
        SECRET, password, REPO_PATH, "127.0.0.1:4750", ["us-east-1", "ap-south-1"]
    )
    assert region == "ap-south-1"
