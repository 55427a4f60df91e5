"""Fresh, throw-away databases for tests, on the backend the run is for.

FORGELINE_TEST_BACKEND=postgres (the default in CI's first pass) uses the local Postgres
and Redis; FORGELINE_TEST_BACKEND=sqlite uses a file and the in-process broker.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "FORGELINE_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("FORGELINE_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def backend() -> str:
    return os.environ.get("FORGELINE_TEST_BACKEND", "sqlite")


def create_database(tmp_dir: Path) -> str:
    """Return the URL of a new empty database."""
    if backend() == "postgres":
        name = f"forgeline_test_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    return f"sqlite:///{tmp_dir / f'forgeline-{uuid.uuid4().hex[:8]}.db'}"


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def broker_url(db_index: int = 0) -> str:
    if backend() == "postgres":
        return f"{REDIS_URL}/{db_index}"
    return "memory://"
