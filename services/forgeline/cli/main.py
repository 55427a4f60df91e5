"""`forgeline`: run the server, the worker and beat; manage the database, accounts and keys.

The command groups live in this package, one module each. Nothing heavy is
imported at load time (the settings model, the database, uvicorn, boto3, Docker): each
command imports what it needs, so `forgeline --help` and `--version` answer at once.
"""

from __future__ import annotations

import os
import sys

import click

from forgeline.cli import admin, agent, git, images, logs, tables, traffic
from forgeline.cli.boundary import RootGroup
from forgeline.core.service_names import SERVICE_NAMES


def _apply(**overrides: object) -> None:
    """Command-line options win over FORGELINE_* variables; set them before settings load."""
    from forgeline.core.settings import reset_settings_cache

    for name, value in overrides.items():
        if value is not None:
            os.environ[f"FORGELINE_{name.upper()}"] = str(value)
    reset_settings_cache()


@click.group(cls=RootGroup, context_settings={"max_content_width": 100})
@click.version_option(
    package_name="forgeline", prog_name="forgeline", message="%(prog)s %(version)s"
)
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
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Server processes sharing the ports (default: one per CPU core, at most 4, for "
    "all services; one for a single --service).",
)
def serve(
    host: str | None, port: int | None, data_dir: str | None, service: str, workers: int | None
) -> None:
    """Start Forgeline's HTTP API."""
    from forgeline.cli import serving
    from forgeline.core.settings import get_settings, is_loopback_host

    _apply(host=host, port=port, data_dir=data_dir, workers=workers)
    settings = get_settings()
    if not is_loopback_host(settings.host) and settings.auth != "enforce":
        # Permissive auth never leaves loopback: a server reachable from elsewhere verifies everyone.
        _apply(auth="enforce")
        settings = get_settings()
    # The ports first: a busy one must fail before anything is written.
    http_socket = serving.bind_http(settings)
    https_socket = serving.bind_https(settings)
    from forgeline.core.observability import configure_logging

    configure_logging(settings.log_level)
    apps = list(SERVICE_NAMES) if service == "all" else [service]
    serving.prepare_state(settings, bootstrap=service == "all")
    https = None
    if https_socket is not None:
        https = (https_socket, serving.https_certificate(settings, https_socket))
    # One service alone is the production shape: it scales by replicas, and each process is
    # its own /metrics target, so it runs one process unless asked for more.
    processes = settings.server_processes if service == "all" or settings.workers else 1
    if processes == 1:
        serving.serve_process(apps, settings, http_socket, https)
        return
    serving.serve_workers(processes, apps, settings, http_socket, https)


@main.command()
@click.option("--concurrency", type=int, default=None, help="Task slots (default from settings).")
def worker(concurrency: int | None) -> None:
    """Run a Celery worker (production stack)."""
    from forgeline.codebuild.runners import describe_runner_choice
    from forgeline.core.observability import configure_logging
    from forgeline.core.settings import get_settings
    from forgeline.core.work.celery_app import run_worker

    configure_logging(get_settings().log_level)
    describe_runner_choice(get_settings())
    run_worker(get_settings(), concurrency=concurrency)


@main.command()
def beat() -> None:
    """Run the periodic scheduler: the lease reaper (production stack)."""
    from forgeline.core.observability import configure_logging
    from forgeline.core.settings import get_settings
    from forgeline.core.work.celery_app import run_beat

    configure_logging(get_settings().log_level)
    run_beat(get_settings())


for command in (
    admin.db,
    admin.accounts,
    admin.keys_group,
    admin.git_credentials,
    git.git_group,
    admin.repo_group,
    admin.deploy_group,
    images.images_group,
    images.build_local,
    agent.agent_group,
    agent.deploy_local,
    traffic.traffic_group,
    logs.logs_group,
    tables.codegen,
    tables.coverage,
    tables.config,
):
    main.add_command(command)


if __name__ == "__main__":
    sys.exit(main(prog_name="forgeline"))
