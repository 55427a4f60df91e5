"""Space-delimited filter patterns: `[ip, user, username, timestamp, request, status=4*, bytes]`.

The event's message is split into fields at spaces; text between `[` and `]` or between
double quotes is one field (without its brackets or quotes), so an Apache line
`127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326` has 7 fields.
The pattern names one field per comma-separated slot and must account for every field:
`...` stands for any number of fields (none included). A slot is a name, a condition on
its field (`status = 4*`, `bytes > 1000`, `w1 = ERROR || w1 = WARN`, `request = %html%`),
`...`, or empty (an unnamed field). A condition may name another slot's field; a name no
slot binds satisfies no condition.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from typing import Any

from forgeline.logs.filter.conditions import ConditionParser, Expression, Token, tokenize
from forgeline.logs.filter.values import invalid

_FIELD = re.compile(r'\[(?P<bracketed>[^\]]*)\]|"(?P<quoted>(?:\\.|[^"\\])*)"|(?P<plain>\S+)')
_ESCAPED_QUOTE = re.compile(r'\\(["\\])')
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_ELLIPSIS = ("...", "\u2026")


def split_fields(message: str) -> list[str]:
    fields = []
    for found in _FIELD.finditer(message):
        if found.group("bracketed") is not None:
            fields.append(found.group("bracketed"))
        elif found.group("quoted") is not None:
            fields.append(_ESCAPED_QUOTE.sub(r"\1", found.group("quoted")))
        else:
            fields.append(found.group("plain"))
    return fields


@dataclasses.dataclass(frozen=True)
class Slot:
    name: str | None = None
    condition: Expression | None = None
    ellipsis: bool = False
    # True when the condition reads only this slot's own field (checked as soon as bound).
    local: bool = True


def _slot(tokens: list[Token]) -> Slot:
    if not tokens:
        return Slot()
    if len(tokens) == 1 and tokens[0].kind == "word":
        word = tokens[0].text
        if word in _ELLIPSIS:
            return Slot(ellipsis=True)
        if not _NAME.fullmatch(word):
            raise invalid(f"{word!r} is not a field name (letters, digits, _ and -).")
        return Slot(name=word)
    condition = ConditionParser(tokens, "word").parse()
    names = condition.subjects()
    for name in names:
        if not _NAME.fullmatch(name):
            raise invalid(f"{name!r} is not a field name (letters, digits, _ and -).")
    return Slot(name=names[0], condition=condition, local=set(names) == {names[0]})


class DelimitedPattern:
    matches_everything = False

    def __init__(self, body: str) -> None:
        slots: list[list[Token]] = [[]]
        for token in tokenize(body):
            if token.kind == "punct" and token.text == ",":
                slots.append([])
            else:
                slots[-1].append(token)
        self.slots = tuple(_slot(tokens) for tokens in slots)
        self.fixed = sum(not slot.ellipsis for slot in self.slots)
        self.ellipses = len(self.slots) - self.fixed
        self.open_ended = self.ellipses > 0
        self.cross_conditions = tuple(
            slot.condition for slot in self.slots if slot.condition is not None and not slot.local
        )

    def matches(self, message: str) -> bool:
        fields = split_fields(message)
        if len(fields) < self.fixed or (not self.open_ended and len(fields) != self.fixed):
            return False
        if self.ellipses <= 1:
            placement = self._only_placement(fields)
            return placement is not None and self._cross_conditions_hold(fields, placement)
        if not self.cross_conditions:
            return self._can_place(fields)
        return any(
            self._cross_conditions_hold(fields, placement) for placement in self._placements(fields)
        )

    def _only_placement(self, fields: Sequence[str]) -> list[tuple[Slot, int]] | None:
        """With at most one `...`, the slots before it take the first fields and the slots
        after it the last ones: one placement, or none when a condition fails."""
        placement = []
        skipped = len(fields) - self.fixed
        field_index = 0
        for slot in self.slots:
            if slot.ellipsis:
                field_index += skipped
                continue
            if not self._field_satisfies(slot, fields[field_index]):
                return None
            placement.append((slot, field_index))
            field_index += 1
        return placement

    def _can_place(self, fields: Sequence[str]) -> bool:
        """Whether several `...` can be placed so every slot's own condition holds: the set
        of field positions reachable before each slot, slot by slot (linear in the fields)."""
        reachable = {0}
        for slot in self.slots:
            if slot.ellipsis:
                reachable = set(range(min(reachable), len(fields) + 1))
            else:
                reachable = {
                    index + 1
                    for index in reachable
                    if index < len(fields) and self._field_satisfies(slot, fields[index])
                }
            if not reachable:
                return False
        return len(fields) in reachable

    def _field_satisfies(self, slot: Slot, value: str) -> bool:
        if slot.condition is None or not slot.local:
            return True
        return slot.condition.evaluate(lambda name: [value])

    def _placements(self, fields: Sequence[str]) -> Iterator[list[tuple[Slot, int]]]:
        """Each way the slots can cover the fields, as (slot, field index) for named slots,
        with every local condition already checked (several `...` and conditions that
        name other fields: the rare case that needs a search)."""

        def place(slot_index: int, field_index: int) -> Iterator[list[tuple[Slot, int]]]:
            if slot_index == len(self.slots):
                if field_index == len(fields):
                    yield []
            else:
                slot = self.slots[slot_index]
                if slot.ellipsis:
                    for next_field in range(field_index, len(fields) + 1):
                        yield from place(slot_index + 1, next_field)
                elif field_index < len(fields) and self._field_satisfies(slot, fields[field_index]):
                    for rest in place(slot_index + 1, field_index + 1):
                        yield [(slot, field_index), *rest]

        return place(0, 0)

    def _cross_conditions_hold(
        self, fields: Sequence[str], placement: list[tuple[Slot, int]]
    ) -> bool:
        if not self.cross_conditions:
            return True
        bound = {slot.name: fields[index] for slot, index in placement if slot.name}

        def resolve(name: str) -> Sequence[Any]:
            return [bound[name]] if name in bound else []

        return all(condition.evaluate(resolve) for condition in self.cross_conditions)


def parse_delimited_pattern(pattern: str) -> DelimitedPattern:
    """`pattern` starts with `[`; it must end with `]`."""
    if not pattern.endswith("]") or len(pattern) < 2:
        raise invalid("a space-delimited pattern must end with ].")
    body = pattern[1:-1]
    if not body.strip():
        raise invalid("a space-delimited pattern between [ ] names no fields.")
    return DelimitedPattern(body)
