"""Operator commands on the server's state: the database schema, accounts, access keys,
HTTPS git credentials and repository webhook secrets."""

from __future__ import annotations

import json
from typing import Any

import click

from forgeline.cli.boundary import CliError, Group


def _prepared_settings() -> Any:
    """The settings, with the data directory and the schema in place."""
    from forgeline.core import lifecycle
    from forgeline.core.settings import get_settings

    return lifecycle.prepare_database(get_settings())


@click.group(cls=Group)
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION."""
    from forgeline.core.migrate import upgrade
    from forgeline.core.settings import get_settings

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url, revision)
    click.echo(f"database at {revision}")


@click.group(cls=Group)
def accounts() -> None:
    """Accounts."""


@accounts.command("create")
@click.option("--name", default="account", show_default=True)
@click.option("--account-id", default=None, help="12-digit id (random if omitted).")
@click.option("--with-key/--no-key", default=True, help="Also create an admin access key.")
def accounts_create(name: str, account_id: str | None, with_key: bool) -> None:
    """Create an account (and an admin access key for it)."""
    from forgeline.core import lifecycle
    from forgeline.core.auth import keys
    from forgeline.core.auth.tables import Account
    from forgeline.core.db import session_scope

    settings = _prepared_settings()
    server_key = lifecycle.server_key(settings)
    with session_scope() as session:
        if account_id is not None and session.get(Account, account_id) is not None:
            raise CliError(f"account {account_id} already exists")
        account = keys.create_account(session, name, account_id=account_id)
        out: dict[str, str] = {"accountId": account.id, "name": account.name}
        if with_key:
            key_id, secret = keys.create_access_key(
                session, account.id, "admin", server_key=server_key
            )
            out.update(accessKeyId=key_id, secretAccessKey=secret)
    click.echo(json.dumps(out, indent=2))


@click.group("keys", cls=Group)
def keys_group() -> None:
    """Access keys."""


@keys_group.command("create")
@click.option("--account-id", required=True)
@click.option("--user", default="admin", show_default=True, help="User name in the principal ARN.")
def keys_create(account_id: str, user: str) -> None:
    """Create an access key for an account."""
    from forgeline.core import lifecycle
    from forgeline.core.auth import keys
    from forgeline.core.db import session_scope

    settings = _prepared_settings()
    with session_scope() as session:
        key_id, secret = keys.create_access_key(
            session, account_id, user, server_key=lifecycle.server_key(settings)
        )
    click.echo(
        json.dumps(
            {"accessKeyId": key_id, "secretAccessKey": secret, "accountId": account_id}, indent=2
        )
    )


@keys_group.command("list")
@click.option("--account-id", default=None)
def keys_list(account_id: str | None) -> None:
    """List access keys (never their secrets)."""
    from forgeline.core.auth import keys
    from forgeline.core.db import session_scope

    _prepared_settings()
    with session_scope() as session:
        rows = keys.list_access_keys(session, account_id)
        click.echo(
            json.dumps(
                [
                    {
                        "accessKeyId": r.access_key_id,
                        "accountId": r.account_id,
                        "principalArn": r.principal_arn,
                        "status": r.status,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )


@keys_group.command("delete")
@click.argument("access_key_id")
def keys_delete(access_key_id: str) -> None:
    """Delete an access key."""
    from forgeline.core.auth import keys
    from forgeline.core.db import session_scope

    _prepared_settings()
    with session_scope() as session:
        if not keys.delete_access_key(session, access_key_id):
            raise CliError(f"no access key {access_key_id}")
    click.echo(f"deleted {access_key_id}")


@click.group("git-credentials", cls=Group)
def git_credentials() -> None:
    """HTTPS git credentials: a user name and password for a user, like AWS's
    service-specific credentials for CodeCommit."""


def _credential_json(credential: Any, password: str | None = None) -> dict[str, str]:
    out = {
        "serviceSpecificCredentialId": credential.id,
        "serviceName": "codecommit.amazonaws.com",
        "serviceUserName": credential.service_user_name,
        "userName": credential.user_name,
        "accountId": credential.account_id,
        "status": credential.status,
        "createDate": credential.created_at.isoformat(),
    }
    if password is not None:
        out["servicePassword"] = password
    return out


@git_credentials.command("create")
@click.option("--account-id", required=True)
@click.option("--user", required=True, help="User name (as in the principal ARN).")
def git_credentials_create(account_id: str, user: str) -> None:
    """Create a git user name and password (the password is shown only now)."""
    from forgeline.codecommit import git_auth
    from forgeline.core.db import session_scope

    _prepared_settings()
    with session_scope() as session:
        credential, password = git_auth.create_credential(session, account_id, user)
        out = _credential_json(credential, password)
    click.echo(json.dumps(out, indent=2))


@git_credentials.command("list")
@click.option("--account-id", default=None)
@click.option("--user", default=None)
def git_credentials_list(account_id: str | None, user: str | None) -> None:
    """List git credentials (never their passwords)."""
    from forgeline.codecommit import git_auth
    from forgeline.core.db import session_scope

    _prepared_settings()
    with session_scope() as session:
        rows = git_auth.list_credentials(session, account_id, user)
        click.echo(json.dumps([_credential_json(row) for row in rows], indent=2))


@git_credentials.command("delete")
@click.option("--account-id", required=True)
@click.option("--user", required=True)
@click.option("--credential-id", default=None, help="Only this one (default: all of the user's).")
def git_credentials_delete(account_id: str, user: str, credential_id: str | None) -> None:
    """Delete a user's git credentials."""
    from forgeline.codecommit import git_auth
    from forgeline.core.db import session_scope

    _prepared_settings()
    with session_scope() as session:
        deleted = git_auth.delete_credentials(session, account_id, user, credential_id)
    if not deleted:
        raise CliError(f"no git credentials of {user} in {account_id} to delete")
    click.echo(json.dumps({"deleted": deleted}, indent=2))


