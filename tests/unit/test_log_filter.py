"""FilterLogEvents' filter patterns: terms, regular expressions, JSON and space-delimited
patterns, checked against the examples CloudWatch's documentation gives (with the matches
it documents), and the malformed patterns that must be refused with a reason."""

from __future__ import annotations

import json
import time

import pytest

from forgeline.logs.filter.patterns import FilterPatternError, parse_filter_pattern


def matching(pattern: str, messages: list[str]) -> list[str]:
    parsed = parse_filter_pattern(pattern)
    return [message for message in messages if parsed.matches(message)]


# -- terms -----------------------------------------------------------------------------------
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
        ('""', MESSAGES),
        ('" "', MESSAGES),  # documented as "match everything"
        ("ERROR", MESSAGES[:2]),
        ("ERROR connection", [MESSAGES[1]]),
        ('"connection reset"', [MESSAGES[1]]),
        ('"reset by" ERROR', [MESSAGES[1]]),
        ("connection -reset", [MESSAGES[2]]),
        ('-"disk full" -INFO -quote', MESSAGES[1:3]),
        ("?WARN ?INFO", MESSAGES[2:4]),
        ("connection ?WARN ?ERROR", MESSAGES[1:3]),
        ("error", []),  # case-sensitive
        ('"quote \\" inside"', [MESSAGES[4]]),
        ("%^WARN|^INFO%", MESSAGES[2:4]),
        ("-", []),  # a lone dash is the literal term "-"
    ],
)
def test_term_patterns(pattern: str, expected: list[str]) -> None:
    assert matching(pattern, MESSAGES) == expected


def test_documented_term_examples() -> None:
    events = [
        "[ERROR] A fatal exception has occurred",
        "Exiting with ERRORCODE: -1",
        "[ERROR] Caught IllegalArgumentException",
        "[ERROR] Unhandled Exception",
        "[WARN] Failed to process the request",
        "[ERROR] Unable to continue: Failed to process the request",
    ]
    assert matching("ERROR", events) == [events[0], events[1], events[2], events[3], events[5]]
    assert "Exiting with ERRORCODE: -1" not in matching("ERROR -Exiting", events)
    assert matching("ERROR Exception", events) == events[2:4]
    assert matching("Failed to process the request", events) == events[4:6]

    words = ["ERROR WARN message", "ERROR message", "WARN message"]
    assert matching("ERROR", words) == words[:2]
    assert matching("?ERROR ?WARN", words) == words
    assert matching("ERROR WARN", words) == words[:1]
    assert matching("ERROR -WARN", words) == words[1:2]

    requests = [
        "[ERROR 400] BAD REQUEST",
        "[ERROR 401] UNAUTHORIZED REQUEST",
        "[ERROR 419] MISSING ARGUMENTS",
        "[ERROR 420] INVALID ARGUMENTS",
        "[ERROR 500] INTERNAL SERVER ERROR",
        "[SUCCESS 200] AUTHORIZED REQUEST",
    ]
    assert matching("ERROR ARGUMENTS", requests) == requests[2:4]
    assert matching("?ARGUMENTS ?SUCCESS", requests) == requests[2:4] + requests[5:]
    assert matching('"INTERNAL SERVER ERROR"', requests) == [requests[4]]
    assert matching("ERROR -ARGUMENTS", requests) == requests[:2] + [requests[4]]
    assert matching("%AUTHORIZED%", requests) == [requests[1], requests[5]]


# -- regular expressions ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("%^[hc]at%", ["hat trick", "cat"], ["a cat", "bat"]),
        ("%[hc]at$%", ["the hat", "cat"], ["cats", "bat"]),
        ("%colou?r%", ["color", "colour"], ["colr"]),
        ("%[abcx-z]%", ["y", "b"], ["d"]),
        ("%a{3,5}%", ["aaa", "baaaab"], ["aa"]),
        ("%\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}%", ["from 10.0.0.1"], ["10.0.0"]),
        ("%[Ee]rror|[Ff]ail%", ["Error", "error", "fail", "Fail"], ["ERROR", "FAIL"]),
        ("%user=[a-z]+@example%", ["user=jo@example.com"], ["user=Jo@example.com"]),
    ],
)
def test_documented_regular_expressions(
    pattern: str, matches: list[str], misses: list[str]
) -> None:
    assert matching(pattern, matches + misses) == matches


