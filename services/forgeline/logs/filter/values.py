"""The value tests of CloudWatch filter patterns: what `= 4*`, `!= "x"`, `>= 500` and
`= %regex%` accept, for JSON nodes and for space-delimited fields alike.

- A string value (quoted or bare) compares with `=`/`!=`. A `*` at its start and/or end is
  a wildcard (`*Event`, `Event*`, `*html*`, `*` alone); a `*` elsewhere is literal, as
  CloudWatch documents (`Ev*ent` matches only the text `Ev*ent`).
- A bare number (`400`, `+1000`, `55.5`, `10e-3`) compares numerically with any of
  `= != < <= > >=`; a value that is not a number never satisfies a numeric test.
- `%regex%` compares with `=`/`!=` and is searched in the value. CloudWatch allows only a
  small regex subset: ASCII letters and digits, the symbols `: _ # = @ / ; , -`, the
  operators `^ $ ? [ ] { } | \\ * + .` and no parentheses. Forgeline also allows a space.
- Only value nodes are compared: JSON objects, arrays and null satisfy no value test, not
  even `!=`.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import re
import warnings
from collections.abc import Callable
from typing import Any


class FilterPatternError(ValueError):
    """The filter pattern is malformed; the message says what is wrong."""


def invalid(reason: str) -> FilterPatternError:
    return FilterPatternError(f"Invalid filter pattern: {reason}")


NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
EQUALITY = ("=", "!=")
_REGEX_PLAIN = frozenset(":_#=@/;,- ^$?[]{}|*+.")
_REGEX_CLASS_ESCAPES = frozenset("dDwWsSbBtnr")


def compile_regex(body: str) -> re.Pattern[str]:
    """Compile the text between `%…%`, refusing what CloudWatch's regex subset refuses."""
    if not body:
        raise invalid("a regular expression between % signs is empty.")
    position = 0
    while position < len(body):
        char = body[position]
        if not char.isascii():
            raise invalid("multi-byte characters are not supported in regular expressions.")
        if char == "\\":
            escaped = body[position + 1 : position + 2]
            if not escaped or not escaped.isascii():
                raise invalid("a regular expression ends with an unfinished escape.")
            if escaped.isalnum() and escaped not in _REGEX_CLASS_ESCAPES:
                raise invalid(f"the escape \\{escaped} is not supported in regular expressions.")
            position += 2
            continue
        if char in "()":
            raise invalid("parentheses (subpatterns) are not supported in regular expressions.")
        if not (char.isalnum() or char in _REGEX_PLAIN):
            raise invalid(f"the character {char!r} is not supported in regular expressions.")
        position += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(body)
    except re.error as error:
        raise invalid(f"the regular expression %{body}% does not compile ({error}).") from None


def _text_of(value: Any) -> str | None:
    """The text a string test sees: strings as they are, numbers and booleans as in JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return None


def _number_of(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _wildcard(pattern: str) -> Callable[[str], bool]:
    if pattern == "*":
        return lambda text: True
    if len(pattern) >= 2 and pattern.startswith("*") and pattern.endswith("*"):
        middle = pattern[1:-1]
        return lambda text: middle in text
    if pattern.startswith("*"):
        suffix = pattern[1:]
        return lambda text: text.endswith(suffix)
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        return lambda text: text.startswith(prefix)
    return lambda text: text == pattern


@dataclasses.dataclass(frozen=True)
class ValueTest:
    """One `OPERATOR VALUE` of a pattern, ready to apply to many values."""

    accepts: Callable[[Any], bool]


def text_test(op: str, pattern: str) -> ValueTest:
    if op not in EQUALITY:
        raise invalid(f"{op} compares numbers; {pattern!r} is not a number.")
    matches = _wildcard(pattern)
    wanted = op == "="

    def accepts(value: Any) -> bool:
        text = _text_of(value)
        return text is not None and matches(text) == wanted

    return ValueTest(accepts)


def number_test(op: str, literal: str) -> ValueTest:
    bound = float(literal)
    compare = _COMPARISONS[op]

    def accepts(value: Any) -> bool:
        number = _number_of(value)
        return number is not None and compare(number, bound)

    return ValueTest(accepts)


def regex_test(op: str, body: str) -> ValueTest:
    if op not in EQUALITY:
        raise invalid(f"a regular expression can only be compared with = or !=, not {op}.")
    pattern = compile_regex(body)
    wanted = op == "="

    def accepts(value: Any) -> bool:
        text = _text_of(value)
        return text is not None and (pattern.search(text) is not None) == wanted

    return ValueTest(accepts)
