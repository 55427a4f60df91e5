"""One page of an S3 object listing, from keys in order: pure, no storage.

With a delimiter, keys that contain it after the prefix roll up into one common prefix
(everything up to and including the first delimiter). Keys and common prefixes share the
page's `max_keys` budget. A page resumes strictly after a marker; when the marker is a
common prefix, the keys it rolled up are skipped too, so a prefix never shows up twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclasses.dataclass
class Page(Generic[T]):
    contents: list[tuple[str, T]]
    common_prefixes: list[str]
    truncated: bool
    last: str | None  # the last key or common prefix on the page

    @property
    def count(self) -> int:
        return len(self.contents) + len(self.common_prefixes)


def list_page(
    entries: Iterable[tuple[str, T]],
    *,
    prefix: str = "",
    delimiter: str = "",
    after: str = "",
    max_keys: int = 1000,
) -> Page[T]:
    """`entries` are (key, value) pairs in ascending key order."""
    page: Page[T] = Page(contents=[], common_prefixes=[], truncated=False, last=None)
    skip_under = ""
    if after and after.startswith(prefix) and _common_prefix(after, prefix, delimiter) == after:
        skip_under = after
    for key, value in entries:
        if not key.startswith(prefix) or (after and key <= after):
            continue
        if skip_under and key.startswith(skip_under):
            continue
        rolled = _common_prefix(key, prefix, delimiter)
        if rolled is not None and rolled == page.last:
            continue
        if page.count >= max_keys:
            page.truncated = True
            break
        if rolled is not None:
            page.common_prefixes.append(rolled)
            page.last = rolled
        else:
            page.contents.append((key, value))
            page.last = key
    return page


def _common_prefix(key: str, prefix: str, delimiter: str) -> str | None:
    if not delimiter:
        return None
    at = key.find(delimiter, len(prefix))
    if at < 0:
        return None
    return key[: at + len(delimiter)]
