"""The request an S3 operation receives and the response it returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from forgeline.core.blobstore import BlobStore
from forgeline.s3.auth import S3Caller
from forgeline.s3.body import ReceiveStream
from forgeline.s3.errors import S3Error


@dataclasses.dataclass
class S3Request:
    method: str
    bucket: str  # "" for the service itself (ListBuckets)
    key: str  # "" for a bucket
    query: dict[str, str]  # decoded; the first value of each name
    headers: dict[str, str]  # lower-case names; the first value of each
    caller: S3Caller
    body: ReceiveStream
    store: BlobStore
    request_id: str
    base_url: str  # scheme://host of the request, for Location values

    def int_param(self, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        """An integer query parameter, clamped to `high`; InvalidArgument when malformed."""
        text = self.query.get(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise S3Error(
                "InvalidArgument",
                f"Provided {name} not an integer or within integer range",
                ArgumentName=name,
                ArgumentValue=text,
            ) from None
        if value < low:
            raise S3Error(
                "InvalidArgument",
                f"Argument {name} must be an integer not less than {low}",
                ArgumentName=name,
                ArgumentValue=text,
            )
        return min(value, high) if high is not None else value


@dataclasses.dataclass
class S3Response:
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes | Iterator[bytes] = b""

    @classmethod
    def xml(cls, body: bytes, status: int = 200) -> S3Response:
        return cls(status=status, headers={"Content-Type": "application/xml"}, body=body)
