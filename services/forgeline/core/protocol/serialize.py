"""Serialize a handler's result dict by the operation's output shape (JSON 1.1).

Timestamps go out as epoch seconds and blobs as base64, as botocore expects. With
FORGELINE_STRICT_OUTPUT=1 (the test suite) a member the model does not know is a
bug in the handler and raises, instead of being dropped silently.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from botocore.model import Shape


class OutputShapeError(TypeError):
    pass


def _strict() -> bool:
    from forgeline.core.settings import get_settings

    return get_settings().strict_output


def serialize(shape: Shape | None, value: Any) -> Any:
    if shape is None:
        return {}
    return _value(shape, value, shape.name)


def _value(shape: Shape, value: Any, path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if shape.metadata.get("document"):
            return value
        if not isinstance(value, dict):
            raise OutputShapeError(f"{path}: expected a dict, got {type(value).__name__}")
        out = {}
        members = shape.members
        for name, item in value.items():
            if item is None:
                continue
            member_shape = members.get(name)
            if member_shape is None:
                if _strict():
                    raise OutputShapeError(f"{path}: {name!r} is not a member of {shape.name}")
                continue
            out[member_shape.serialization.get("name", name)] = _value(
                member_shape, item, f"{path}.{name}"
            )
        return out
    if kind == "list":
        return [_value(shape.member, item, f"{path}[]") for item in value]
    if kind == "map":
        return {key: _value(shape.value, item, f"{path}.{key}") for key, item in value.items()}
    if kind == "timestamp":
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            return round(value.timestamp(), 3)
        return value
    if kind == "blob":
        if isinstance(value, str):
            value = value.encode()
        return base64.b64encode(value).decode("ascii")
    if kind in ("integer", "long") and not isinstance(value, int):
        raise OutputShapeError(f"{path}: expected an integer, got {type(value).__name__}")
    return value
