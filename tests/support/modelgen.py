"""Requests generated from botocore input shapes, for tests that cover every operation.

`minimal_request(operation)` is the smallest request the model accepts: required members
only, every length, range, enum and pattern constraint met. `request_strategy(operation)`
is a hypothesis strategy that mixes valid values with the ways clients get requests wrong
(bounds, enums, patterns, JSON types, nulls, missing or unknown members, odd unicode,
bad base64), for the wire as raw JSON. `valid_request_strategy` draws valid ones only.

Generated requests stay small (nesting and list sizes are bounded) so a fuzz run stays fast.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import functools
import re
import string
from collections.abc import Callable
from re import _constants as sre  # the parser `re` itself uses; stable across 3.11-3.13
from re import _parser as sre_parse
from typing import Any

import regex
from botocore.model import OperationModel, Shape
from hypothesis import strategies as st

from forgeline.core.protocol.catalog import APIS, api_spec, service_model

# -- operations ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OperationCase:
    service: str  # botocore model name, e.g. "codebuild"
    operation: str  # e.g. "StartBuild"

    @property
    def id(self) -> str:
        return f"{self.service}.{self.operation}"

    @property
    def model(self) -> OperationModel:
        return service_model(self.service).operation_model(self.operation)

    @property
    def target(self) -> str:
        return f"{service_model(self.service).metadata['targetPrefix']}.{self.operation}"

    @property
    def signing_name(self) -> str:
        return service_model(self.service).signing_name

    def declared_errors(self) -> set[str]:
        return {shape.name for shape in self.model.error_shapes}

    def validation_error(self) -> str:
        return api_spec(self.service).validation_error

    def client_codes(self) -> set[str]:
        """The error codes boto3 may report: the declared errors and the generic validation
        error, and for a query-compatible API (CloudWatch) their query codes, which botocore
        prefers (InvalidFormatFault is reported as InvalidFormat)."""
        names = self.declared_errors() | {self.validation_error()}
        model = service_model(self.service)
        if not model.is_query_compatible:
            return names
        return names | {
            str(model.shape_for(name).error_code) for name in names if name in model.shape_names
        }


def operation_cases() -> list[OperationCase]:
    """Every operation of every API Forgeline speaks, in model order."""
    return [
        OperationCase(spec.model_name, name)
        for spec in APIS
        for name in service_model(spec.model_name).operation_names
    ]


# -- patterns --------------------------------------------------------------------------

# Stand-ins for the Unicode property classes Python's `re` lacks: each is a subset of the
# property, so a string built from it still matches the original pattern.
_PROPERTY_CLASSES = {"L": "a-zA-Z", "Lu": "A-Z", "Ll": "a-z", "N": "0-9", "Nd": "0-9", "Z": " "}
_PROPERTY = re.compile(r"\\p\{(\w+)\}")


_CLASS_SHORTHANDS = {"\\w", "\\W", "\\d", "\\D", "\\s", "\\S"}


def portable_pattern(pattern: str) -> str:
    """The model's pattern rewritten for Python's `re` (and hypothesis.from_regex)."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        found = _PROPERTY.match(pattern, i)
        if found:
            chars = _PROPERTY_CLASSES.get(found.group(1))
            if chars is None:
                raise ValueError(f"no stand-in for \\p{{{found.group(1)}}}")
            out.append(chars if in_class else f"[{chars}]")
            i = found.end()
            continue
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "-" and in_class and out and out[-1] in _CLASS_SHORTHANDS:
            # `[\w-\/]`: a range cannot start at a shorthand; the server reads a literal `-`.
            out.append("\\-")
            i += 1
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class and out and out[-1] != "[":
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _server_regex(pattern: str) -> regex.Pattern[str] | None:
    try:
        return regex.compile(pattern, flags=regex.V1)
    except regex.error:
        return None


def satisfies_pattern(pattern: str, value: str) -> bool:
    """Whether the whole value matches, by the `regex` engine the server validates with.

    Anchored on purpose: a value that fully matches passes an anchored check and a search
    alike. Python's `re` (used by from_regex) is not enough: its `\\w` takes characters such
    as '¾' that `regex` rejects.
    """
    compiled = _server_regex(pattern)
    return compiled is None or compiled.fullmatch(value) is not None


