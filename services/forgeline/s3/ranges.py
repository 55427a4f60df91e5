"""The `Range` header of a GET or HEAD: one byte range, as S3 serves it."""

from __future__ import annotations

import re

from forgeline.s3.errors import S3Error

_SINGLE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte offsets, inclusive; None to serve the whole object.

    A malformed or multi-range header is ignored, as S3 does; a range that starts past
    the end is InvalidRange (416).
    """
    if not header:
        return None
    match = _SINGLE.fullmatch(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:
        suffix = int(last_text)
        if suffix == 0:
            raise _unsatisfiable(header, size)
        return (max(size - suffix, 0), size - 1) if size else None
    first = int(first_text)
    if first >= size:
        raise _unsatisfiable(header, size)
    last = int(last_text) if last_text else size - 1
    if last < first:
        return None
    return first, min(last, size - 1)


def _unsatisfiable(header: str, size: int) -> S3Error:
    return S3Error(
        "InvalidRange",
        "The requested range is not satisfiable",
        416,
        RangeRequested=header,
        ActualObjectSize=str(size),
    )