# -- JSON ------------------------------------------------------------------------------------
TRAIL = json.dumps(
    {
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": None,
        "ThisFlag": True,
    }
)


@pytest.mark.parametrize(
    "pattern",
    [
        '{ $.eventType = "UpdateTrail" }',
        "{ $.sourceIPAddress != 123.123.* }",
        '{ $.arrayKey[0] = "value" }',
        "{ $.objectList[1].id = 2 }",
        "{ $.SomeObject IS NULL }",
        "{ $.SomeOtherObject NOT EXISTS }",
        "{ $.ThisFlag IS TRUE }",
        "{$.eventType=UpdateTrail}",
        "{ $.eventType = %Update[A-Z]rail% }",
        "{ $.eventType = Update* }",
        '{ $.eventType = "*Trail" }',
        "{ $.* = UpdateTrail }",  # any top-level member
        "{ $.objectList[*].name = b }",  # any element
        "{ $.sourceIPAddress = * }",  # exists, with a value
    ],
)
def test_documented_json_patterns_match(pattern: str) -> None:
    assert parse_filter_pattern(pattern).matches(TRAIL)


@pytest.mark.parametrize(
    "pattern",
    [
        '{ $.eventType = "updatetrail" }',  # case-sensitive
        "{ $.sourceIPAddress != 111.111.* }",
        '{ $.arrayKey[2] = "value" }',
        "{ $.objectList[1].id = 1 }",
        "{ $.eventType IS NULL }",
        "{ $.SomeObject NOT EXISTS }",  # null exists
        "{ $.ThisFlag IS FALSE }",
        "{ $.missing != x }",  # a missing value is not different, it is missing
        "{ $.SomeObject != x }",  # nor is null
        "{ $.eventType = Trail* }",
        "{ $.eventType = %^Trail% }",
        "{ $.eventType != %Trail% }",
        "{ $.eventType.inner = x }",
    ],
)
def test_json_patterns_that_do_not_match(pattern: str) -> None:
    assert not parse_filter_pattern(pattern).matches(TRAIL)


USERS = json.dumps(
    {
        "user": {"id": 1, "email": "John.Stiles@example.com"},
        "users": [
            {"id": 2, "email": "John.Doe@example.com"},
            {"id": 3, "email": "Jane.Doe@example.com"},
        ],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
    }
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', True),
        ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', False),
        (
            '{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch'
            " && $.actions[2] = nomatch }",
            True,
        ),
        (
            '{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch)'
            " && $.actions[2] = nomatch }",
            False,
        ),
        ("{ $.coordinates[2][0] = 7 }", True),
        ("{ $.users = 1 }", False),  # a selector on an array is no value
        ("{ $.users != 1 }", False),
    ],
)
def test_documented_json_compound_conditions(pattern: str, expected: bool) -> None:
    assert parse_filter_pattern(pattern).matches(USERS) is expected


def test_json_or_and_string_wildcards() -> None:
    events = ['{"foo": "bar"}', '{"foo": "baz"}']
    assert matching("{$.foo = bar}", events) == events[:1]
    assert matching("{$.foo = baz }", events) == events[1:]
    assert matching("{$.foo = bar || $.foo = baz }", events) == events

    names = ['{"e": "PutEvent"}', '{"e": "GetEvent"}', '{"e": "EventId"}', '{"e": "Ev*ent"}']
    assert matching("{ $.e = *Event }", names) == names[:2]
    assert matching("{ $.e = Event* }", names) == names[2:3]
    assert matching("{ $.e = Ev*ent }", names) == names[3:]  # a middle * is literal


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("{ $.latency >= 500 }", True),
        ("{ $.latency > +1000 }", False),
        ("{ $.latency = 500.0 }", True),
        ("{ $.numbers[0] < 10e3 }", True),
        ("{ $.numbers[0] < 10e-3 }", False),
        ("{ $.numbers[1] < 10e-3 }", True),
        ("{ $.processes[4].averageRuntime <= 55.5 }", True),
        ("{ $.errorCode = 400 }", True),
        ("{ $.errorCode != 500 }", True),
        ("{ $.errorCode = 4* }", True),  # a string test sees a number as its JSON text
        ("{ $.latency = * }", True),  # as the documented metric filter does
        ("{ $.flag > 0 }", False),  # booleans are no numbers
        ("{ $.name > 0 }", False),
    ],
)
def test_documented_json_numeric_comparisons(pattern: str, expected: bool) -> None:
    event = json.dumps(
        {
            "latency": 500,
            "numbers": [9999, -1],
            "processes": [{}, {}, {}, {}, {"averageRuntime": 55.5}],
            "errorCode": 400,
            "flag": True,
            "name": "x",
        }
    )
    assert parse_filter_pattern(pattern).matches(event) is expected


