"""Every implemented operation is typed from the model: its handler takes the generated
`<Operation>Input` TypedDict and returns the generated `<Operation>Output` (or None where
the model has no output), so mypy checks each request and response member it touches."""

from __future__ import annotations

import importlib
import typing

import pytest
from botocore import xform_name

from forgeline.core.manifest import service_manifests

APIS = [spec for manifest in service_manifests() for spec in manifest.all_apis]


def _provider(spec):
    module = importlib.import_module(f"forgeline.{spec.package}.api")
    return module.PROVIDERS[spec.model_name]


def _annotations(owner, name: str) -> tuple[object, object]:
    """The resolved types of `params` and the return (the handler module must import the
    generated `shapes` at run time, not only under TYPE_CHECKING)."""
    hints = typing.get_type_hints(getattr(owner, name))
    return hints.get("params"), hints.get("return")


def _implemented_apis():
    return [spec for spec in APIS if importlib.util.find_spec(f"forgeline.{spec.package}.api")]


@pytest.mark.parametrize("spec", _implemented_apis(), ids=lambda spec: spec.model_name)
def test_every_handler_is_typed_from_the_generated_shapes(spec):
    provider = _provider(spec)
    stub_class = next(
        base for base in provider.__mro__ if base.__module__.endswith(".generated.api")
    )
    untyped = []
    for operation in provider().implemented_operations():
        name = xform_name(operation)
        wanted = _annotations(stub_class, name)
        got = _annotations(provider, name)
        if got != wanted:
            untyped.append(f"{name}{got} should be {wanted}")
    assert untyped == [], f"{spec.model_name}: handlers not typed from the model"


def test_the_check_sees_implemented_operations():
    """The test above must not pass vacuously: CodeCommit implements operations."""
    codecommit = next(spec for spec in APIS if spec.model_name == "codecommit")
    assert len(_provider(codecommit)().implemented_operations()) > 50
