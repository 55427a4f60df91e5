"""The README's coverage and configuration tables are the ones the code generates."""

from __future__ import annotations

from pathlib import Path

from forgeline.core.coverage import config_table, coverage_table, readme_block
from forgeline.core.protocol.catalog import APIS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_coverage_table_is_current():
    assert readme_block(README, "coverage") == coverage_table(), "run `forgeline coverage --write`"


def test_config_table_is_current():
    assert readme_block(README, "config") == config_table(), "run `forgeline coverage --write`"


def test_coverage_counts_implemented_operations():
    rows = {line.split("|")[1].strip(): line for line in coverage_table().splitlines()[2:]}
    assert set(rows) == {spec.title for spec in APIS}
    implemented = int(rows["CodeCommit"].split("|")[3])
    assert implemented >= 10
    assert int(rows["CodeBuild"].split("|")[3]) >= 45