_CATEGORIES: dict[str, Callable[[str], bool]] = {
    "CATEGORY_DIGIT": str.isdigit,
    "CATEGORY_NOT_DIGIT": lambda c: not c.isdigit(),
    "CATEGORY_SPACE": str.isspace,
    "CATEGORY_NOT_SPACE": lambda c: not c.isspace(),
    "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
    "CATEGORY_NOT_WORD": lambda c: not (c.isalnum() or c == "_"),
}
# Characters tried, in order, for a character class: readable ones first.
_CANDIDATES = "a" + string.ascii_letters + string.digits + "_-.:/@+= " + string.punctuation


class _Unsupported(Exception):
    pass


def _in_class(items: list[tuple[Any, Any]], ch: str) -> bool:
    negate, hit = False, False
    for op, arg in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            hit = hit or ord(ch) == arg
        elif op is sre.RANGE:
            hit = hit or arg[0] <= ord(ch) <= arg[1]
        elif op is sre.CATEGORY:
            test = _CATEGORIES.get(str(arg))
            if test is None:
                raise _Unsupported(str(arg))
            hit = hit or test(ch)
        else:
            raise _Unsupported(str(op))
    return hit != negate


def _pick(accepts: Callable[[str], bool]) -> str:
    for ch in _CANDIDATES:
        if accepts(ch):
            return ch
    raise _Unsupported("no candidate character")


_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT}


def _emit(items: Any, reps: int) -> str:
    """One string matching the parsed pattern, each repeat taken `reps` times (clamped)."""
    out = []
    for op, arg in items:
        if op is sre.LITERAL:
            out.append(chr(arg))
        elif op is sre.NOT_LITERAL:
            out.append(_pick(lambda c, arg=arg: ord(c) != arg))
        elif op is sre.ANY:
            out.append("a")
        elif op is sre.IN:
            out.append(_pick(lambda c, arg=arg: _in_class(arg, c)))
        elif op in _REPEATS:
            low, high, sub = arg
            out.append(_emit(sub, reps) * max(low, min(reps, high)))
        elif op is sre.SUBPATTERN:
            out.append(_emit(arg[-1], reps))
        elif op is sre.BRANCH:
            out.append(_emit(arg[1][0], reps))
        elif op is sre.AT:
            continue
        else:
            raise _Unsupported(str(op))
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def pattern_example(pattern: str, min_len: int = 0, max_len: int | None = None) -> str | None:
    """A deterministic string fully matching `pattern` with a length in range, or None."""
    high = max_len if max_len is not None else max(min_len, 1) + 256
    try:
        tree = sre_parse.parse(portable_pattern(pattern))
        for reps in range(0, high + 2):
            value = _emit(tree, reps)
            if min_len <= len(value) <= high and satisfies_pattern(pattern, value):
                return value
            if len(value) > high:
                break
    except (_Unsupported, ValueError, re.error, RecursionError):
        pass
    return None


@functools.lru_cache(maxsize=1024)
def _regex_strategy(pattern: str) -> st.SearchStrategy[str] | None:
    try:
        return st.from_regex(portable_pattern(pattern), fullmatch=True)
    except (ValueError, re.error):
        return None


# -- deterministic valid values --------------------------------------------------------

WIRE_TIMESTAMP = 1_704_067_200  # 2024-01-01T00:00:00Z, as epoch seconds on the wire
_MAX_DEPTH_GUARD = 30


def _bounds(shape: Shape) -> tuple[int | None, int | None]:
    return shape.metadata.get("min"), shape.metadata.get("max")


def member_key(shape: Shape, name: str, wire: bool) -> str:
    """The key of a member: the wire name for raw JSON, the member name for boto3."""
    return shape.serialization.get("name", name) if wire else name


# Values for patterns the generator cannot build from (lookaheads, back references).
_HANDMADE_EXAMPLES = {"StringDateTime": "2024-01-01T00:00:00Z"}


