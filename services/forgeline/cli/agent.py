"""`forgeline agent ...` (the CodeDeploy agent on a host) and `forgeline deploy-local`
(a bundle's lifecycle on this host with no server)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from forgeline.cli.boundary import CliError, Command, Group

_LIFECYCLE_HELP = (
    "Comma-separated lifecycle events to run, in order (default: ApplicationStop, "
    "DownloadBundle, BeforeInstall, Install, AfterInstall, ApplicationStart, ValidateService)."
)


@click.group("agent", cls=Group)
def agent_group() -> None:
    """The CodeDeploy agent: register this host, run the agent, deregister."""


def _config_option(function: Any) -> Any:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Agent config file (default /etc/forgeline-agent/agent.yml as root, "
        "else ~/.config/forgeline-agent/agent.yml).",
    )(function)


@agent_group.command("register")
@click.option("--name", required=True, help="On-premises instance name.")
@click.option("--tags", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeatable).")
@click.option(
    "--endpoint",
    default=None,
    help="Forgeline's URL (default AWS_ENDPOINT_URL or http://127.0.0.1:4750).",
)
@click.option("--region", default=None, help="Region (default AWS_REGION or us-east-1).")
@_config_option
@click.option(
    "--root-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where deployments are kept.",
)
@click.option(
    "--destination-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Install appspec destinations under this directory instead of / "
    "(several agents on one machine).",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the agent logs (default <root-dir>/logs).",
)
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="CA that signed the server's HTTPS certificate.",
)
@click.option(
    "--signer-certificate",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Certificate that signs deployment specifications (verified when given).",
)
@click.option(
    "--s3-endpoint", default=None, help="Where bundles are fetched (default: the endpoint)."
)
@click.option("--access-key-id", default=None, help="The instance's own key (default: make one).")
@click.option("--secret-access-key", default=None)
@click.option("--iam-user-arn", default=None, help="The principal ARN of --access-key-id.")
def agent_register(
    name: str,
    tags: tuple[str, ...],
    endpoint: str | None,
    region: str | None,
    config_path: Path | None,
    root_dir: Path | None,
    destination_root: Path | None,
    log_dir: Path | None,
    ca_file: Path | None,
    signer_certificate: Path | None,
    s3_endpoint: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    iam_user_arn: str | None,
) -> None:
    """Register this host as an on-premises instance and write the agent's config.

    The instance gets its own access key: the one given with --access-key-id,
    --secret-access-key and --iam-user-arn, or a new key for user codedeploy/NAME made in
    Forgeline's database (where `forgeline keys` works). The CodeDeploy calls use your
    usual AWS credentials.
    """
    from forgeline.codedeploy.agent import config as agent_config
    from forgeline.codedeploy.agent import registration

    name = registration.check_instance_name(name)
    tag_map = registration.parse_tags(tags)
    given = [access_key_id, secret_access_key, iam_user_arn]
    if any(given) and not all(given):
        raise click.UsageError(
            "--access-key-id, --secret-access-key and --iam-user-arn go together"
        )
    endpoint = (endpoint or registration.default_endpoint()).rstrip("/")
    region = region or registration.default_region()
    path = config_path or agent_config.default_config_path()
    session = registration.caller_session(region)
    client = registration.codedeploy_client(session, endpoint, ca_file)
    if access_key_id and secret_access_key and iam_user_arn:
        instance_key = registration.InstanceKey(
            access_key_id, secret_access_key, iam_user_arn, minted=False
        )
    else:
        instance_key = registration.mint_instance_key(name, registration.caller_key_id(session))
        # This host reaches the server's data: trust what it trusts, unless told otherwise.
        signer_pem, ca_pem = registration.server_trust_material()
        if signer_certificate is None and signer_pem is not None:
            signer_certificate = _write_beside(path, "signer.pem", signer_pem)
        if ca_file is None and ca_pem is not None and endpoint.startswith("https://"):
            ca_file = _write_beside(path, "ca.pem", ca_pem)
            client = registration.codedeploy_client(session, endpoint, ca_file)
    root = (root_dir or agent_config.default_root_dir()).expanduser().absolute()
    base = agent_config.AgentConfig(
        endpoint=endpoint,
        region=region,
        host_identifier=instance_key.iam_user_arn,
        root_dir=root,
        log_dir=(log_dir or root / "logs").expanduser().absolute(),
        ca_file=ca_file.absolute() if ca_file else None,
        signer_certificate=signer_certificate.absolute() if signer_certificate else None,
        s3_endpoint=s3_endpoint,
        destination_root=destination_root.expanduser().absolute() if destination_root else None,
    )
    configured = registration.register(client, name, instance_key, tag_map, base)
    agent_config.write_config(path, configured)
    click.echo(
        json.dumps(
            {
                "instanceName": name,
                "iamUserArn": instance_key.iam_user_arn,
                "accessKeyId": instance_key.access_key_id,
                "config": str(path),
            },
            indent=2,
        )
    )


@agent_group.command("run")
@_config_option
def agent_run(config_path: Path | None) -> None:
    """Run the agent: poll for commands and run them until SIGTERM."""
    from forgeline.codedeploy.agent import config as agent_config
    from forgeline.codedeploy.agent.client import EndpointNotTrusted
    from forgeline.codedeploy.agent.poller import Agent

    try:
        config = agent_config.load_config(config_path or agent_config.default_config_path())
    except agent_config.ConfigError as exc:
        raise CliError(str(exc)) from None
    _configure_logging(config.log_dir)
    agent = Agent.from_config(config)
    agent.install_signal_handlers()
    try:
        agent.run()
    except EndpointNotTrusted as exc:
        raise CliError(str(exc)) from None
    finally:
        agent.client.close()


@agent_group.command("deregister")
@_config_option
@click.option("--keep-key", is_flag=True, help="Keep the instance's access key in the database.")
def agent_deregister(config_path: Path | None, keep_key: bool) -> None:
    """Deregister this host's instance (and delete the key registration made for it)."""
    from forgeline.codedeploy.agent import config as agent_config
    from forgeline.codedeploy.agent import registration

    path = config_path or agent_config.default_config_path()
    try:
        config = agent_config.load_config(path)
    except agent_config.ConfigError as exc:
        raise CliError(str(exc)) from None
    if not config.instance_name:
        raise CliError(f"{path} names no instance (instance_name): was it written by register?")
    session = registration.caller_session(config.region)
    client = registration.codedeploy_client(session, config.endpoint, config.ca_file)
    client.deregister_on_premises_instance(instanceName=config.instance_name)
    deleted = False
    made_by_register = config.host_identifier.endswith(
        f":user/{registration.INSTANCE_USER_PREFIX}{config.instance_name}"
    )
    if not keep_key and made_by_register and config.access_key_id:
        deleted = registration.delete_instance_key(config.access_key_id)
    click.echo(
        json.dumps({"instanceName": config.instance_name, "accessKeyDeleted": deleted}, indent=2)
    )


