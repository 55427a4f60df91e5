"""The access key of the commands that call the server as a client: one profile of an AWS
shared-credentials file, by default the one `forgeline serve` writes on first start."""

from __future__ import annotations

import configparser
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from forgeline.cli.boundary import CliError

DEFAULT_PROFILE = "forgeline"  # the profile the server writes its first admin key as
DEFAULT_REGION = "us-east-1"


@dataclasses.dataclass(frozen=True)
class Profile:
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    region: str


def default_credentials_file() -> Path:
    """`<data-dir>/credentials`, absolute (the data directory comes from FORGELINE_DATA_DIR)."""
    from forgeline.core.settings import get_settings

    return (get_settings().data_dir / "credentials").absolute()


def read_profile(path: Path, name: str, region: str | None = None) -> Profile:
    # Raw: a secret may hold a `%`, which interpolation would take for a reference.
    parser = configparser.RawConfigParser()
    try:
        found = parser.read(path)
    except configparser.Error as exc:
        raise CliError(f"cannot read {path}: {exc.message}") from None
    if not found:
        raise CliError(
            f"no credentials file at {path} (the server writes it on first start; "
            "or pass --credentials-file)"
        )
    if not parser.has_section(name):
        raise CliError(f"no profile [{name}] in {path}")
    section = parser[name]
    key, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    if not key or not secret:
        raise CliError(
            f"profile [{name}] in {path} lacks aws_access_key_id or aws_secret_access_key"
        )
    return Profile(
        access_key_id=key.strip(),
        secret_access_key=secret.strip(),
        session_token=(section.get("aws_session_token") or "").strip() or None,
        region=region or (section.get("region") or "").strip() or DEFAULT_REGION,
    )


def credential_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--credentials-file, --profile and --region, shared by the client commands."""
    command = click.option(
        "--region",
        default=None,
        help="Region to sign for (default: the profile's, else us-east-1).",
    )(command)
    command = click.option(
        "--profile", default=DEFAULT_PROFILE, show_default=True, help="Profile in the file."
    )(command)
    return click.option(
        "--credentials-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="AWS shared-credentials file (default: <data-dir>/credentials).",
    )(command)


def load(credentials_file: Path | None, profile: str, region: str | None) -> Profile:
    path = (credentials_file or default_credentials_file()).absolute()
    return read_profile(path, profile, region)
