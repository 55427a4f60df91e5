from __future__ import annotations

import base64
import time

import pytest

from forgeline.core.pagination import PageTokens, page_size
from forgeline.core.protocol.errors import AwsError

SCOPE = {"op": "List", "account": "111111111111"}


@pytest.fixture
def tokens():
    return PageTokens(b"k" * 32, "InvalidNextTokenException")


def walk(tokens, items, limit, descending=False, scope=SCOPE):
    pages, token = [], None
    while True:
        page, token = tokens.page(items, lambda x: x, scope, token, limit, descending)
        pages.append(page)
        if token is None:
            return pages


def test_pages_cover_everything_once(tokens):
    items = list(range(10))
    pages = walk(tokens, items, 3)
    assert pages == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


def test_descending(tokens):
    items = list(range(5))[::-1]
    assert walk(tokens, items, 2, descending=True) == [[4, 3], [2, 1], [0]]


def test_position_is_stable_when_items_change(tokens):
    items = ["a", "b", "c", "d"]
    page, token = tokens.page(items, lambda x: x, SCOPE, None, 2)
    assert page == ["a", "b"]
    # "b" deleted and "aa" created between pages: nothing repeats or is skipped after "b".
    page, token = tokens.page(["a", "aa", "c", "d"], lambda x: x, SCOPE, token, 2)
    assert page == ["c", "d"] and token is None


def test_forged_token(tokens):
    _, token = tokens.page(list(range(5)), lambda x: x, SCOPE, None, 2)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[5] ^= 1
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    for bad in (forged, "garbage", "", "!!!!"):
        if not bad:
            continue
        with pytest.raises(AwsError) as caught:
            tokens.decode(SCOPE, bad)
        assert caught.value.code == "InvalidNextTokenException"


def test_token_from_another_query_or_key(tokens):
    _, token = tokens.page(list(range(5)), lambda x: x, SCOPE, None, 2)
    with pytest.raises(AwsError):
        tokens.decode({**SCOPE, "account": "222222222222"}, token)
    with pytest.raises(AwsError):
        PageTokens(b"other" * 8, "InvalidNextTokenException").decode(SCOPE, token)


def test_stale_token(tokens, monkeypatch):
    _, token = tokens.page(list(range(5)), lambda x: x, SCOPE, None, 2)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 2 * 24 * 3600)
    with pytest.raises(AwsError) as caught:
        tokens.decode(SCOPE, token)
    assert "expired" in caught.value.message


class _TooSmall(Exception):
    pass


def test_page_size_defaults_caps_and_refuses_below_one():
    rule = {"default": 10, "maximum": 100, "member": "maxResults", "invalid": _TooSmall}
    assert page_size(None, **rule) == 10
    assert page_size(1, **rule) == 1
    assert page_size(100, **rule) == 100
    assert page_size(5000, **rule) == 100  # above the maximum: the maximum, as AWS does
    with pytest.raises(_TooSmall, match="maxResults must be a positive integer; got 0"):
        page_size(0, **rule)