def test_json_patterns_skip_events_that_are_not_json() -> None:
    pattern = parse_filter_pattern('{ $.level = "error" }')
    assert not pattern.matches('level = "error"')
    assert not pattern.matches('{"level": "error"')  # cut short
    assert not pattern.matches('"error"')
    assert pattern.matches('  {"level": "error"}\n')


# -- space-delimited -------------------------------------------------------------------------
APACHE = [
    '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534',
    '127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324',
    '127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355',
    '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534',
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE),
        ("[ip, id, user, timestamp, request, status, size]", APACHE),
        ("[..., status_code, bytes]", APACHE),
        ("[ip, user, ..., status_code, bytes]", APACHE),
        ("[ip, user, ...]", APACHE),
        ("[ip, user, username, timestamp, request, status_code, bytes > 5000]", APACHE[1:2]),
        (
            "[ip, user, username, timestamp, request, status_code = 200, bytes]",
            [APACHE[0], APACHE[2]],
        ),
        ("[ip, user, username, timestamp, request, status_code = 4*, bytes]", APACHE[3:]),
        ("[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]", APACHE[3:]),
        (
            "[ip, user, username, timestamp, request, status_code = 403 || status_code = 404, bytes]",
            APACHE[3:],
        ),
        ("[..., request=*.html*, status_code=4*,]", APACHE[3:]),
        ("[ip, user, username, timestamp, request, status_code != 200, bytes < 2000]", APACHE[3:]),
        (
            '[ip, user, username = "frank", timestamp = "10/Oct/2000:13:35:22 -0700", ...]',
            APACHE[1:2],
        ),
        ('[..., request = "GET /index.html HTTP/1.0", status, bytes]', APACHE[3:]),
        ("[ip, user, ..., status = %^5[0-9]{2}$%, bytes]", APACHE[1:2]),
        ("[ip, user, username, timestamp, request]", []),  # every field must be accounted for
        ("[a, b, c, d, e, f, g, h]", []),
        ("[ip = 10.*, ...]", []),
    ],
)
def test_documented_space_delimited_patterns(pattern: str, expected: list[str]) -> None:
    assert matching(pattern, APACHE) == expected


def test_space_delimited_or_and_and_within_a_field() -> None:
    words = ["ERROR WARN message", "ERROR message", "WARN message"]
    assert matching("[w1=ERROR, w2]", words) == words[1:2]
    assert matching("[w1=ERROR || w1=WARN, w2]", words) == words[1:]
    assert matching("[w1!=ERROR && w1!=WARN, w2]", words) == []
    assert matching("[w1!=ERROR && w1!=INFO, w2]", words) == words[2:]
    assert matching("[(w1=ERROR || w1=WARN) && w1!=WARN, ...]", words) == words[:2]
    assert matching("[w1, w2 = WARN, ...]", words) == words[:1]


def test_space_delimited_conditions_may_name_another_field() -> None:
    lines = ["GET 404 10", "GET 404 5000", "GET 500 5000"]
    assert matching("[method, status = 4* && bytes > 1000, bytes]", lines) == lines[1:2]
    # A name no slot binds satisfies nothing.
    assert matching("[method, status = 4* && size > 1000, bytes]", lines) == []


