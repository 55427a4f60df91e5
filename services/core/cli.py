"""`forgeline`: run the server, the worker and beat; manage the database, accounts and keys."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

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
@click.option(
    "--workers", type=int, default=None, help="Server processes sharing the ports (default 1)."
)
def serve(
    host: str | None, port: int | None, data_dir: str | None, service: str, workers: int | None
) -> None:
    """Start Forgeline's HTTP API."""
    _apply(host=host, port=port, data_dir=data_dir, workers=workers)
    settings = get_settings()
    if not is_loopback_host(settings.host) and settings.auth != "enforce":
        # Permissive auth never leaves loopback: a server reachable from elsewhere verifies everyone.
        _apply(auth="enforce")
        settings = get_settings()
    from services.core.observability import configure_logging

    configure_logging(settings.log_level)
    apps = list(SERVICE_NAMES) if service == "all" else [service]
    if settings.workers == 1:
        _serve_process(apps, settings, _https_socket(settings), http_socket=None)
        return
    _prepare_before_fork(settings, bootstrap=service == "all")
    http_socket = _bind(settings.host, settings.port)
    _serve_workers(settings.workers, apps, settings, http_socket, _https_socket(settings))


def _serve_process(
    apps: list[str],
    settings: Any,
    https: tuple[socket.socket, Any] | None,
    http_socket: socket.socket | None,
) -> None:
    """One server process: the HTTP API and, if enabled, HTTPS, on one event loop."""
    import uvicorn

    from services.core.server import create_app

    app = create_app(apps, settings)
    http = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            timeout_graceful_shutdown=10,
            access_log=False,
        )
    )
    https_server = None
    if https is not None:
        sock, files = https
        https_server = (_https_uvicorn(app, settings, files, sock.getsockname()[1]), sock)
    with asyncio.Runner(loop_factory=http.config.get_loop_factory()) as runner:
        runner.run(_serve_together(http, https_server, http_socket))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _prepare_before_fork(settings: Any, *, bootstrap: bool) -> None:
    """Migrate and make the first credentials once, so worker processes cannot race to it.

    Each worker repeats both at start-up and finds them done. The engines are disposed so
    no connection crosses the fork.
    """
    from services.core import lifecycle
    from services.core.auth import keys
    from services.core.db import dispose_engines, session_scope

    lifecycle.prepare_database(settings)
    if bootstrap:
        with session_scope() as session:
            keys.ensure_bootstrap_credentials(session, settings, lifecycle.server_key(settings))
    dispose_engines()


def _serve_workers(
    count: int,
    apps: list[str],
    settings: Any,
    http_socket: socket.socket,
    https: tuple[socket.socket, Any] | None,
) -> None:
    """Fork COUNT server processes that accept on the same sockets; stop them all together.

    The kernel spreads connections over the processes. If one exits, the others are
    stopped too, so a supervisor sees the server fail instead of running short-handed.
    """
    import signal

    children: list[int] = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                _serve_process(apps, settings, https, http_socket)
                code = 0
            finally:
                os._exit(code)
        children.append(pid)

    def stop(_signum: int, _frame: Any) -> None:
        # Always SIGTERM: a second SIGINT (Ctrl-C reaches the children too) would make
        # uvicorn skip its graceful shutdown.
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    while children:
        pid, status = os.wait()
        if pid not in children:
            continue
        children.remove(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            failed = True
        stop(signal.SIGTERM, None)
    if failed:
        sys.exit(1)


def _https_socket(settings: Any) -> tuple[socket.socket, Any] | None:
    """The HTTPS endpoint's socket and certificate (git-remote-codecommit speaks only HTTPS).

    The same app answers on it, on its own port; the HTTP server alone runs the app's
    startup and shutdown.
    """
    from services.repo import tls

    port = tls.tls_port(settings)
    if port is None:
        return None
    try:
        sock = _bind(settings.host, port)
    except OSError as exc:
        if settings.git_tls_port is not None:
            raise click.ClickException(f"cannot serve HTTPS on port {port}: {exc}") from None
        # Only the derived default (port + 1) may be busy without stopping the server.
        click.echo(
            f"warning: HTTPS (git) not served: port {port} is busy ({exc}); "
            "set FORGELINE_GIT_TLS_PORT",
            err=True,
        )
        return None
    files = tls.ensure_certificate(settings)
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    click.echo(tls.trust_instructions(files, f"https://{shown_host}:{port}"), err=True)
    return sock, files


def _https_uvicorn(app: Any, settings: Any, files: Any, port: int) -> Any:
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=port,
            ssl_certfile=str(files.cert_file),
            ssl_keyfile=str(files.key_file),
            lifespan="off",
            log_config=None,
            timeout_graceful_shutdown=10,
            access_log=False,
        )
    )


