"""The checksums S3 clients send with uploads (`x-amz-checksum-<algorithm>`), base64 encoded.

botocore adds a CRC32 to every upload by default. Algorithms the standard library can
compute are verified; the others (CRC32C, CRC64NVME, xxHash) are accepted unverified and
not stored, since a stored checksum must be one the server vouches for.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Protocol

HEADER_PREFIX = "x-amz-checksum-"
KNOWN_ALGORITHMS = (
    "crc32",
    "crc32c",
    "crc64nvme",
    "sha1",
    "sha256",
    "sha512",
    "xxhash64",
    "xxhash3",
    "xxhash128",
)


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


def new_digest(algorithm: str) -> Digest | None:
    """A running digest for `algorithm` (lower case), or None when it cannot be verified."""
    if algorithm == "crc32":
        return _Crc32()
    if algorithm in ("sha1", "sha256", "sha512"):
        return hashlib.new(algorithm)
    return None


def encode(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def declared_checksum(headers: dict[str, str]) -> tuple[str, str] | None:
    """(algorithm, base64 value) of the checksum header a request carries, if any."""
    for algorithm in KNOWN_ALGORITHMS:
        value = headers.get(HEADER_PREFIX + algorithm)
        if value:
            return algorithm, value.strip()
    return None


def trailer_algorithm(headers: dict[str, str]) -> str | None:
    """The algorithm an aws-chunked body announces in `x-amz-trailer`, if any."""
    name = headers.get("x-amz-trailer", "").strip().lower()
    if name.startswith(HEADER_PREFIX) and name[len(HEADER_PREFIX) :] in KNOWN_ALGORITHMS:
        return name[len(HEADER_PREFIX) :]
    return None