def test_several_ellipses_and_empty_fields() -> None:
    line = "a b c ERROR d e 42"
    assert parse_filter_pattern("[..., level = ERROR, ..., code = 42]").matches(line)
    assert parse_filter_pattern("[first, ..., level = ERROR, ..., last]").matches(line)
    assert not parse_filter_pattern("[..., level = WARN, ...]").matches(line)
    assert parse_filter_pattern("[,,,level=ERROR,,,]").matches(line)
    # Several `...` with a condition on another field: every placement is tried.
    crossed = parse_filter_pattern("[..., level = ERROR && code = 42, ..., code]")
    assert crossed.matches(line)
    assert not crossed.matches("a b c ERROR d e 41")


# -- invalid patterns ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ('"not closed', "not closed"),
        ('ab"c', "quote"),
        ("%(unbalanced%", "parentheses"),
        ("%something!%", "'!' is not supported"),
        ("%caf\u00e9%", "multi-byte"),
        ("%a\\1%", "escape"),
        ("{ $.level = ", "end with }"),
        ("{ }", "empty"),
        ("{ $.level }", "ends where an operator"),
        ("{ level = x }", "selector"),
        ("{ $ = x }", "name a property"),
        ("{ $[0] = x }", "must follow a property"),
        ('{ $.latency > "5" }', "compares numbers"),
        ("{ $.latency > abc }", "compares numbers"),
        ("{ $.a = %x% && $.b = %y% && $.c = %z% }", "at most 2 regular expressions"),
        ("{ $.a < %x% }", "only be compared with = or !="),
        ("{ ($.a = 1 }", "parenthesis is not closed"),
        ("{ $.a = 1 && }", "ends where a condition"),
        ("{ $.a = 1 $.b = 2 }", "unexpected"),
        ("{ $.a IS MAYBE }", "TRUE, FALSE or NULL"),
        ("{ $.a NOT THERE }", "EXISTS"),
        ("{ $.a = user@example.com }", "double quotes"),
        ("{ $.a = 1, $.b = 2 }", "unexpected"),
        ('{ $.a = "open }', "not closed"),
        ("{ $.a = %open }", "not closed"),
        ("[ip, user", "end with ]"),
        ("[ ]", "names no fields"),
        ("[w1=!ERROR, w2]", "unexpected"),
        ("[$.a = 1]", "field name"),
        ("[w1 = ]", "ends where a value"),
        ("[w1 & w2]", "unexpected"),
    ],
)
def test_malformed_patterns_are_refused_with_a_reason(pattern: str, fragment: str) -> None:
    with pytest.raises(FilterPatternError) as raised:
        parse_filter_pattern(pattern)
    assert str(raised.value).startswith("Invalid filter pattern: ")
    assert fragment in str(raised.value)


def test_empty_pattern_is_flagged_as_matching_everything() -> None:
    assert parse_filter_pattern(None).matches_everything
    assert parse_filter_pattern('" "').matches_everything
    assert not parse_filter_pattern("x").matches_everything
    assert not parse_filter_pattern("{ $.a = 1 }").matches_everything
    assert not parse_filter_pattern("[a]").matches_everything


# -- speed -----------------------------------------------------------------------------------
def test_compiled_patterns_stay_fast_on_long_logs() -> None:
    lines = [
        f"10.0.{i % 250}.{i % 7} - user{i} [10/Oct/2000:13:55:{i % 60:02d} -0700] "
        f'"GET /page/{i}.html HTTP/1.1" {200 if i % 13 else 503} {i * 7}'
        for i in range(20_000)
    ]
    events = [
        json.dumps({"level": "error" if i % 13 == 0 else "info", "n": i}) for i in range(20_000)
    ]
    delimited = parse_filter_pattern("[ip, id, user, timestamp, request, status = 5*, size > 100]")
    json_pattern = parse_filter_pattern('{ $.level = "error" && $.n >= 100 }')
    # Many ellipses over a long line that never matches: no blow-up in the ways to place them.
    ellipses = parse_filter_pattern("[..., a = x, ..., b = y, ..., c = z, ...]")
    long_line = " ".join(["x", "y"] * 3000)

    started = time.perf_counter()
    assert sum(map(delimited.matches, lines)) == sum(
        1 for i in range(20_000) if i % 13 == 0 and i * 7 > 100
    )
    assert sum(map(json_pattern.matches, events)) == sum(
        1 for i in range(20_000) if i % 13 == 0 and i >= 100
    )
    assert not ellipses.matches(long_line)
    assert time.perf_counter() - started < 5.0
