"""Request bodies as blocking streams: read from ASGI, un-chunked, checked as they pass.

A handler runs in a worker thread; it pulls the body through `ReceiveStream`, which asks
the event loop for each ASGI message. `AwsChunkedReader` strips the aws-chunked framing
(and checks chunk signatures when the body is signed); `CheckedReader` counts, hashes
and verifies the bytes, raising at the end of the body if anything does not match. The
blob store discards a put whose source raises, so a bad upload never becomes an object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import anyio.from_thread
from anyio.lowlevel import EventLoopToken
from starlette.requests import ClientDisconnect
from starlette.types import Receive

from forgeline.s3 import checksums
from forgeline.s3.auth import ChunkSigner
from forgeline.s3.errors import S3Error, bad_digest

_MAX_LINE = 8192
_READ_SIZE = 1024 * 1024


class ReceiveStream:
    """The raw request body, read from the ASGI `receive` callable of the request."""

    def __init__(self, receive: Receive, loop: EventLoopToken) -> None:
        # The loop is named explicitly: stores may read the body from their own threads
        # (the S3 store's transfer manager does), not only from the request's thread.
        self._receive = receive
        self._loop = loop
        self._pending = b""
        self.finished = False

    def read(self, size: int = -1) -> bytes:
        while not self._pending and not self.finished:
            message: Any = anyio.from_thread.run(self._receive, token=self._loop)  # type: ignore[arg-type]
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            self._pending = message.get("body", b"")
            self.finished = not message.get("more_body", False)
        if size < 0 or size >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def read_all(self, limit: int) -> bytes:
        parts, total = [], 0
        while chunk := self.read(_READ_SIZE):
            total += len(chunk)
            if total > limit:
                raise S3Error("MaxMessageLengthExceeded", "Your request was too big.")
            parts.append(chunk)
        return b"".join(parts)


class _Buffered:
    """Line and exact-size reads over a stream, for parsing the chunk framing."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._buffer = b""

    def _fill(self) -> bool:
        data = self._source.read(_READ_SIZE)
        if not data:
            return False
        self._buffer += data
        return True

    def readline(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > _MAX_LINE or not self._fill():
                raise _incomplete("the aws-chunked body ended inside a chunk header")
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def read_upto(self, size: int) -> bytes:
        if not self._buffer and not self._fill():
            raise _incomplete("the aws-chunked body ended inside a chunk")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _incomplete(detail: str) -> S3Error:
    return S3Error("IncompleteBody", f"The request body is incomplete: {detail}.")


class AwsChunkedReader:
    """Decodes `Content-Encoding: aws-chunked` bodies.

    Frames are `<hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n`, ending with a
    zero-size frame, then optional trailer lines (`x-amz-checksum-crc32:…`, and
    `x-amz-trailer-signature:…` when signed) and an empty line.
    """

    def __init__(self, source: Any, signer: ChunkSigner | None, signed: bool) -> None:
        self._framed = _Buffered(source)
        self._signer = signer
        self._signed = signed
        self._pieces = self._decode()
        self._pending = b""
        self.trailers: dict[str, str] = {}

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._pending = piece
        if size < 0 or size >= len(self._pending):
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def _decode(self) -> Iterator[bytes]:
        while True:
            size, signature = self._chunk_header()
            digest = hashlib.sha256() if self._signed else None
            remaining = size
            while remaining:
                data = self._framed.read_upto(remaining)
                remaining -= len(data)
                if digest is not None:
                    digest.update(data)
                yield data
            if size and self._framed.readline() != b"":
                raise _incomplete("a chunk is longer than its declared size")
            if self._signed and self._signer is not None and signature is not None:
                assert digest is not None
                if not self._signer.check_chunk_digest(digest.hexdigest(), signature):
                    raise S3Error(
                        "SignatureDoesNotMatch",
                        "The chunk signature we calculated does not match the one provided.",
                        403,
                    )
            if size == 0:
                self._read_trailers()
                return

    def _chunk_header(self) -> tuple[int, str | None]:
        line = self._framed.readline().decode("latin-1")
        size_text, _, extension = line.partition(";")
        try:
            size = int(size_text.strip(), 16)
        except ValueError:
            raise _incomplete(f"bad chunk header {line[:64]!r}") from None
        signature = None
        if extension.strip().startswith("chunk-signature="):
            signature = extension.strip()[len("chunk-signature=") :]
        if self._signed and signature is None:
            raise S3Error("SignatureDoesNotMatch", "A signed chunk carries no signature.", 403)
        return size, signature

    def _read_trailers(self) -> None:
        signed_text = b""
        trailer_signature = None
        while True:
            line = self._framed.readline()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "x-amz-trailer-signature":
                trailer_signature = value
            else:
                self.trailers[name] = value
                signed_text += f"{name}:{value}\n".encode("latin-1")
        if self._signed and self.trailers and self._signer is not None:
            if trailer_signature is None or not self._signer.check_trailer(
                signed_text, trailer_signature
            ):
                raise S3Error(
                    "SignatureDoesNotMatch",
                    "The trailer signature we calculated does not match the one provided.",
                    403,
                )


class CheckedReader:
    """Counts and hashes a body as it is read; at its end verifies what the client declared.

    MD5 is always computed (it is the object's ETag). A failed check raises S3Error from
    `read` and is also kept in `error`, since some consumers wrap what a source raises.
    """

    def __init__(
        self,
        source: Any,
        *,
        expected_length: int | None = None,
        expected_sha256: str | None = None,
        expected_md5: bytes | None = None,
        checksum: tuple[str, str | None] | None = None,
        trailers: AwsChunkedReader | None = None,
    ) -> None:
        self._source = source
        self._expected_length = expected_length
        self._sha256 = hashlib.sha256() if expected_sha256 else None
        self._expected_sha256 = expected_sha256
        self._expected_md5 = expected_md5
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.checksum_algorithm = checksum[0] if checksum else None
        self._checksum_expected = checksum[1] if checksum else None
        self._checksum = new_digest_or_none(self.checksum_algorithm)
        self._trailers = trailers
        self.size = 0
        self.error: S3Error | None = None
        self.finished = False
        self.checksum_value: str | None = None

    def read(self, size: int = -1) -> bytes:
        if self.finished:
            return b""
        data = self._source.read(size)
        if data:
            self.size += len(data)
            self._md5.update(data)
            if self._sha256 is not None:
                self._sha256.update(data)
            if self._checksum is not None:
                self._checksum.update(data)
            if self._expected_length is not None and self.size > self._expected_length:
                self._fail(S3Error("IncompleteBody", "The body is longer than declared."))
            return data
        self.finished = True
        self._verify()
        return b""

    def md5_digest(self) -> bytes:
        return self._md5.digest()

    def _fail(self, error: S3Error) -> None:
        self.error = error
        raise error

    def _verify(self) -> None:
        if self._expected_length is not None and self.size != self._expected_length:
            self._fail(
                S3Error(
                    "IncompleteBody",
                    "You did not provide the number of bytes specified by the "
                    "Content-Length HTTP header.",
                )
            )
        if self._sha256 is not None and self._sha256.hexdigest() != self._expected_sha256:
            self._fail(
                S3Error(
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                )
            )
        if self._expected_md5 is not None and self._md5.digest() != self._expected_md5:
            self._fail(bad_digest("Content-MD5"))
        algorithm = self.checksum_algorithm
        if algorithm is None:
            return
        expected = self._checksum_expected
        if expected is None and self._trailers is not None:
            expected = self._trailers.trailers.get(checksums.HEADER_PREFIX + algorithm)
        if expected is None:
            self._fail(
                S3Error(
                    "InvalidRequest",
                    f"The x-amz-checksum-{algorithm} trailer announced in x-amz-trailer "
                    "was not sent.",
                )
            )
        if self._checksum is None:
            return  # an algorithm we cannot compute: accepted, not stored
        actual = checksums.encode(self._checksum.digest())
        if actual != expected:
            self._fail(bad_digest(algorithm.upper()))
        self.checksum_value = actual


def new_digest_or_none(algorithm: str | None) -> checksums.Digest | None:
    return checksums.new_digest(algorithm) if algorithm else None
