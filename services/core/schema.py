"""Every table module, imported in one place so Base.metadata is complete.

Alembic (migrations/env.py) and the reset endpoint both need the full set of tables;
a service that adds tables lists its module here.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from services.core.db import Base

TABLE_MODULES = (
    "services.core.auth.tables",
    "services.core.events.tables",
    "services.core.work.tables",
    "services.core.resources",
    "services.repo.tables",
    "services.repo.tables_git_credentials",
    "services.repo.tables_pull_requests",
    "services.repo.tables_comments",
    "services.repo.tables_triggers",
    "services.build.tables_builds",
    "services.build.tables_projects",
    "services.build.tables_logs",
    "services.build.tables_secrets",
    "services.build.tables_reports",
    "services.build.tables_source_credentials",
    "services.build.tables_batches",
)

# Identity survives a reset: wiping it would invalidate every test suite's credentials.
KEPT_ON_RESET = frozenset({"accounts", "access_keys", "alembic_version"})


def load_metadata() -> MetaData:
    for module in TABLE_MODULES:
        importlib.import_module(module)
    return Base.metadata