def string_example(shape: Shape) -> str:
    """The first enum value, else a short string meeting the length and pattern bounds."""
    if shape.enum:
        return shape.enum[0]
    if shape.name in _HANDMADE_EXAMPLES:
        return _HANDMADE_EXAMPLES[shape.name]
    low, high = _bounds(shape)
    low = low or 0
    pattern = shape.metadata.get("pattern")
    if pattern:
        found = pattern_example(pattern, low, high)
        if found is not None:
            return found
    size = max(low, 1) if high is None else min(max(low, 1), high)
    return "a" * size


def _number_example(shape: Shape) -> int | float:
    low, high = _bounds(shape)
    value: int | float = 1
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    return float(value) if shape.type_name in ("float", "double") else int(value)


def valid_value(shape: Shape, *, wire: bool, depth: int = 0) -> Any:
    """The smallest value `shape` accepts: for boto3 (wire=False) or raw JSON (wire=True)."""
    if depth > _MAX_DEPTH_GUARD:
        raise RecursionError(f"required members of {shape.name} never end")
    kind = shape.type_name
    low, _ = _bounds(shape)
    if kind == "structure":
        if shape.metadata.get("document"):
            return {}
        members = shape.members
        names = list(shape.required_members)
        if shape.metadata.get("union") and not names:
            names = list(members)[:1]
        return {
            member_key(members[n], n, wire): valid_value(members[n], wire=wire, depth=depth + 1)
            for n in names
        }
    if kind == "list":
        return [valid_value(shape.member, wire=wire, depth=depth + 1) for _ in range(low or 0)]
    if kind == "map":
        value = valid_value(shape.value, wire=wire, depth=depth + 1)
        keys = _distinct_keys(shape.key, low or 0)
        return {key: value for key in keys}
    if kind == "string":
        return string_example(shape)
    if kind in ("integer", "long", "float", "double"):
        return _number_example(shape)
    if kind == "boolean":
        return False
    if kind == "timestamp":
        return WIRE_TIMESTAMP if wire else dt.datetime.fromtimestamp(WIRE_TIMESTAMP, dt.UTC)
    if kind == "blob":
        data = b"a" * max(low or 0, 1)
        return base64.b64encode(data).decode("ascii") if wire else data
    raise TypeError(f"unknown shape type {kind!r} ({shape.name})")


def _distinct_keys(key_shape: Shape, count: int) -> list[str]:
    base = string_example(key_shape)
    if count <= 1:
        return [base][:count]
    return [base] + [f"{base}{i}" for i in range(1, count)]


def minimal_request(operation: OperationModel, *, wire: bool = False) -> dict[str, Any]:
    """Required members only, each satisfying every constraint of the model."""
    shape = operation.input_shape
    return {} if shape is None else valid_value(shape, wire=wire)


# -- random requests -------------------------------------------------------------------

MAX_DEPTH = 5  # deeper than this, members get their minimal valid value
MAX_LIST = 3  # items in a generated list or map, unless a bound asks for more
HUGE_STRING = 20_000

_WRONG_TYPES: list[Any] = [None, 0, -1, 1.5, True, "text", [], {}, ["x"], {"k": "v"}]
_ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "\ud800",  # a lone surrogate: valid JSON escape, not encodable as UTF-8
    "\u202eevil",
    "\U0001f642" * 3,
    "a\nb\tc",
    "../../etc/passwd",
    "'; DROP TABLE x; --",
    "!@#$ %^&*()",
    "\u00e9\u00df\u4e2d\u6587",
]
_ODD_NUMBERS: list[Any] = [
    2**31,
    -(2**31) - 1,
    2**63,
    -(2**63) - 1,
    10**40,
    1.5,
    -0.0,
    1e308,
    float("nan"),
    float("inf"),
    "1",
]
_ODD_TIMESTAMPS: list[Any] = [
    "not a date",
    "2024-13-45T99:00:00Z",
    "2024-01-01T00:00:00Z",
    1e20,
    -1e20,
    10**30,
    float("nan"),
    -1,
]
_ODD_BLOBS: list[Any] = ["!!!not base64!!!", "YQ", "a b c", "=", "\u00e9"]


