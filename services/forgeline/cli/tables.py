"""Tables and stubs generated from the code: coverage, configuration, typed stubs."""

from __future__ import annotations

from pathlib import Path

import click

from forgeline.cli.boundary import Command

# The checkout's root: README.md and the generated stubs live under it.
ROOT = Path(__file__).resolve().parents[3]  # services/forgeline/cli/tables.py


@click.command(cls=Command)
def codegen() -> None:
    """Regenerate typed stubs from the installed botocore models."""
    from forgeline.core.protocol.codegen import generate

    for path in generate(ROOT):
        click.echo(path.relative_to(ROOT))


@click.command(cls=Command)
@click.option(
    "--write", is_flag=True, help="Rewrite the coverage and configuration tables in README.md."
)
def coverage(write: bool) -> None:
    """Print the per-service operation coverage table (and with --write, update README.md)."""
    from forgeline.core.coverage import coverage_table, write_readme_tables

    if write:
        write_readme_tables(ROOT / "README.md")
    click.echo(coverage_table())


@click.command(cls=Command)
def config() -> None:
    """Print the configuration table (every FORGELINE_* variable)."""
    from forgeline.core.coverage import config_table

    click.echo(config_table())
