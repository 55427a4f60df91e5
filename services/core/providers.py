"""Find the provider that implements each API a process serves.

A service package implements its API in `services/<app>/api.py`, exposing
`PROVIDERS = {botocore model name: provider class}`. An API without one is served by its
generated base class, so every operation answers 501 naming itself.
"""

from __future__ import annotations

import importlib

from services.core.protocol.catalog import ApiSpec, apis_for_app
from services.core.protocol.provider import ServiceProvider


def _generated_base(spec: ApiSpec) -> type[ServiceProvider]:
    module = importlib.import_module(f"services.{spec.app}.{spec.package}.api")
    return getattr(module, f"{spec.title}Api")


def load_providers(apps: list[str]) -> dict[str, ServiceProvider]:
    providers: dict[str, ServiceProvider] = {}
    for app in apps:
        try:
            implemented = importlib.import_module(f"services.{app}.api").PROVIDERS
        except ModuleNotFoundError as exc:
            if exc.name != f"services.{app}.api":
                raise
            implemented = {}
        for spec in apis_for_app(app):
            cls = implemented.get(spec.model_name) or _generated_base(spec)
            providers[spec.model_name] = cls()
    return providers
