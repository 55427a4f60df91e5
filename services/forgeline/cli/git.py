"""`forgeline git`: git's credentials for Forgeline's repositories, from an access key.

`credential-helper` speaks git's credential-helper protocol and answers with the SigV4
password CodeCommit's own helper (`aws codecommit credential-helper`) makes: no AWS CLI
needed. `setup` configures git to use it for this server's URLs, with absolute paths, so
a plain `git push` keeps working from inside a clone.
"""

from __future__ import annotations

import datetime as dt
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import click

from forgeline.cli.boundary import CliError, Group
from forgeline.cli.profile import DEFAULT_PROFILE, Profile, credential_options, load


@click.group("git", cls=Group)
def git_group() -> None:
    """git credentials from an access key: a credential helper and the config that uses it."""


# --- the credential helper --------------------------------------------------------------------


def read_request(lines: Iterable[str]) -> dict[str, str]:
    """git's `key=value` lines, up to a blank line or the end."""
    request: dict[str, str] = {}
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            break
        key, sep, value = line.partition("=")
        if sep:
            request[key] = value
    return request


def signed_host(host: str) -> str:
    """The host as AWS's helper signs it: without the port (an IPv6 host keeps its brackets)."""
    if host.startswith("["):
        return host[: host.find("]") + 1] or host
    return host.split(":", 1)[0]


def answer(request: Mapping[str, str], profile: Profile, now: dt.datetime | None = None) -> str:
    """The `username=` / `password=` lines for git's `get`: the user is the access key id
    (with `%<session token>` for temporary keys), the password a SigV4 signature of the
    repository's path and host, valid for 15 minutes."""
    from forgeline.core.auth import sigv4

    path = "/" + request["path"].lstrip("/")
    password = sigv4.git_password(
        profile.secret_access_key, path, signed_host(request["host"]), profile.region, now
    )
    user = profile.access_key_id
    if profile.session_token:
        user = f"{user}%{profile.session_token}"
    return f"username={user}\npassword={password}\n"


@git_group.command("credential-helper")
@credential_options
@click.argument("action", type=click.Choice(["get", "store", "erase"]))
def credential_helper(
    credentials_file: Path | None, profile: str, region: str | None, action: str
) -> None:
    """git's credential helper: a SigV4 password for each repository (git calls it)."""
    request = read_request(sys.stdin)
    if action != "get":
        return  # nothing is stored: every password is made afresh
    if request.get("protocol") not in ("http", "https") or not request.get("host"):
        return  # not ours to answer: git asks the next helper, or the user
    if not request.get("path"):
        raise CliError(
            "git sent no repository path; set credential.useHttpPath=true for this host "
            "(forgeline git setup does)"
        )
    click.echo(answer(request, load(credentials_file, profile, region)), nl=False)


# --- the git configuration that uses it ---------------------------------------------------------


def forgeline_command() -> str:
    """An absolute command line that runs this `forgeline`, for git to call from anywhere."""
    invoked = Path(sys.argv[0])
    if invoked.name == "forgeline" and invoked.is_file():
        return shlex.quote(str(invoked.absolute()))
    beside_python = Path(sys.executable).parent / "forgeline"
    if beside_python.is_file():
        return shlex.quote(str(beside_python))
    return f"{shlex.quote(sys.executable)} -m forgeline.cli"


def helper_config(
    base_urls: Iterable[str], credentials_file: Path, profile: str
) -> list[tuple[str, str]]:
    """(key, value) pairs of git config that send each URL's credentials to the helper."""
    helper = (
        f"!{forgeline_command()} git credential-helper "
        f"--credentials-file {shlex.quote(str(credentials_file))} --profile {shlex.quote(profile)}"
    )
    pairs = []
    for url in base_urls:
        pairs.append((f"credential.{url}.helper", helper))
        # The password signs the repository's path: git must pass it to the helper.
        pairs.append((f"credential.{url}.useHttpPath", "true"))
    return pairs


@git_group.command("setup")
@click.option("--global", "write_global", is_flag=True, help="Write it with git config --global.")
@click.option("--host", default=None, help="Host in the clone URLs (default: the server's).")
@click.option("--port", type=int, default=None, help="HTTP port (default: the server's, 4750).")
@click.option(
    "--https-port",
    type=int,
    default=None,
    help="HTTPS port (default: the server's, 4751; 0 for none).",
)
@click.option(
    "--credentials-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="AWS shared-credentials file (default: <data-dir>/credentials).",
)
@click.option("--profile", default=DEFAULT_PROFILE, show_default=True, help="Profile in the file.")
def setup(
    write_global: bool,
    host: str | None,
    port: int | None,
    https_port: int | None,
    credentials_file: Path | None,
    profile: str,
) -> None:
    """Print (or, with --global, write) the git config that uses the credential helper."""
    from forgeline.cli.profile import default_credentials_file
    from forgeline.core import tls
    from forgeline.core.settings import get_settings

    settings = get_settings()
    host = host or ("127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host)
    port = port or settings.port
    if https_port is None:
        https_port = tls.tls_port(settings) or 0
    urls = [f"http://{host}:{port}"] + ([f"https://{host}:{https_port}"] if https_port else [])
    credentials = (credentials_file or default_credentials_file()).absolute()
    if not credentials.is_file():
        click.echo(f"warning: {credentials} does not exist yet", err=True)
    for key, value in helper_config(urls, credentials, profile):
        if write_global:
            command = ["git", "config", "--global", "--replace-all", key, value]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise CliError(f"git config --global {key} failed: {done.stderr.strip()}")
        click.echo(f"git config --global {shlex.quote(key)} {shlex.quote(value)}")
    if write_global:
        click.echo("written to git's global config", err=True)