class _Draws:
    """Walks a shape, drawing each choice from hypothesis so failures shrink well."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any], *, mutate: bool) -> None:
        self.draw = draw
        self.mutate = mutate

    def chance(self, one_in: int) -> bool:
        # Shrinks towards False: towards valid, smaller requests.
        return self.draw(_ints(0, one_in - 1)) == one_in - 1

    def pick(self, options: list[Any]) -> Any:
        return options[self.draw(_ints(0, len(options) - 1))]

    def value(self, shape: Shape, depth: int) -> Any:
        if depth > MAX_DEPTH:
            return valid_value(shape, wire=True)
        if self.mutate and self.chance(6):
            return self.invalid(shape, depth)
        return self.valid(shape, depth)

    # -- valid -----------------------------------------------------------------------
    def valid(self, shape: Shape, depth: int) -> Any:
        kind = shape.type_name
        low, high = _bounds(shape)
        if kind == "structure":
            return self.structure(shape, depth)
        if kind == "list":
            size = self.draw(_ints(low or 0, _cap(low, high)))
            return [self.value(shape.member, depth + 1) for _ in range(size)]
        if kind == "map":
            size = self.draw(_ints(low or 0, _cap(low, high)))
            keys = self.draw(st.lists(valid_strings(shape.key), max_size=size, unique=True))
            if len(keys) < (low or 0):
                keys = _distinct_keys(shape.key, low or 0)
            return {key: self.value(shape.value, depth + 1) for key in keys}
        if kind == "string":
            return self.draw(valid_strings(shape))
        if kind in ("integer", "long"):
            limit = 2**31 if kind == "integer" else 2**63
            low = low if low is not None else -limit
            return self.draw(_ints(low, high if high is not None else limit - 1))
        if kind in ("float", "double"):
            return self.draw(_floats(low, high))
        if kind == "boolean":
            return self.draw(_ints(0, 1)) == 1
        if kind == "timestamp":
            return self.draw(_TIMESTAMPS)
        if kind == "blob":
            data = self.draw(_binary(low or 0, _cap(low, high, 48)))
            return base64.b64encode(data).decode("ascii")
        return valid_value(shape, wire=True)

    def structure(self, shape: Shape, depth: int) -> dict[str, Any]:
        if shape.metadata.get("document"):
            return self.draw(_JSON_VALUES)
        members = shape.members
        required = set(shape.required_members)
        if shape.metadata.get("union"):
            count = 1
            if self.mutate and self.chance(5):
                count = self.pick([0, 2])
            chosen = self.draw(
                st.lists(
                    st.sampled_from(list(members)), min_size=count, max_size=count, unique=True
                )
                if members and count <= len(members)
                else st.just([])
            )
        else:
            odds = 3 if depth == 0 else 5
            chosen = [
                name
                for name in members
                if (name in required and not (self.mutate and self.chance(12)))
                or (name not in required and self.chance(odds))
            ]
        out = {
            member_key(members[name], name, True): self.value(members[name], depth + 1)
            for name in chosen
        }
        if self.mutate and self.chance(12):
            out[self.pick(["unknownMember", "Extra", "__proto__", ""])] = self.pick(_WRONG_TYPES)
        return out

    # -- invalid ---------------------------------------------------------------------
    def invalid(self, shape: Shape, depth: int) -> Any:
        # First a kind of mistake, then one of its values: rare mistakes stay likely.
        groups = [_WRONG_TYPES, *_mistakes(shape)]
        choice = self.pick(groups)
        if choice is _RANDOM_TEXT:
            return self.draw(_text(0, 40))
        return self.pick(choice)


_RANDOM_TEXT: list[Any] = []  # marker: draw arbitrary unicode text


def _mistakes(shape: Shape) -> list[list[Any]]:
    """Groups of wrong values for `shape`, beyond plain wrong JSON types."""
    kind = shape.type_name
    low, high = _bounds(shape)
    if kind == "string":
        bounds = ["x" * (low - 1)] if low else []
        too_long = high is not None and high < HUGE_STRING
        bounds.append("x" * (high + 1) if too_long else "y" * HUGE_STRING)
        misses = ["NOT_AN_ENUM_VALUE", shape.enum[0].lower() + " "] if shape.enum else []
        return [bounds, _ODD_STRINGS, _RANDOM_TEXT] + ([misses] if misses else [])
    if kind in ("integer", "long", "float", "double"):
        bounds = [b - 1 for b in (low,) if b is not None] + [
            b + 1 for b in (high,) if b is not None
        ]
        return [_ODD_NUMBERS] + ([bounds] if bounds else [])
    if kind == "boolean":
        return [["true", 1, 0]]
    if kind == "timestamp":
        return [_ODD_TIMESTAMPS]
    if kind == "blob":
        group = list(_ODD_BLOBS)
        if high is not None and high < HUGE_STRING:
            group.append(base64.b64encode(b"x" * (high + 1)).decode("ascii"))
        return [group]
    if kind == "list":
        item = valid_value(shape.member, wire=True)
        group = [[None], [item, None], "x", {"0": item}]
        if low:
            group.append([item] * (low - 1))
        if high is not None and high < 200:
            group.append([item] * (high + 1))
        return [group]
    if kind == "map":
        value = valid_value(shape.value, wire=True)
        group = [[["k", value]], {"": value}, {"k" * 300: value}, {"k": None}]
        if high is not None and high < 200:
            group.append({f"k{i}": value for i in range(high + 1)})
        return [group]
    if kind == "structure":
        return [["struct", [valid_value(shape, wire=True)], {}]]
    return []


def _cap(low: int | None, high: int | None, spread: int = MAX_LIST) -> int:
    top = (low or 0) + spread
    return top if high is None else max(min(top, high), low or 0)


@functools.cache
def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@functools.cache
def _floats(low: float | None, high: float | None) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


@functools.cache
def _text(low: int, high: int) -> st.SearchStrategy[str]:
    # NUL is refused in every string member (Postgres text cannot hold it).
    return st.text(st.characters(exclude_characters="\x00"), min_size=low, max_size=high)


@functools.cache
def _binary(low: int, high: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=low, max_size=high)


_TIMESTAMPS = st.integers(0, 4_102_444_800) | st.floats(0, 4_102_444_800)
_JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=16,
)


def valid_strings(shape: Shape) -> st.SearchStrategy[str]:
    """Random strings satisfying the shape's enum, length and pattern."""
    low, high = _bounds(shape)
    enum = tuple(shape.enum) if shape.enum else None
    return _valid_strings(enum, shape.metadata.get("pattern"), low or 0, high)


