"""`forgeline git setup` and `forgeline git credential-helper` with real git against a real
server: clone, then commit and push from inside the clone, with nothing but git's config."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

from forgeline.cli import git as git_commands
from forgeline.cli.profile import Profile
from forgeline.core.auth.sigv4 import verify_git_password
from tests.support.server import FORGELINE, free_port

ACCESS_KEY = "AKIAFORGELINETEST001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REQUEST = "protocol=http\nhost=127.0.0.1:4750\npath=v1/repos/demo\n\n"


def _answer(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _helper(credentials: Path, action: str, request: str) -> subprocess.CompletedProcess[str]:
    command = [*FORGELINE, "git", "credential-helper", "--credentials-file", str(credentials)]
    return subprocess.run(
        [*command, action], input=request, capture_output=True, text=True, timeout=60
    )


def test_the_password_is_the_one_the_aws_cli_helper_makes(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }
    aws = subprocess.run(
        [sys.executable, "-m", "awscli", "codecommit", "credential-helper"]
        + ["--ignore-host-check", "get"],
        input=REQUEST,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    expected = _answer(aws.stdout)
    stamp = dt.datetime.strptime(expected["password"][:15], "%Y%m%dT%H%M%S")
    profile = Profile(ACCESS_KEY, SECRET, None, "eu-west-1")
    ours = git_commands.answer(git_commands.read_request(REQUEST.splitlines(True)), profile, stamp)
    assert _answer(ours) == expected


def test_the_helper_speaks_git_credential_protocol(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[forgeline]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET}\n"
        "region = us-east-1\n"
    )
    got = _helper(credentials, "get", REQUEST)
    assert got.returncode == 0, got.stderr
    answer = _answer(got.stdout)
    assert answer["username"] == ACCESS_KEY
    assert verify_git_password(
        SECRET, answer["password"], "/v1/repos/demo", "127.0.0.1:4750", ["us-east-1"]
    )
    stored = _helper(credentials, "store", REQUEST + "username=x\npassword=y\n")
    assert (stored.returncode, stored.stdout) == (0, "")
    # Another host's request (an ssh URL, say) is left to git's other helpers.
    assert _helper(credentials, "get", "protocol=ssh\nhost=example.com\n\n").stdout == ""

    no_path = _helper(credentials, "get", "protocol=http\nhost=127.0.0.1:4750\n\n")
    assert no_path.returncode == 1 and no_path.stderr.startswith("error: git sent no repository")
    assert len(no_path.stderr.splitlines()) == 1
    missing = _helper(tmp_path / "nowhere", "get", REQUEST)
    assert missing.returncode == 1
    assert missing.stderr.startswith(f"error: no credentials file at {tmp_path / 'nowhere'}")
    other_profile = subprocess.run(
        [*FORGELINE, "git", "credential-helper", "--credentials-file", str(credentials)]
        + ["--profile", "nope", "get"],
        input=REQUEST,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other_profile.stderr == f"error: no profile [nope] in {credentials}\n"


def _git_env(home: Path) -> dict[str, str]:
    """git as a new user runs it: own HOME, no system config, no AWS or Forgeline variables."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Tester",
        "GIT_AUTHOR_EMAIL": "tester@example.com",
        "GIT_COMMITTER_NAME": "Tester",
        "GIT_COMMITTER_EMAIL": "tester@example.com",
    }


def _git(home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["git", *args], cwd=cwd, env=_git_env(home), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result


def test_setup_then_plain_clone_and_push_from_inside_the_clone(forgeline, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    https_port = free_port()
    # `git setup --global`, run where the server's state is the default data directory.
    env = {**forgeline.env, **_git_env(home)}
    setup = subprocess.run(
        [*FORGELINE, "git", "setup", "--global", "--port", str(forgeline.port)]
        + ["--https-port", str(https_port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert setup.returncode == 0, setup.stderr
    written = _git(home, "config", "--global", "--list", cwd=tmp_path).stdout
    base = f"http://127.0.0.1:{forgeline.port}"
    credentials = forgeline.credentials_file.absolute()
    assert f"credential.{base}.usehttppath=true" in written
    assert f"credential.https://127.0.0.1:{https_port}.usehttppath=true" in written
    assert f"git credential-helper --credentials-file {credentials} --profile forgeline" in written
    assert setup.stdout.count("git config --global") == 4

    name = f"helper-{uuid.uuid4().hex[:8]}"
    codecommit = forgeline.client("codecommit")
    codecommit.create_repository(repositoryName=name)
    try:
        _git(home, "clone", "-q", f"{base}/v1/repos/{name}", cwd=tmp_path)
        clone = tmp_path / name
        _git(home, "symbolic-ref", "HEAD", "refs/heads/main", cwd=clone)
        for number in (1, 2):
            (clone / f"file{number}.txt").write_text(f"pushed with forgeline's helper: {number}\n")
            _git(home, "add", f"file{number}.txt", cwd=clone)
            _git(home, "commit", "-q", "-m", f"commit {number}", cwd=clone)
            # The first push sets the upstream; the second is a plain `git push`.
            _git(home, "push", "-q", *(("-u", "origin", "main") if number == 1 else ()), cwd=clone)
            head = _git(home, "rev-parse", "HEAD", cwd=clone).stdout.strip()
            branch = codecommit.get_branch(repositoryName=name, branchName="main")["branch"]
            assert branch["commitId"] == head
    finally:
        codecommit.delete_repository(repositoryName=name)
