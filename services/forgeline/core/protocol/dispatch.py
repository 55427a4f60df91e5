"""From a validated request to a serialized answer, independent of the web framework.

`Dispatcher.prepare` resolves the operation and validates the body; `Dispatcher.invoke`
runs the handler. The HTTP layer does authentication in between, so an unsigned request
learns nothing beyond "unknown operation" or "missing token".
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from botocore.model import OperationModel

from forgeline.core.context import RequestContext
from forgeline.core.protocol.catalog import ApiSpec, api_spec, service_model, target_prefixes
from forgeline.core.protocol.errors import AwsError, serialization_error, unknown_operation
from forgeline.core.protocol.provider import ServiceProvider
from forgeline.core.protocol.serialize import serialize
from forgeline.core.protocol.validate import RequestValidator

log = logging.getLogger("forgeline.dispatch")


@dataclasses.dataclass
class ResolvedOperation:
    spec: ApiSpec
    operation: OperationModel
    provider: ServiceProvider

    @property
    def name(self) -> str:
        return self.operation.name


class Dispatcher:
    """Routes X-Amz-Target values to the providers this process serves."""

    def __init__(self, providers: dict[str, ServiceProvider]) -> None:
        self.providers = providers  # botocore model name -> provider

    def resolve(self, target: str | None) -> ResolvedOperation:
        if not target or "." not in target:
            raise unknown_operation(target or "")
        prefix, _, operation_name = target.partition(".")
        model_name = target_prefixes().get(prefix)
        if model_name is None or model_name not in self.providers:
            raise unknown_operation(target)
        model = service_model(model_name)
        if operation_name not in model.operation_names:
            raise unknown_operation(target)
        return ResolvedOperation(
            api_spec(model_name), model.operation_model(operation_name), self.providers[model_name]
        )

    @staticmethod
    def parse_body(resolved: ResolvedOperation, body: bytes) -> dict[str, Any]:
        if not body.strip():
            document: Any = {}
        else:
            try:
                document = json.loads(body)
            except (ValueError, RecursionError) as exc:
                # ValueError covers malformed JSON, bad UTF-8 and integers too long to
                # convert; RecursionError, nesting deeper than the parser allows.
                reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
                raise serialization_error(f"The request body is not valid JSON: {reason}") from None
        return RequestValidator(resolved.spec, resolved.operation).parse(document)

    @staticmethod
    def invoke(
        resolved: ResolvedOperation, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        provider = resolved.provider
        if not provider.is_implemented(resolved.name):
            raise provider.not_implemented(resolved.name)
        result = provider.handler_for(resolved.name)(ctx, params)
        return serialize(resolved.operation.output_shape, result or {})


def error_status(resolved: ResolvedOperation | None, error: AwsError) -> int:
    """The status the model declares for this error code, else the error's own."""
    if resolved is not None:
        for shape in resolved.operation.service_model.error_shapes:
            if shape.name == error.code:
                return int(shape.metadata.get("error", {}).get("httpStatusCode", error.status))
    return error.status