@click.command("deploy-local", cls=Command)
@click.option(
    "--bundle-location",
    "-l",
    required=True,
    type=click.Path(path_type=Path),
    help="The bundle: an archive or a directory.",
)
@click.option(
    "--type",
    "-t",
    "bundle_type",
    type=click.Choice(["zip", "tar", "tgz", "directory"]),
    default=None,
    help="Bundle type (default: from the location).",
)
@click.option("--events", "-e", default=None, help=_LIFECYCLE_HELP)
@click.option(
    "--file-exists-behavior",
    "-b",
    type=click.Choice(["DISALLOW", "OVERWRITE", "RETAIN"], case_sensitive=False),
    default=None,
    help="Overrides the appspec's file_exists_behavior (default DISALLOW).",
)
@click.option(
    "--deployment-group",
    "-d",
    default="default-local-deployment-group",
    show_default=True,
    help="The local deployment group (its last revision is what ApplicationStop runs and Install replaces).",
)
@click.option(
    "--application-folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where deployments, their logs and install records are kept (default: the agent's root dir).",
)
@click.option(
    "--appspec-filename",
    "-a",
    default=None,
    help="The appspec's name in the bundle (default appspec.yml).",
)
def deploy_local(
    bundle_location: Path,
    bundle_type: str | None,
    events: str | None,
    file_exists_behavior: str | None,
    deployment_group: str,
    application_folder: Path | None,
    appspec_filename: str | None,
) -> None:
    """Run a bundle's lifecycle events on this host with no server, as codedeploy-local does.

    Exits 0 when every event succeeded, 1 when one failed (its log tail is printed).
    """
    from forgeline.codedeploy.agent import deploy_local as local
    from forgeline.codedeploy.agent.config import default_root_dir

    wanted = tuple(name.strip() for name in events.split(",") if name.strip()) if events else None
    options = local.LocalOptions(
        bundle_location=bundle_location,
        root_dir=(application_folder or default_root_dir()).expanduser().absolute(),
        bundle_type=bundle_type,
        events=wanted,
        file_exists_behavior=file_exists_behavior.upper() if file_exists_behavior else None,
        deployment_group=deployment_group,
        appspec_filename=appspec_filename,
    )
    try:
        outcome = local.run_local(options, click.echo)
    except local.LocalDeployError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(0 if outcome.succeeded else 1)


def _write_beside(config_path: Path, name: str, data: bytes) -> Path:
    from forgeline.codedeploy.agent.layout import write_atomically

    target = config_path.absolute().parent / name
    write_atomically(target, data.decode("ascii"))
    return target


def _configure_logging(log_dir: Path) -> None:
    level = os.environ.get("FORGELINE_LOG_LEVEL", "INFO").upper()
    log_dir.mkdir(parents=True, exist_ok=True)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger("forgeline.agent")
    logger.setLevel(level)
    for handler in (
        logging.StreamHandler(sys.stderr),
        logging.FileHandler(log_dir / "forgeline-agent.log"),
    ):
        handler.setFormatter(formatter)
        logger.addHandler(handler)
