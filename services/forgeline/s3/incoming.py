"""An upload's body as one checked stream, whatever framing and checks the client chose."""

from __future__ import annotations

import base64
import binascii

from forgeline.s3 import checksums
from forgeline.s3.auth import STREAMING_MODES, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER
from forgeline.s3.body import AwsChunkedReader, CheckedReader
from forgeline.s3.errors import S3Error
from forgeline.s3.exchange import S3Request

MAX_SINGLE_UPLOAD = 5 * 1024**3  # S3's limit for one PUT (object or part)


def upload_reader(request: S3Request, *, max_size: int = MAX_SINGLE_UPLOAD) -> CheckedReader:
    headers = request.headers
    mode = request.caller.payload_mode
    chunked = mode in STREAMING_MODES or "aws-chunked" in headers.get("content-encoding", "")
    source: object = request.body
    decoder = None
    if chunked:
        signed = mode in (STREAMING_SIGNED, STREAMING_SIGNED_TRAILER)
        decoder = AwsChunkedReader(request.body, request.caller.chunk_signer, signed)
        source = decoder
        length = _length(headers, "x-amz-decoded-content-length")
    else:
        length = _length(headers, "content-length")
    if length is not None and length > max_size:
        raise S3Error(
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            ProposedSize=str(length),
            MaxSizeAllowed=str(max_size),
        )
    declared = checksums.declared_checksum(headers)
    checksum: tuple[str, str | None] | None = declared
    if declared is None and decoder is not None:
        algorithm = checksums.trailer_algorithm(headers)
        checksum = (algorithm, None) if algorithm else None
    return CheckedReader(
        source,
        expected_length=length,
        expected_sha256=mode if len(mode) == 64 else None,
        expected_md5=content_md5(headers),
        checksum=checksum,
        trailers=decoder,
    )


def _length(headers: dict[str, str], name: str) -> int | None:
    text = headers.get(name)
    if text is None:
        return None
    if not text.strip().isdigit():
        raise S3Error(
            "InvalidArgument", f"{name} must be a number", ArgumentName=name, ArgumentValue=text
        )
    return int(text)


def content_md5(headers: dict[str, str]) -> bytes | None:
    text = headers.get("content-md5")
    if text is None:
        return None
    try:
        digest = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise S3Error("InvalidDigest", "The Content-MD5 you specified was invalid.")
    return digest


def stored_headers(headers: dict[str, str]) -> dict[str, str]:
    """The standard headers an upload stores with the object (aws-chunked is framing only)."""
    from forgeline.s3.objects import STORED_HEADERS

    kept = {}
    for name in STORED_HEADERS:
        value = headers.get(name.lower())
        if value is None:
            continue
        if name == "Content-Encoding":
            codings = [c.strip() for c in value.split(",") if c.strip() != "aws-chunked"]
            value = ",".join(codings)
            if not value:
                continue
        kept[name] = value
    return kept


def user_metadata(headers: dict[str, str]) -> dict[str, str]:
    metadata = {
        name[len("x-amz-meta-") :]: value
        for name, value in headers.items()
        if name.startswith("x-amz-meta-")
    }
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    if size > 2048:
        raise S3Error(
            "MetadataTooLarge",
            "Your metadata headers exceed the maximum allowed metadata size.",
            Size=str(size),
            MaxSizeAllowed="2048",
        )
    return metadata
