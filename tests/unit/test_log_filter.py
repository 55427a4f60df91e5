"""FilterLogEvents' filter patterns: the term syntax Forgeline supports, and clear refusals."""

from __future__ import annotations

import pytest

from services.build.logfilter import FilterPatternError, parse_filter_pattern


def matching(pattern: str, messages: list[str]) -> list[str]:
    parsed = parse_filter_pattern(pattern)
    return [message for message in messages if parsed.matches(message)]


MESSAGES = [
    "ERROR disk full",
    "ERROR connection reset by peer",
    "WARN connection slow",
    "INFO all good",
    'quote " inside',
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("", MESSAGES),
        ("   ", MESSAGES),
        ("ERROR", MESSAGES[:2]),
        ("ERROR connection", [MESSAGES[1]]),
        ('"connection reset"', [MESSAGES[1]]),
        ('"reset by" ERROR', [MESSAGES[1]]),
        ("connection -reset", [MESSAGES[2]]),
        ('-"disk full" -INFO -quote', MESSAGES[1:3]),
        ("?WARN ?INFO", MESSAGES[2:4]),
        ("connection ?WARN ?ERROR", MESSAGES[1:3]),
        ("error", []),
        ('"quote \\" inside"', [MESSAGES[4]]),
        ("%^(WARN|INFO) %", MESSAGES[2:4]),
        ("-", []),  # a lone dash is the literal term "-"
    ],
)
def test_term_patterns(pattern: str, expected: list[str]) -> None:
    assert matching(pattern, MESSAGES) == expected


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ('{ $.level = "error" }', "JSON"),
        ("[ip, user, status=5*]", "space-delimited"),
        ('"not closed', "not closed"),
        ('ab"c', "quote"),
        ("%(unbalanced%", "regular expression"),
    ],
)
def test_unsupported_or_malformed_patterns_are_refused_with_a_reason(
    pattern: str, fragment: str
) -> None:
    with pytest.raises(FilterPatternError) as raised:
        parse_filter_pattern(pattern)
    assert fragment in str(raised.value)


def test_empty_pattern_is_flagged_as_matching_everything() -> None:
    assert parse_filter_pattern(None).matches_everything
    assert not parse_filter_pattern("x").matches_everything
