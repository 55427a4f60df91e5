"""Every table module, imported in one place so Base.metadata is complete.

Alembic (migrations/env.py) and the reset endpoint both need the full set of tables;
a service that adds tables lists its module here.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from forgeline.core.db import Base

TABLE_MODULES = (
    "forgeline.core.auth.tables",
    "forgeline.core.events.tables",
    "forgeline.core.work.tables",
    "forgeline.core.resources",
    "forgeline.codecommit.tables.repositories",
    "forgeline.codecommit.tables.git_credentials",
    "forgeline.codecommit.tables.pull_requests",
    "forgeline.codecommit.tables.comments",
    "forgeline.codecommit.tables.triggers",
    "forgeline.codebuild.tables.builds",
    "forgeline.codebuild.tables.projects",
    "forgeline.logs.tables",
    "forgeline.ssm.tables",
    "forgeline.secretsmanager.tables",
    "forgeline.codebuild.tables.reports",
    "forgeline.codebuild.tables.source_credentials",
    "forgeline.codebuild.tables.batches",
)

# Identity survives a reset: wiping it would invalidate every test suite's credentials.
KEPT_ON_RESET = frozenset({"accounts", "access_keys", "alembic_version"})


def load_metadata() -> MetaData:
    for module in TABLE_MODULES:
        importlib.import_module(module)
    return Base.metadata