@functools.lru_cache(maxsize=1024)
def _valid_strings(
    enum: tuple[str, ...] | None, pattern: str | None, low: int, high: int | None
) -> st.SearchStrategy[str]:
    if enum:
        return st.sampled_from(enum)
    if not pattern:
        return _text(low, _cap(low, high, 24))
    fallback = pattern_example(pattern, low, high)
    strategy = _regex_strategy(pattern)
    if strategy is None or fallback is None:
        return st.just(fallback if fallback is not None else "a" * max(low, 1))

    def fits(value: str) -> str:
        ok = low <= len(value) <= (high if high is not None else len(value)) and "\x00" not in value
        return value if ok and satisfies_pattern(pattern, value) else fallback

    return strategy.map(fits)


def request_strategy(operation: OperationModel) -> st.SearchStrategy[dict[str, Any]]:
    """Random wire requests for `operation`: mostly valid, with mistakes mixed in."""
    return _requests(operation, mutate=True)


def valid_request_strategy(operation: OperationModel) -> st.SearchStrategy[dict[str, Any]]:
    """Random wire requests that satisfy every constraint of the model."""
    return _requests(operation, mutate=False)


def _requests(operation: OperationModel, *, mutate: bool) -> st.SearchStrategy[dict[str, Any]]:
    shape = operation.input_shape
    if shape is None:
        return st.just({})

    @st.composite
    def build(draw: Callable[[st.SearchStrategy[Any]], Any]) -> dict[str, Any]:
        return _Draws(draw, mutate=mutate).structure(shape, 0)

    return build()
