"""JSON filter patterns: `{ $.level = "error" && ($.latency > 500 || $.code != 200) }`.

Selectors start at the root `$` and go down by `.name` (letters, digits, `-`, `_`), `[N]`
(an array index) and the wildcards `.*` / `[*]` (every member or element; a condition on
a wildcard holds when it holds for one of them). Conditions are value tests (see
logfilter_values), `IS TRUE`, `IS FALSE`, `IS NULL` and `NOT EXISTS`. An event whose
message is not a JSON object or array matches no JSON pattern.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from forgeline.logs.filter.conditions import ConditionParser, Expression, tokenize
from forgeline.logs.filter.values import invalid

_STEP = re.compile(r"\.(?P<key>[A-Za-z0-9_-]+|\*)|\[(?P<index>\d+|\*)\]")
_WILDCARD = "*"
Step = tuple[str, str]  # ("key", name or "*") | ("index", number or "*")


def _steps(selector: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    for found in _STEP.finditer(selector, 1):
        if found.group("key") is not None:
            steps.append(("key", found.group("key")))
        else:
            if not steps:
                raise invalid(f"in {selector}, an array index must follow a property.")
            steps.append(("index", found.group("index")))
    return tuple(steps)


def _walk(document: Any, steps: tuple[Step, ...]) -> list[Any]:
    nodes = [document]
    for kind, name in steps:
        found: list[Any] = []
        for node in nodes:
            if kind == "key" and isinstance(node, dict):
                if name == _WILDCARD:
                    found.extend(node.values())
                elif name in node:
                    found.append(node[name])
            elif kind == "key" and name == _WILDCARD and isinstance(node, list):
                found.extend(node)
            elif kind == "index" and isinstance(node, list):
                if name == _WILDCARD:
                    found.extend(node)
                elif int(name) < len(node):
                    found.append(node[int(name)])
        nodes = found
        if not nodes:
            break
    return nodes


class JsonPattern:
    matches_everything = False

    def __init__(self, body: str) -> None:
        self.expression: Expression = ConditionParser(tokenize(body), "selector").parse()
        self.paths = {selector: _steps(selector) for selector in self.expression.subjects()}

    def matches(self, message: str) -> bool:
        text = message.strip()
        if not text or text[0] not in "{[":
            return False
        try:
            document = json.loads(text)
        except ValueError:
            return False

        def resolve(selector: str) -> Sequence[Any]:
            return _walk(document, self.paths[selector])

        return self.expression.evaluate(resolve)


def parse_json_pattern(pattern: str) -> JsonPattern:
    """`pattern` starts with `{`; it must end with `}` and hold one expression."""
    if not pattern.endswith("}") or len(pattern) < 2:
        raise invalid("a JSON pattern must end with }.")
    body = pattern[1:-1]
    if not body.strip():
        raise invalid("a JSON pattern between { } is empty.")
    return JsonPattern(body)
