"""Alembic environment: one history for every service, on SQLite and Postgres alike."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from forgeline.core.db import get_engine
from forgeline.core.schema import load_metadata
from forgeline.core.settings import get_settings

# Any number, as long as every Forgeline process uses the same one.
MIGRATION_LOCK_KEY = 0x464F5247


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url
    engine = get_engine(url)
    metadata = load_metadata()
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Several services may start at once; only one may migrate at a time.
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()


run_migrations()
