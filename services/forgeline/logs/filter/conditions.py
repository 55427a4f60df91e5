"""Conditions inside `{ … }` (JSON) and `[ … ]` (space-delimited) filter patterns: the
tokens, and boolean expressions of comparisons joined by `&&` and `||` with parentheses
(`&&` binds tighter than `||`, as CloudWatch documents).

A condition names its subject — a JSON selector (`$.a.b[0]`) or a field name (`status`) —
and the compiled expression is evaluated against a `resolve(subject)` that returns the
values found there (none when the subject is missing).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

from forgeline.logs.filter.values import (
    NUMBER,
    ValueTest,
    invalid,
    number_test,
    regex_test,
    text_test,
)

MAX_REGEXES = 2  # CloudWatch's limit per JSON or space-delimited pattern

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<punct>&&|\|\||!=|<=|>=|[=<>(),])
    | (?P<string>"(?:\\.|[^"\\])*")
    | (?P<regex>%[^%]*%)
    | (?P<selector>\$(?:\.(?:[A-Za-z0-9_-]+|\*)|\[(?:\d+|\*)\])*)
    | (?P<word>[^\s(){}\[\],&|"=!<>%$]+)
    """,
    re.VERBOSE,
)
_QUOTE_ESCAPE = re.compile(r"\\([\"\\])")
_NEEDS_QUOTES = re.compile(r"[@\\]|[^\x00-\x7f]")


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str  # punct | string | regex | selector | word
    text: str


def tokenize(body: str) -> list[Token]:
    tokens = []
    position = 0
    while position < len(body):
        found = _TOKEN.match(body, position)
        if found is None:
            snippet = body[position : position + 12]
            if body[position] == '"':
                raise invalid("a quoted string is not closed.")
            if body[position] == "%":
                raise invalid("a regular expression is not closed with %.")
            raise invalid(f"unexpected {snippet!r}.")
        kind = found.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, found.group()))
        position = found.end()
    if sum(token.kind == "regex" for token in tokens) > MAX_REGEXES:
        raise invalid(
            f"a JSON or space-delimited pattern may hold at most {MAX_REGEXES} regular expressions."
        )
    return tokens


def unquote(text: str) -> str:
    return _QUOTE_ESCAPE.sub(r"\1", text[1:-1])


Resolve = Callable[[str], Sequence[Any]]


class Expression:
    """A compiled boolean expression over subjects."""

    def evaluate(self, resolve: Resolve) -> bool:
        raise NotImplementedError

    def subjects(self) -> list[str]:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Condition(Expression):
    subject: str
    holds: Callable[[Sequence[Any]], bool]

    def evaluate(self, resolve: Resolve) -> bool:
        return self.holds(resolve(self.subject))

    def subjects(self) -> list[str]:
        return [self.subject]


@dataclasses.dataclass(frozen=True)
class AllOf(Expression):
    parts: tuple[Expression, ...]

    def evaluate(self, resolve: Resolve) -> bool:
        return all(part.evaluate(resolve) for part in self.parts)

    def subjects(self) -> list[str]:
        return [subject for part in self.parts for subject in part.subjects()]


@dataclasses.dataclass(frozen=True)
class AnyOf(Expression):
    parts: tuple[Expression, ...]

    def evaluate(self, resolve: Resolve) -> bool:
        return any(part.evaluate(resolve) for part in self.parts)

    def subjects(self) -> list[str]:
        return [subject for part in self.parts for subject in part.subjects()]


def _compare(test: ValueTest) -> Callable[[Sequence[Any]], bool]:
    return lambda values: any(test.accepts(value) for value in values)


def _is(literal: bool | None) -> Callable[[Sequence[Any]], bool]:
    return lambda values: any(value is literal for value in values)


def _missing(values: Sequence[Any]) -> bool:
    return not values


def value_test(op: str, token: Token) -> ValueTest:
    if token.kind == "regex":
        return regex_test(op, token.text[1:-1])
    if token.kind == "string":
        return text_test(op, unquote(token.text))
    if token.kind == "word":
        if NUMBER.fullmatch(token.text):
            return number_test(op, token.text)
        if _NEEDS_QUOTES.search(token.text):
            raise invalid(f"the value {token.text!r} must be enclosed in double quotes.")
        return text_test(op, token.text)
    raise invalid(f"expected a value after {op}, found {token.text!r}.")


class ConditionParser:
    """Recursive descent over one token list; `subject_kind` is "selector" (JSON) or
    "word" (a space-delimited field name)."""

    def __init__(self, tokens: list[Token], subject_kind: str) -> None:
        self.tokens = tokens
        self.position = 0
        self.subject_kind = subject_kind

    def parse(self) -> Expression:
        if not self.tokens:
            raise invalid("a condition is empty.")
        expression = self._any_of()
        if self.position < len(self.tokens):
            raise invalid(f"unexpected {self.tokens[self.position].text!r}.")
        return expression

    def _peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self, what: str) -> Token:
        token = self._peek()
        if token is None:
            raise invalid(f"the pattern ends where {what} was expected.")
        self.position += 1
        return token

    def _accept(self, text: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "punct" and token.text == text:
            self.position += 1
            return True
        return False

    def _any_of(self) -> Expression:
        parts = [self._all_of()]
        while self._accept("||"):
            parts.append(self._all_of())
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def _all_of(self) -> Expression:
        parts = [self._primary()]
        while self._accept("&&"):
            parts.append(self._primary())
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def _primary(self) -> Expression:
        if self._accept("("):
            inner = self._any_of()
            if not self._accept(")"):
                raise invalid("a parenthesis is not closed.")
            return inner
        return self._condition()

    def _condition(self) -> Expression:
        subject = self._take("a condition")
        if subject.kind != self.subject_kind:
            expected = (
                "a selector such as $.field" if self.subject_kind == "selector" else "a field name"
            )
            raise invalid(f"expected {expected}, found {subject.text!r}.")
        if self.subject_kind == "selector" and subject.text == "$":
            raise invalid("a selector must name a property, as in $.field.")
        following = self._take(f"an operator after {subject.text}")
        keyword = following.text.upper() if following.kind == "word" else ""
        if self.subject_kind == "selector" and keyword == "IS":
            literal = self._take("TRUE, FALSE or NULL after IS").text.upper()
            values = {"TRUE": True, "FALSE": False, "NULL": None}
            if literal not in values:
                raise invalid(f"IS must be followed by TRUE, FALSE or NULL, not {literal!r}.")
            return Condition(subject.text, _is(values[literal]))
        if self.subject_kind == "selector" and keyword == "NOT":
            if self._take("EXISTS after NOT").text.upper() != "EXISTS":
                raise invalid("NOT must be followed by EXISTS.")
            return Condition(subject.text, _missing)
        if following.kind != "punct" or following.text not in ("=", "!=", "<", "<=", ">", ">="):
            raise invalid(f"expected an operator after {subject.text}, found {following.text!r}.")
        test = value_test(following.text, self._take(f"a value after {following.text}"))
        return Condition(subject.text, _compare(test))
