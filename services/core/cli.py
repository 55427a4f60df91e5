"""`forgeline`: run the server, the worker and beat; manage the database, accounts and keys."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from services.core.settings import (
    SERVICE_NAMES,
    get_settings,
    is_loopback_host,
    reset_settings_cache,
)


def _apply(**overrides: object) -> None:
    """Command-line options win over FORGELINE_* variables; set them before settings load."""
    for name, value in overrides.items():
        if value is not None:
            os.environ[f"FORGELINE_{name.upper()}"] = str(value)
    reset_settings_cache()


@click.group()
def main() -> None:
    """Forgeline: AWS CodeCommit, CodeBuild, CodeDeploy and CodePipeline that really run."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to bind (default 4750).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="State directory (default ./.forgeline).",
)
@click.option(
    "--service",
    type=click.Choice([*SERVICE_NAMES, "all"]),
    default="all",
    help="Serve one service alone (production stack) or all behind one port.",
)
def serve(host: str | None, port: int | None, data_dir: str | None, service: str) -> None:
    """Start Forgeline's HTTP API."""
    import uvicorn

    _apply(host=host, port=port, data_dir=data_dir)
    settings = get_settings()
    if not is_loopback_host(settings.host) and settings.auth != "enforce":
        # Permissive auth never leaves loopback: a server reachable from elsewhere verifies everyone.
        _apply(auth="enforce")
        settings = get_settings()
    from services.core.observability import configure_logging
    from services.core.server import create_app

    configure_logging(settings.log_level)
    apps = list(SERVICE_NAMES) if service == "all" else [service]
    app = create_app(apps, settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_graceful_shutdown=10,
        access_log=False,
    )


@main.command()
@click.option("--concurrency", type=int, default=None, help="Task slots (default from settings).")
def worker(concurrency: int | None) -> None:
    """Run a Celery worker (production stack)."""
    from services.core.observability import configure_logging
    from services.core.work.celery_app import run_worker

    configure_logging(get_settings().log_level)
    run_worker(get_settings(), concurrency=concurrency)


@main.command()
def beat() -> None:
    """Run the periodic scheduler: the lease reaper (production stack)."""
    from services.core.observability import configure_logging
    from services.core.work.celery_app import run_beat

    configure_logging(get_settings().log_level)
    run_beat(get_settings())


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default head)."""
    from services.core.migrate import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url, revision)
    click.echo(f"database at {revision}")


@main.group()
def accounts() -> None:
    """Accounts."""


@accounts.command("create")
@click.option("--name", default="account")
@click.option("--account-id", default=None, help="12-digit id (random if omitted).")
@click.option("--with-key/--no-key", default=True, help="Also create an admin access key.")
def accounts_create(name: str, account_id: str | None, with_key: bool) -> None:
    """Create an account (and an admin access key for it)."""
    from services.core import lifecycle
    from services.core.auth import keys
    from services.core.db import session_scope

    settings = lifecycle.prepare_database(get_settings())
    server_key = lifecycle.server_key(settings)
    with session_scope() as session:
        account = keys.create_account(session, name, account_id=account_id)
        out: dict[str, str] = {"accountId": account.id, "name": account.name}
        if with_key:
            key_id, secret = keys.create_access_key(
                session, account.id, "admin", server_key=server_key
            )
            out.update(accessKeyId=key_id, secretAccessKey=secret)
    click.echo(json.dumps(out, indent=2))


@main.group("keys")
def keys_group() -> None:
    """Access keys."""


@keys_group.command("create")
@click.option("--account-id", required=True)
@click.option("--user", default="admin", help="User name in the principal ARN.")
def keys_create(account_id: str, user: str) -> None:
    """Create an access key for an account."""
    from services.core import lifecycle
    from services.core.auth import keys
    from services.core.db import session_scope

    settings = lifecycle.prepare_database(get_settings())
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
    from services.core import lifecycle
    from services.core.auth import keys
    from services.core.db import session_scope

    lifecycle.prepare_database(get_settings())
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
    from services.core import lifecycle
    from services.core.auth import keys
    from services.core.db import session_scope

    lifecycle.prepare_database(get_settings())
    with session_scope() as session:
        if not keys.delete_access_key(session, access_key_id):
            raise click.ClickException(f"no access key {access_key_id}")
    click.echo(f"deleted {access_key_id}")


@main.command()
def codegen() -> None:
    """Regenerate typed stubs from the installed botocore models."""
    from services.core.protocol.codegen import generate

    root = Path(__file__).resolve().parents[2]
    for path in generate(root):
        click.echo(path.relative_to(root))


@main.command()
@click.option("--write", is_flag=True, help="Rewrite the coverage and configuration tables in README.md.")
def coverage(write: bool) -> None:
    """Print the per-service operation coverage table (and with --write, update README.md)."""
    from services.core.coverage import coverage_table, write_readme_tables

    if write:
        write_readme_tables(Path(__file__).resolve().parents[2] / "README.md")
    click.echo(coverage_table())


@main.command()
def config() -> None:
    """Print the configuration table (every FORGELINE_* variable)."""
    from services.core.coverage import config_table

    click.echo(config_table())


if __name__ == "__main__":
    sys.exit(main())
