"""One Alembic history builds exactly the tables the models declare, on this run's backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from forgeline.core.db import get_engine
from forgeline.core.migrate import upgrade
from forgeline.core.schema import load_metadata


def test_migrations_match_the_models(database_url):
    upgrade(database_url)
    engine = get_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, load_metadata())
    assert differences == [], f"models and migrations differ; add a migration: {differences}"


def test_upgrade_is_idempotent(database_url):
    upgrade(database_url)
    upgrade(database_url)
    tables = set(inspect(get_engine(database_url)).get_table_names())
    assert {
        "accounts",
        "access_keys",
        "events",
        "jobs",
        "repositories",
        "alembic_version",
    } <= tables
