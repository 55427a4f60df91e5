"""The blob store contract shared by every backend, and the key rules they all enforce.

A blob is an immutable byte string under a '/'-separated key. Backends stream data in
both directions, record each blob's SHA-256 when it is written, and make a write visible
only once it is complete.
"""

from __future__ import annotations

import abc
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024

# Key segments starting with this are the stores' own bookkeeping (temp files, digests),
# so user keys may not use them and listings never show them.
RESERVED_PREFIX = ".blobstore-"

BlobSource = BinaryIO | bytes | bytearray | memoryview


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    sha256: str


class BlobNotFound(KeyError):
    """The key names no blob."""


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative blob key, else raise ValueError."""
    if not isinstance(key, str):
        raise ValueError(f"blob key must be a string, not {type(key).__name__}")
    if not key:
        raise ValueError("blob key must not be empty")
    _check_path_text(key, "blob key")
    for segment in key.split("/"):
        _check_segment(key, segment, "blob key")
    return key


def validate_prefix(prefix: str) -> str:
    """Return `prefix` if it is a safe listing prefix ('' means everything).

    A prefix is a plain string prefix of keys, as in S3: "logs/2" matches "logs/2024/a".
    It may end with '/', but must not escape the store any more than a key could.
    """
    if not isinstance(prefix, str):
        raise ValueError(f"blob prefix must be a string, not {type(prefix).__name__}")
    if not prefix:
        return prefix
    _check_path_text(prefix, "blob prefix")
    body = prefix[:-1] if prefix.endswith("/") else prefix
    for segment in body.split("/"):
        _check_segment(prefix, segment, "blob prefix")
    return prefix


def is_valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except ValueError:
        return False
    return True


def _check_path_text(text: str, what: str) -> None:
    if "\x00" in text:
        raise ValueError(f"{what} must not contain NUL: {text!r}")
    if "\\" in text:
        raise ValueError(f"{what} must not contain a backslash: {text!r}")
    if text.startswith("/"):
        raise ValueError(f"{what} must be relative: {text!r}")


def _check_segment(text: str, segment: str, what: str) -> None:
    if segment == "":
        raise ValueError(f"{what} has an empty segment: {text!r}")
    if segment in (".", ".."):
        raise ValueError(f"{what} must not contain '.' or '..' segments: {text!r}")
    if segment.startswith(RESERVED_PREFIX):
        raise ValueError(f"{what} uses the reserved segment prefix {RESERVED_PREFIX!r}: {text!r}")


def iter_source(data: BlobSource, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield `data` in chunks of at most `chunk_size` bytes without reading it whole."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data).cast("B")
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    while True:
        chunk = data.read(chunk_size)
        if not chunk:
            return
        yield chunk


class HashingReader(io.RawIOBase):
    """A read-only stream over a source that hashes and counts the bytes as they pass.

    It is deliberately not seekable, so consumers read it once, front to back, and the
    digest covers exactly the bytes they received.
    """

    def __init__(self, source: BlobSource) -> None:
        super().__init__()
        if isinstance(source, bytes | bytearray | memoryview):
            source = io.BytesIO(source)
        self._source = source
        self._hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        # Fill the request unless the source ends: short reads from pipes would
        # otherwise look like the end of the data to some consumers.
        parts: list[bytes] = []
        wanted = size
        while wanted > 0:
            chunk = self._source.read(wanted)
            if not chunk:
                break
            parts.append(chunk)
            wanted -= len(chunk)
        data = b"".join(parts)
        self._hash.update(data)
        self.size += len(data)
        return data

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(CHUNK_SIZE), b""))

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class BlobStore(abc.ABC):
    """Streaming, atomic storage of immutable blobs under relative keys."""

    @abc.abstractmethod
    def put(self, key: str, data: BlobSource) -> BlobInfo:
        """Store `data` under `key`, replacing any previous blob, and describe it.

        File-like sources are read in chunks, never whole. Readers see the previous blob
        (or none) until the new one is complete; if reading the source fails, nothing
        changes and the error propagates.
        """

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A readable stream of the blob; the caller closes it. Raises BlobNotFound."""

    @abc.abstractmethod
    def stat(self, key: str) -> BlobInfo | None:
        """The blob's size and digest, or None when there is no such blob."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob; a missing blob is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every blob whose key starts with `prefix`.

        Local disk and AWS S3 yield them in key order; some S3-compatible servers
        (s3rver among them) do not, so callers that need an order should sort.
        """

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every blob whose key starts with `prefix`; return how many."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The blob's bytes in chunks of at most `chunk_size`. Raises BlobNotFound.

        The blob is opened before the first chunk is requested, so a missing key fails
        at the call rather than at the first iteration.
        """
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        return _chunks_of(self.open(key), chunk_size)

    def read_bytes(self, key: str) -> bytes:
        """The whole blob in memory: for small blobs only. Raises BlobNotFound."""
        with self.open(key) as stream:
            return stream.read()


def _chunks_of(stream: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with stream:
        while True:
            chunk = stream.read(chunk_size)
            if not chunk:
                return
            yield chunk
