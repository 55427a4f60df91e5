"""The agent's configuration: one YAML file, written by `forgeline agent register` and read
by `forgeline agent run`. deploy/agent/agent.example.yml shows every key."""

from __future__ import annotations

import configparser
import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from forgeline.codedeploy.agent.layout import write_atomically

SYSTEM_CONFIG = Path("/etc/forgeline-agent/agent.yml")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


@dataclasses.dataclass(frozen=True)
class PollSettings:
    # The HTTP read timeout of one PollHostCommand: longer than the server holds a poll.
    timeout_seconds: float = 90.0
    # After an error the agent waits this long, doubling up to backoff_max_seconds (with
    # jitter), so a fleet does not return to a recovering server all at once.
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    endpoint: str
    region: str
    host_identifier: str  # the IAM user (or session) ARN the instance was registered with
    root_dir: Path
    log_dir: Path
    instance_name: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = dataclasses.field(default=None, repr=False)
    credentials_file: Path | None = None  # an AWS shared-credentials file instead
    credentials_profile: str = "default"
    ca_file: Path | None = None  # the CA that signed the server's HTTPS certificate
    signer_certificate: Path | None = None  # verifies the deployment specifications
    s3_endpoint: str | None = None  # default: the endpoint
    max_revisions: int = 5
    # Installs appspec destinations (and permission objects) under this directory instead
    # of /: several agents on one machine, each with its own tree (tests, staging hosts).
    destination_root: Path | None = None
    poll: PollSettings = dataclasses.field(default_factory=PollSettings)

    @property
    def bundle_endpoint(self) -> str:
        return self.s3_endpoint or self.endpoint

    def credentials(self) -> tuple[str, str]:
        if self.access_key_id and self.secret_access_key:
            return self.access_key_id, self.secret_access_key
        if self.credentials_file is None:
            raise ConfigError(
                "the config has neither access_key_id/secret_access_key nor credentials_file"
            )
        parser = configparser.ConfigParser(interpolation=None)
        if not parser.read(self.credentials_file):
            raise ConfigError(f"credentials_file {self.credentials_file} cannot be read")
        section = self.credentials_profile
        try:
            return (
                parser[section]["aws_access_key_id"],
                parser[section]["aws_secret_access_key"],
            )
        except KeyError:
            raise ConfigError(
                f"credentials_file {self.credentials_file} has no [{section}] profile with "
                "aws_access_key_id and aws_secret_access_key"
            ) from None


def default_config_path() -> Path:
    if os.geteuid() == 0:
        return SYSTEM_CONFIG
    return Path.home() / ".config" / "forgeline-agent" / "agent.yml"


def default_root_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/forgeline-agent")
    return Path.home() / ".forgeline-agent"


def load_config(path: Path) -> AgentConfig:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"no agent config at {path} (write one with: forgeline agent register)"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a YAML mapping")
    return config_from_mapping(data, str(path))


def config_from_mapping(data: dict[str, Any], where: str = "the config") -> AgentConfig:
    known = {field.name for field in dataclasses.fields(AgentConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where} has unknown keys: {', '.join(unknown)}")
    for key in ("endpoint", "region", "host_identifier"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{where} needs {key}")
    if not str(data["endpoint"]).startswith(("http://", "https://")):
        raise ConfigError(f"{where}: endpoint must be an http:// or https:// URL")
    root_dir = _path(data.get("root_dir"), "root_dir") or default_root_dir()
    poll = data.get("poll") or {}
    if not isinstance(poll, dict):
        raise ConfigError(f"{where}: poll must be a mapping")
    try:
        poll_settings = PollSettings(**{key: float(value) for key, value in poll.items()})
    except TypeError as exc:
        raise ConfigError(f"{where}: poll: {exc}") from None
    except ValueError:
        raise ConfigError(f"{where}: poll settings must be numbers of seconds") from None
    max_revisions = data.get("max_revisions", 5)
    if not isinstance(max_revisions, int) or isinstance(max_revisions, bool) or max_revisions < 1:
        raise ConfigError(f"{where}: max_revisions must be a whole number of at least 1")
    return AgentConfig(
        endpoint=data["endpoint"].rstrip("/"),
        region=data["region"],
        host_identifier=data["host_identifier"],
        root_dir=root_dir,
        log_dir=_path(data.get("log_dir"), "log_dir") or root_dir / "logs",
        instance_name=data.get("instance_name"),
        access_key_id=data.get("access_key_id"),
        secret_access_key=data.get("secret_access_key"),
        credentials_file=_path(data.get("credentials_file"), "credentials_file"),
        credentials_profile=data.get("credentials_profile") or "default",
        ca_file=_path(data.get("ca_file"), "ca_file"),
        signer_certificate=_path(data.get("signer_certificate"), "signer_certificate"),
        s3_endpoint=data.get("s3_endpoint"),
        max_revisions=max_revisions,
        destination_root=_path(data.get("destination_root"), "destination_root"),
        poll=poll_settings,
    )


def config_to_mapping(config: AgentConfig) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in dataclasses.fields(AgentConfig):
        value = getattr(config, field.name)
        if value is None or (
            field.name == "credentials_profile" and config.credentials_file is None
        ):
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, PollSettings):
            value = dataclasses.asdict(value)
        data[field.name] = value
    return data


def write_config(path: Path, config: AgentConfig) -> None:
    """Written 0600: it may hold the instance's secret key."""
    text = yaml.safe_dump(config_to_mapping(config), sort_keys=False)
    write_atomically(path, text, mode=0o600)


def _path(value: object, key: str) -> Path | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a path")
    return Path(value).expanduser().absolute()