@click.group("repo", cls=Group)
def repo_group() -> None:
    """CodeCommit repositories (operator commands beyond the AWS API)."""


@repo_group.command("webhook-secret")
@click.option("--account-id", required=True)
@click.option("--region", default=None, help="Default: FORGELINE_DEFAULT_REGION.")
@click.option("--repository", required=True, help="Repository name.")
@click.option("--rotate", is_flag=True, help="Replace the secret with a new one.")
def repo_webhook_secret(account_id: str, region: str | None, repository: str, rotate: bool) -> None:
    """Print the secret that signs a repository's trigger webhooks (X-Forgeline-Signature)."""
    from forgeline.codecommit import triggers
    from forgeline.codecommit.tables.repositories import Repository
    from forgeline.core.db import session_scope

    settings = _prepared_settings()
    with session_scope() as session:
        row = (
            session.query(Repository)
            .filter_by(
                account_id=account_id, region=region or settings.default_region, name=repository
            )
            .one_or_none()
        )
        if row is None:
            raise CliError(f"no repository {repository!r} in account {account_id}")
        secret = (
            triggers.rotate_webhook_secret(session, row, settings)
            if rotate
            else triggers.webhook_secret(session, row, settings)
        )
    click.echo(secret)


@click.group("deploy", cls=Group)
def deploy_group() -> None:
    """CodeDeploy deployment groups (operator commands beyond the AWS API)."""


@deploy_group.command("trigger-secret")
@click.option("--account-id", required=True)
@click.option("--region", default=None, help="Default: FORGELINE_DEFAULT_REGION.")
@click.option("--application-name", required=True)
@click.option("--deployment-group-name", required=True)
def deploy_trigger_secret(
    account_id: str, region: str | None, application_name: str, deployment_group_name: str
) -> None:
    """Print the secret that signs a deployment group's trigger webhooks
    (X-Forgeline-Signature)."""
    from forgeline.codedeploy.deploying.notifications import trigger_secret
    from forgeline.codedeploy.ops.lookups import find_application, find_deployment_group
    from forgeline.core.db import session_scope

    settings = _prepared_settings()
    with session_scope(readonly=True) as session:
        application = find_application(
            session, account_id, region or settings.default_region, application_name
        )
        group = (
            find_deployment_group(session, application, deployment_group_name)
            if application
            else None
        )
        if group is None:
            raise CliError(
                f"no deployment group {deployment_group_name!r} of application "
                f"{application_name!r} in account {account_id}"
            )
        secret = trigger_secret(group)
    click.echo(secret)