async def _serve_together(
    http: Any, https: tuple[Any, socket.socket] | None, http_socket: socket.socket | None
) -> None:
    """Run the HTTP server and, once it has started, the HTTPS one; stop both together."""
    sockets = [http_socket] if http_socket is not None else None
    tasks = [asyncio.create_task(http.serve(sockets=sockets))]
    if https is not None:
        while not http.started and not tasks[0].done():
            await asyncio.sleep(0.01)
        server, sock = https
        tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    http.should_exit = True
    if https is not None:
        https[0].should_exit = True
    await asyncio.gather(*tasks)


@main.command()
@click.option("--concurrency", type=int, default=None, help="Task slots (default from settings).")
def worker(concurrency: int | None) -> None:
    """Run a Celery worker (production stack)."""
    from services.build.runners import describe_runner_choice
    from services.core.observability import configure_logging
    from services.core.work.celery_app import run_worker

    configure_logging(get_settings().log_level)
    describe_runner_choice(get_settings())
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


@main.group("git-credentials")
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
    from services.core import lifecycle
    from services.core.auth import keys
    from services.core.db import session_scope
    from services.repo import git_auth

    lifecycle.prepare_database(get_settings())
    try:
        with session_scope() as session:
            credential, password = git_auth.create_credential(session, account_id, user)
            out = _credential_json(credential, password)
    except (ValueError, keys.AccountNotFound) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(out, indent=2))


@git_credentials.command("list")
@click.option("--account-id", default=None)
@click.option("--user", default=None)
def git_credentials_list(account_id: str | None, user: str | None) -> None:
    """List git credentials (never their passwords)."""
    from services.core import lifecycle
    from services.core.db import session_scope
    from services.repo import git_auth

    lifecycle.prepare_database(get_settings())
    with session_scope() as session:
        rows = git_auth.list_credentials(session, account_id, user)
        click.echo(json.dumps([_credential_json(row) for row in rows], indent=2))


@git_credentials.command("delete")
@click.option("--account-id", required=True)
@click.option("--user", required=True)
@click.option("--credential-id", default=None, help="Only this one (default: all of the user's).")
def git_credentials_delete(account_id: str, user: str, credential_id: str | None) -> None:
    """Delete a user's git credentials."""
    from services.core import lifecycle
    from services.core.db import session_scope
    from services.repo import git_auth

    lifecycle.prepare_database(get_settings())
    with session_scope() as session:
        deleted = git_auth.delete_credentials(session, account_id, user, credential_id)
    if not deleted:
        raise click.ClickException(f"no git credentials of {user} in {account_id} to delete")
    click.echo(json.dumps({"deleted": deleted}, indent=2))


@main.group("repo")
def repo_group() -> None:
    """CodeCommit repositories (operator commands beyond the AWS API)."""


@repo_group.command("webhook-secret")
@click.option("--account-id", required=True)
@click.option("--region", default=None, help="Default: FORGELINE_DEFAULT_REGION.")
@click.option("--repository", required=True, help="Repository name.")
@click.option("--rotate", is_flag=True, help="Replace the secret with a new one.")
def repo_webhook_secret(account_id: str, region: str | None, repository: str, rotate: bool) -> None:
    """Print the secret that signs a repository's trigger webhooks (X-Forgeline-Signature)."""
    from services.core import lifecycle
    from services.core.db import session_scope
    from services.repo import triggers
    from services.repo.tables import Repository

    settings = lifecycle.prepare_database(get_settings())
    with session_scope() as session:
        row = (
            session.query(Repository)
            .filter_by(
                account_id=account_id, region=region or settings.default_region, name=repository
            )
            .one_or_none()
        )
        if row is None:
            raise click.ClickException(f"no repository {repository!r} in account {account_id}")
        secret = (
            triggers.rotate_webhook_secret(session, row, settings)
            if rotate
            else triggers.webhook_secret(session, row, settings)
        )
    click.echo(secret)


