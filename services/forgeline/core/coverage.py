"""Tables generated from the code: operation coverage per service, and the settings."""

from __future__ import annotations

import re
from pathlib import Path

from forgeline.core.settings import Settings

MARKERS = {
    "coverage": ("<!-- coverage:begin -->", "<!-- coverage:end -->"),
    "config": ("<!-- config:begin -->", "<!-- config:end -->"),
}


def coverage_rows() -> list[tuple[str, str, int, int]]:
    # Imported here: they load botocore's models, which `forgeline config` does not need.
    from forgeline.core.protocol.catalog import APIS, service_model
    from forgeline.core.providers import load_providers

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


def _block_pattern(name: str) -> re.Pattern[str]:
    begin, end = MARKERS[name]
    return re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)


def readme_block(readme: Path, name: str) -> str | None:
    """The table currently between the README's markers for `name`."""
    found = _block_pattern(name).search(readme.read_text())
    if found is None:
        return None
    begin, end = MARKERS[name]
    return found.group(0)[len(begin) : -len(end)].strip()


def write_readme_tables(readme: Path) -> None:
    text = readme.read_text()
    for name, table in (("coverage", coverage_table()), ("config", config_table())):
        begin, end = MARKERS[name]
        block = f"{begin}\n{table}\n{end}"
        # Split/join instead of re.sub: a replacement string would interpret backslashes.
        parts = _block_pattern(name).split(text, maxsplit=1)
        text = block.join(parts) if len(parts) == 2 else text
    readme.write_text(text)


def config_table() -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default if field.default is not None else ""
        lines.append(f"| `FORGELINE_{name.upper()}` | `{default}` | {field.description or ''} |")
    return "\n".join(lines)
