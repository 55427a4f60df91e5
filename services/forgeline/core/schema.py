"""Every table module, imported in one place so Base.metadata is complete.

Alembic (migrations/env.py) and the reset endpoint both need the full set of tables:
the core's own, then each service's, as its manifest declares them.
"""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from forgeline.core import manifest
from forgeline.core.db import Base

CORE_TABLE_MODULES = (
    "forgeline.core.auth.tables",
    "forgeline.core.events.tables",
    "forgeline.core.work.tables",
    "forgeline.core.resources",
)


def table_modules() -> list[str]:
    return [*CORE_TABLE_MODULES, *manifest.table_modules()]


# Identity survives a reset: wiping it would invalidate every test suite's credentials.
KEPT_ON_RESET = frozenset({"accounts", "access_keys", "alembic_version"})


def load_metadata() -> MetaData:
    for module in table_modules():
        importlib.import_module(module)
    return Base.metadata