@main.group("images")
def images_group() -> None:
    """Local build images (made from a root filesystem; no registry needed)."""


@images_group.command("build")
@click.argument("kind", type=click.Choice(["standard", "tiny"]), default="standard")
@click.option("--runtimes", is_flag=True, help="Add Debian's language runtimes (standard only).")
@click.option("--tag", default=None, help="Image reference (default forgeline/<kind>:latest).")
def images_build(kind: str, runtimes: bool, tag: str | None) -> None:
    """Build the standard (debootstrap, about a minute) or tiny (BusyBox) image."""
    from services.build import images

    try:
        ref = images.build_image(kind, runtimes=runtimes, tag=tag, progress=click.echo)
    except images.ImageBuildError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(ref)


@images_group.command("list")
def images_list() -> None:
    """List the local Forgeline build images and the runtimes each holds."""
    from services.build import images

    click.echo(json.dumps(images.list_images(), indent=2))


@main.command("build-local")
@click.option(
    "--source",
    "-s",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Source directory (copied into the build, never changed).",
)
@click.option(
    "--secondary-source",
    "secondary_sources",
    multiple=True,
    metavar="ID:DIR",
    help="A secondary source directory, copied to CODEBUILD_SRC_DIR_<ID> (repeatable).",
)
@click.option(
    "--buildspec",
    "-b",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Buildspec file (default: buildspec.yml in the source directory).",
)
@click.option("--image", "-i", default=None, help="Build image (Docker runner).")
@click.option(
    "--runner",
    type=click.Choice(["auto", "docker", "host"]),
    default="auto",
    show_default=True,
    help="auto: Docker when an engine answers, else host processes.",
)
@click.option(
    "--artifacts",
    "-a",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory the build's artifacts are written to.",
)
@click.option(
    "--packaging",
    type=click.Choice(["ZIP", "NONE"], case_sensitive=False),
    default="ZIP",
    show_default=True,
    help="ZIP writes artifacts.zip and <id>.zip per secondary artifact; NONE writes the "
    "files, each secondary artifact's in <id>/.",
)
@click.option(
    "--reports",
    "-r",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory the report groups' files are copied to (<group>/...).",
)
@click.option(
    "--env-file",
    "-e",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="KEY=VALUE lines added to the build's environment variables.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the LOCAL cache is kept between runs "
    "(default ~/.cache/forgeline/build-local/<hash of the source path>).",
)
@click.option("--no-cache", is_flag=True, help="Neither restore nor save the cache.")
@click.option(
    "--compute-type", default="BUILD_GENERAL1_SMALL", show_default=True, help="CPU/memory size."
)
@click.option("--privileged", is_flag=True, help="Privileged mode (e.g. Docker in the build).")
def build_local(
    source: Path,
    secondary_sources: tuple[str, ...],
    buildspec: Path | None,
    image: str | None,
    runner: str,
    artifacts: Path | None,
    packaging: str,
    report_dir: Path | None,
    env_file: Path | None,
    cache_dir: Path | None,
    no_cache: bool,
    compute_type: str,
    privileged: bool,
) -> None:
    """Run a buildspec on this machine, without a server (like AWS's local CodeBuild agent).

    Exits 0 when the build SUCCEEDED, 1 otherwise, 2 for a command line that cannot be built.
    """
    from services.build import local

    try:
        secondary = tuple(local.parse_secondary_source(text) for text in secondary_sources)
    except local.LocalBuildUsageError as exc:
        raise click.UsageError(str(exc)) from None
    options = local.LocalBuildOptions(
        source=source,
        secondary_sources=secondary,
        buildspec=buildspec,
        image=image,
        runner=runner,
        artifacts=artifacts,
        packaging=packaging.upper(),
        report_dir=report_dir,
        env_file=env_file,
        cache_dir=cache_dir,
        use_cache=not no_cache,
        compute_type=compute_type,
        privileged=privileged,
    )
    try:
        status = local.run_local_build(options, click.echo)
    except local.LocalBuildUsageError as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(status)


@main.command()
def codegen() -> None:
    """Regenerate typed stubs from the installed botocore models."""
    from services.core.protocol.codegen import generate

    root = Path(__file__).resolve().parents[2]
    for path in generate(root):
        click.echo(path.relative_to(root))


@main.command()
@click.option(
    "--write", is_flag=True, help="Rewrite the coverage and configuration tables in README.md."
)
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
