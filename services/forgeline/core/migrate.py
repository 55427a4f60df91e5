"""Run Alembic migrations programmatically (`forgeline db upgrade`, and on start)."""

from __future__ import annotations

from pathlib import Path

import forgeline_migrations
from alembic import command
from alembic.config import Config

# The Alembic scripts ship as the `forgeline_migrations` package (the migrations/ folder), so an installed Forgeline
# (pip install ., the container image) finds them as well as a source checkout does.
MIGRATIONS_DIR = Path(forgeline_migrations.__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def autogenerate(database_url: str, message: str) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=True)
