"""The request context every handler receives next to its validated parameters."""

from __future__ import annotations

import dataclasses
import uuid


@dataclasses.dataclass(frozen=True)
class RequestContext:
    account_id: str
    region: str
    principal_arn: str
    access_key_id: str | None
    service: str  # botocore service name: codecommit, codebuild, ...
    operation: str
    request_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))

    def arn(self, service: str, resource: str) -> str:
        """ARN of a resource in this request's account and region."""
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"
