"""Tables generated from the code: operation coverage per service, and the settings."""

from __future__ import annotations

import re
from pathlib import Path

from services.core.protocol.catalog import APIS, service_model
from services.core.providers import load_providers
from services.core.settings import Settings

BEGIN, END = "<!-- coverage:begin -->", "<!-- coverage:end -->"


def coverage_rows() -> list[tuple[str, str, int, int]]:
    providers = load_providers(sorted({spec.app for spec in APIS}))
    rows = []
    for spec in APIS:
        total = len(service_model(spec.model_name).operation_names)
        done = len(providers[spec.model_name].implemented_operations())
        rows.append((spec.title, spec.app, done, total))
    return rows


def coverage_table() -> str:
    lines = [
        "| API | service | implemented | total | not yet (answer 501) |",
        "|---|---|---|---|---|",
    ]
    for title, app, done, total in coverage_rows():
        lines.append(f"| {title} | `{app}` | {done} | {total} | {total - done} |")
    return "\n".join(lines)


def write_readme_table(readme: Path, table: str) -> None:
    text = readme.read_text()
    block = f"{BEGIN}\n{table}\n{END}"
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    readme.write_text(
        pattern.sub(block, text) if pattern.search(text) else text + "\n" + block + "\n"
    )


def config_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default if field.default is not None else ""
        lines.append(f"| `FORGELINE_{name.upper()}` | `{default}` | {field.description or ''} |")
    return "\n".join(lines)
