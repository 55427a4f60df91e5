"""The committed stubs are what `forgeline codegen` makes from the installed botocore."""

from __future__ import annotations

from pathlib import Path

import botocore
import pytest

from forgeline.core.protocol import codegen
from forgeline.core.protocol.catalog import APIS, service_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", APIS, ids=lambda s: s.model_name)
def test_generated_stubs_are_current(spec):
    folder = ROOT / "services" / "forgeline" / spec.package_path / "generated"
    version = botocore.__version__
    assert (folder / "api.py").read_text() == codegen.render_api(spec, version), (
        "run `forgeline codegen`"
    )
    assert (folder / "errors.py").read_text() == codegen.render_errors(spec, version)
    assert (folder / "shapes.py").read_text() == codegen.render_shapes(spec, version)


@pytest.mark.parametrize("spec", APIS, ids=lambda s: s.model_name)
def test_one_stub_per_operation_and_one_class_per_error(spec):
    import importlib

    api = importlib.import_module(f"forgeline.{spec.package}.generated.api")
    errors = importlib.import_module(f"forgeline.{spec.package}.generated.errors")
    base = getattr(api, f"{spec.title}Api")()
    model = service_model(spec.model_name)
    assert all(hasattr(base, botocore.xform_name(op)) for op in model.operation_names)
    assert not base.implemented_operations()
    declared = {shape.name for shape in model.error_shapes}
    assert set(errors.ERRORS) == declared
    for name, cls in errors.ERRORS.items():
        status = model.shape_for(name).metadata.get("error", {}).get("httpStatusCode", 400)
        assert cls.status == status and cls.code == name
