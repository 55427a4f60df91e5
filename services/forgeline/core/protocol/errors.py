"""AWS-style errors: an error code (the model's shape name), a message and an HTTP status.

Handlers raise `AwsError` (or a generated subclass); the dispatcher turns it into
`{"__type": code, "message": ...}` with the status the model gives that error.
"""

from __future__ import annotations

from typing import Any


class AwsError(Exception):
    code: str = "InternalFailure"
    status: int = 400

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        status: int | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.fields = fields

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"__type": self.code, "message": self.message}
        body.update(self.fields)
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message})"


class NotImplementedOperation(AwsError):
    """An operation of the model that Forgeline does not implement yet (HTTP 501)."""

    code = "NotImplementedException"
    status = 501

    def __init__(self, service_title: str, operation: str) -> None:
        super().__init__(
            f"{service_title} operation {operation} is not implemented in Forgeline yet."
        )
        self.operation = operation


def unknown_operation(target: str) -> AwsError:
    return AwsError(
        f"Operation {target!r} is not recognized by this endpoint.",
        code="UnknownOperationException",
    )


def serialization_error(message: str) -> AwsError:
    return AwsError(message, code="SerializationException")
