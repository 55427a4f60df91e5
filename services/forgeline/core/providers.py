"""Find the provider that implements each API a process serves.

The APIs are those the manifests of the process's services declare. The package named
by an API's entry implements it in `forgeline/<package>/api.py`,
exposing `PROVIDERS = {botocore model name: provider class}`. An API without one is served
by its generated base class, so every operation answers 501 naming itself.
"""

from __future__ import annotations

import importlib

from forgeline.core.manifest import ApiSpec, serving
from forgeline.core.protocol.provider import ServiceProvider


def _generated_base(spec: ApiSpec) -> type[ServiceProvider]:
    module = importlib.import_module(f"forgeline.{spec.package}.generated.api")
    return getattr(module, f"{spec.title}Api")


def _implemented(package: str) -> dict[str, type[ServiceProvider]]:
    name = f"forgeline.{package}.api"
    try:
        return importlib.import_module(name).PROVIDERS
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return {}


def load_providers(apps: list[str]) -> dict[str, ServiceProvider]:
    providers: dict[str, ServiceProvider] = {}
    for manifest in serving(apps):
        for spec in manifest.all_apis:
            cls = _implemented(spec.package).get(spec.model_name) or _generated_base(spec)
            providers[spec.model_name] = cls()
    return providers
