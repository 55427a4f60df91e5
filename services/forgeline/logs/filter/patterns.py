"""CloudWatch Logs filter patterns, as FilterLogEvents takes them: compiled once per request
into a matcher (pure, no I/O) that is then asked about each event's message.

Three forms, chosen by the pattern's first character:

- `{ … }`: a JSON pattern (logfilter_json), e.g. `{ $.level = "error" && $.latency > 500 }`.
- `[ … ]`: a space-delimited pattern (logfilter_delimited), e.g. `[ip, user, ..., status=5*, size]`.
- anything else: terms, matched case-sensitively anywhere in the message —
  - `ERROR timeout`: every term must appear;
  - `"connection reset"`: a quoted phrase is one term (`\\"` is a literal quote); a term
    with characters other than letters, digits and `_` is best quoted;
  - `-DEBUG`, `-"health check"`: events containing the term are left out;
  - `?ERROR ?WARN`: at least one `?` term must appear (besides every plain term);
  - `%regex%`: the whole pattern is a regular expression (CloudWatch's subset, see
    logfilter_values) searched in the message;
  - an empty pattern, `""` or `" "` matches every event.

A malformed pattern raises FilterPatternError, whose message starts "Invalid filter
pattern" and says what is wrong.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Protocol

from forgeline.logs.filter.delimited import parse_delimited_pattern
from forgeline.logs.filter.json_patterns import parse_json_pattern
from forgeline.logs.filter.values import FilterPatternError, compile_regex, invalid

__all__ = ["FilterPatternError", "LogEventMatcher", "parse_filter_pattern"]


class LogEventMatcher(Protocol):
    @property
    def matches_everything(self) -> bool: ...

    def matches(self, message: str) -> bool: ...


@dataclasses.dataclass(frozen=True)
class TermPattern:
    required: tuple[str, ...] = ()
    alternatives: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @property
    def matches_everything(self) -> bool:
        return not (self.required or self.alternatives or self.excluded)

    def matches(self, message: str) -> bool:
        if any(term not in message for term in self.required):
            return False
        if any(term in message for term in self.excluded):
            return False
        return not self.alternatives or any(term in message for term in self.alternatives)


@dataclasses.dataclass(frozen=True)
class RegexPattern:
    regex: re.Pattern[str]
    matches_everything = False

    def matches(self, message: str) -> bool:
        return self.regex.search(message) is not None


def parse_filter_pattern(text: str | None) -> LogEventMatcher:
    pattern = (text or "").strip()
    if pattern.startswith("{"):
        return parse_json_pattern(pattern)
    if pattern.startswith("["):
        return parse_delimited_pattern(pattern)
    if len(pattern) >= 2 and pattern.startswith("%") and pattern.endswith("%"):
        return RegexPattern(compile_regex(pattern[1:-1]))
    required: list[str] = []
    alternatives: list[str] = []
    excluded: list[str] = []
    for marker, term in _terms(pattern):
        {"": required, "?": alternatives, "-": excluded}[marker].append(term)
    return TermPattern(tuple(required), tuple(alternatives), tuple(excluded))


def _terms(pattern: str) -> list[tuple[str, str]]:
    """(marker, term) pairs; marker is "", "?" or "-". Blank quoted terms are dropped:
    CloudWatch documents `" "` as the pattern that matches everything."""
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
            if not term.strip():
                continue
        else:
            end = position
            while end < length and not pattern[end].isspace():
                end += 1
            term = pattern[position:end]
            if '"' in term:
                raise invalid(f"a quote inside the term {term!r}; quote whole terms.")
            position = end
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
    raise invalid("a quoted term is not closed.")
