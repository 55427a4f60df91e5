"""Service providers: one method per model operation.

`forgeline codegen` writes, for each API, a base class whose methods are stubs marked
with `@stub`; a service implements an operation by overriding its method. Whatever is
still a stub answers 501 naming the operation, and the coverage table counts overrides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from botocore import xform_name

from forgeline.core.context import RequestContext
from forgeline.core.protocol.catalog import api_spec, service_model
from forgeline.core.protocol.errors import NotImplementedOperation

F = TypeVar("F", bound=Callable[..., Any])

Handler = Callable[[RequestContext, dict[str, Any]], dict[str, Any] | None]


def stub(operation: str) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        fn.__forgeline_stub__ = operation  # type: ignore[attr-defined]
        return fn

    return mark


LONG_POLL_MARK = "__forgeline_long_poll__"


def long_poll(handler: F) -> F:
    """Marks a handler that may wait many seconds for something to happen (a CodeDeploy
    agent's PollHostCommand). The HTTP server runs such handlers on threads of their own,
    so waiting polls never hold the threads every other API call runs on."""
    setattr(handler, LONG_POLL_MARK, True)
    return handler


def is_long_poll(handler: Callable[..., Any]) -> bool:
    return bool(getattr(handler, LONG_POLL_MARK, False))


class ServiceProvider:
    model_name: ClassVar[str]

    def handler_for(self, operation: str) -> Handler:
        return getattr(self, xform_name(operation))

    def is_implemented(self, operation: str) -> bool:
        method = getattr(type(self), xform_name(operation), None)
        return method is not None and not hasattr(method, "__forgeline_stub__")

    def implemented_operations(self) -> list[str]:
        model = service_model(self.model_name)
        return [name for name in model.operation_names if self.is_implemented(name)]

    def not_implemented(self, operation: str) -> NotImplementedOperation:
        return NotImplementedOperation(api_spec(self.model_name).title, operation)
