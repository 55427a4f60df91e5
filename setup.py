"""The package layout, which pyproject.toml cannot express: the `forgeline` import package
lives in services/forgeline/, and the Alembic scripts in migrations/ install as
`forgeline_migrations`, so no generic name (`services`, `migrations`) lands in
site-packages. Everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    package_dir={"": "services", "forgeline_migrations": "migrations"},
    packages=[*find_packages("services"), "forgeline_migrations", "forgeline_migrations.versions"],
)
