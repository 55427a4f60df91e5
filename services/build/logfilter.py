"""CloudWatch Logs filter patterns, the subset Forgeline supports for FilterLogEvents.

Supported (CloudWatch's syntax for unstructured log events; matching is case-sensitive,
a term matches anywhere in the message):

- `ERROR`: events containing the term. Several terms, separated by spaces, must all
  appear (`ERROR timeout`).
- `"connection reset"`: a quoted phrase is one term, spaces included; `\\"` inside the
  quotes is a literal quote.
- `-DEBUG` / `-"health check"`: events containing the term are excluded.
- `?ERROR ?WARN`: terms marked `?` are alternatives; at least one of them must appear
  (besides every unmarked term).
- `%regex%`: the whole pattern between percent signs is a regular expression searched
  in the message.
- An empty pattern matches every event.

JSON patterns (`{ $.level = "error" }`) and space-delimited patterns (`[ip, user, ...]`)
are refused with a message naming them, rather than being matched wrongly.
"""

from __future__ import annotations

import dataclasses
import re


class FilterPatternError(ValueError):
    """The pattern is malformed or uses syntax Forgeline does not support."""


@dataclasses.dataclass(frozen=True)
class FilterPattern:
    required: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None

    @property
    def matches_everything(self) -> bool:
        return not (self.required or self.alternatives or self.excluded or self.regex)

    def matches(self, message: str) -> bool:
        if self.regex is not None:
            return self.regex.search(message) is not None
        if any(term not in message for term in self.required):
            return False
        if any(term in message for term in self.excluded):
            return False
        return not self.alternatives or any(term in message for term in self.alternatives)


def parse_filter_pattern(text: str | None) -> FilterPattern:
    pattern = (text or "").strip()
    if not pattern:
        return FilterPattern()
    if len(pattern) >= 2 and pattern.startswith("%") and pattern.endswith("%"):
        try:
            return FilterPattern(regex=re.compile(pattern[1:-1]))
        except re.error as error:
            raise FilterPatternError(
                f"Invalid regular expression in filter pattern: {error}"
            ) from None
    if pattern[0] in "{[":
        kind = "JSON" if pattern[0] == "{" else "space-delimited"
        raise FilterPatternError(
            f"{kind} filter patterns are not supported; use terms, quoted phrases, "
            "-excluded and ?alternative terms, or a %regular expression%."
        )
    required: list[str] = []
    alternatives: list[str] = []
    excluded: list[str] = []
    for marker, term in _terms(pattern):
        {"": required, "?": alternatives, "-": excluded}[marker].append(term)
    return FilterPattern(tuple(required), tuple(alternatives), tuple(excluded))


def _terms(pattern: str) -> list[tuple[str, str]]:
    """(marker, term) pairs; marker is "", "?" or "-"."""
    terms = []
    position = 0
    length = len(pattern)
    while position < length:
        if pattern[position].isspace():
            position += 1
            continue
        marker = ""
        if (
            pattern[position] in "?-"
            and position + 1 < length
            and not pattern[position + 1].isspace()
        ):
            marker = pattern[position]
            position += 1
        if pattern[position] == '"':
            term, position = _quoted(pattern, position)
        else:
            end = position
            while end < length and not pattern[end].isspace():
                end += 1
            term = pattern[position:end]
            if '"' in term:
                raise FilterPatternError(
                    f"Invalid filter pattern: a quote inside the term {term!r}; quote whole terms."
                )
            position = end
        if term:
            terms.append((marker, term))
    return terms


def _quoted(pattern: str, start: int) -> tuple[str, int]:
    """The phrase of the quoted term starting at `start`, and the position after it."""
    chars = []
    position = start + 1
    while position < len(pattern):
        char = pattern[position]
        if char == "\\" and position + 1 < len(pattern):
            chars.append(pattern[position + 1])
            position += 2
            continue
        if char == '"':
            return "".join(chars), position + 1
        chars.append(char)
        position += 1
    raise FilterPatternError("Invalid filter pattern: a quoted term is not closed.")
