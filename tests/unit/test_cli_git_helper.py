"""The git credential helper's pure parts: git's request, the password, the git config."""

from __future__ import annotations

from pathlib import Path

from forgeline.cli import git
from forgeline.cli.profile import Profile
from forgeline.core.auth.sigv4 import verify_git_password

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _answer(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_read_request_stops_at_the_blank_line() -> None:
    lines = ["protocol=http\n", "host=h:1\r\n", "path=v1/repos/a=b\n", "\n", "host=later\n"]
    assert git.read_request(lines) == {"protocol": "http", "host": "h:1", "path": "v1/repos/a=b"}


def test_the_host_is_signed_without_its_port() -> None:
    assert git.signed_host("127.0.0.1:4750") == "127.0.0.1"
    assert git.signed_host("example.com") == "example.com"
    assert git.signed_host("[::1]:4751") == "[::1]"


def test_the_server_takes_the_password_for_that_repository_only() -> None:
    profile = Profile("AKIDLONG", SECRET, None, "eu-west-1")
    request = {"protocol": "http", "host": "127.0.0.1:4750", "path": "v1/repos/demo"}
    answer = _answer(git.answer(request, profile))
    assert answer["username"] == "AKIDLONG"
    password = answer["password"]
    assert verify_git_password(SECRET, password, "/v1/repos/demo", "127.0.0.1:4750", ["eu-west-1"])
    assert not verify_git_password(
        SECRET, password, "/v1/repos/other", "127.0.0.1:4750", ["eu-west-1"]
    )
    assert not verify_git_password(SECRET, password, "/v1/repos/demo", "127.0.0.1", ["us-east-1"])


def test_session_tokens_ride_in_the_user_name() -> None:
    profile = Profile("AKIDTEMP", "s%cret", "TOKEN", "us-east-1")
    request = {"protocol": "https", "host": "[::1]:4751", "path": "/v1/repos/demo"}
    answer = _answer(git.answer(request, profile))
    assert answer["username"] == "AKIDTEMP%TOKEN"
    assert verify_git_password(
        "s%cret", answer["password"], "/v1/repos/demo", "[::1]:4751", "us-east-1"
    )


def test_setup_points_each_url_at_the_helper_with_absolute_paths() -> None:
    credentials = Path("/srv/forgeline state/credentials")
    pairs = git.helper_config(
        ["http://127.0.0.1:4750", "https://127.0.0.1:4751"], credentials, "forgeline"
    )
    assert [key for key, _ in pairs] == [
        "credential.http://127.0.0.1:4750.helper",
        "credential.http://127.0.0.1:4750.useHttpPath",
        "credential.https://127.0.0.1:4751.helper",
        "credential.https://127.0.0.1:4751.useHttpPath",
    ]
    helper = pairs[0][1]
    assert helper.startswith("!/")
    assert helper.endswith(
        "git credential-helper --credentials-file '/srv/forgeline state/credentials' "
        "--profile forgeline"
    )
    assert pairs[1][1] == "true" and pairs[2][1] == helper
