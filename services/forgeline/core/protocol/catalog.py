"""Which AWS APIs Forgeline speaks (as the service manifests declare), and where their
models come from.

botocore's service-2.json is the contract (DESIGN.md principle 1): shapes, enums,
constraints and error codes are read from the installed models, never restated here. An API
botocore has no model of (the CodeDeploy agents' command service) brings its own, in
botocore's data layout, which the same loader reads.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import botocore.session
from botocore.model import ServiceModel

from forgeline.core.manifest import ApiSpec, service_manifests

__all__ = [
    "APIS",
    "ApiSpec",
    "api_spec",
    "apis_for_app",
    "new_botocore_session",
    "own_model_file",
    "service_model",
    "target_prefixes",
]


# Each service's manifest declares the APIs it serves; the order here (every service's
# own API, then the supporting ones) is the order of the README's coverage table.
APIS: tuple[ApiSpec, ...] = tuple(
    [spec for manifest in service_manifests() for spec in manifest.apis]
    + [spec for manifest in service_manifests() for spec in manifest.supporting_apis]
)

_BY_MODEL = {spec.model_name: spec for spec in APIS}


def _package_folder(package: str) -> Path:
    # find_spec imports only the parents; the package itself stays unloaded.
    found = importlib.util.find_spec(f"forgeline.{package}")
    if found is None or not found.submodule_search_locations:
        raise ValueError(f"forgeline.{package} is not a package")
    return Path(next(iter(found.submodule_search_locations)))


def own_model_dirs() -> list[Path]:
    """The folders holding models of our own, in botocore's data layout."""
    return [
        _package_folder(spec.package) / spec.model_dir
        for spec in APIS
        if spec.model_dir is not None
    ]


def own_model_file(spec: ApiSpec) -> Path | None:
    """The service-2.json of an API that brings its own model; None for botocore's."""
    if spec.model_dir is None:
        return None
    versions = sorted((_package_folder(spec.package) / spec.model_dir / spec.model_name).iterdir())
    return versions[-1] / "service-2.json"


def new_botocore_session() -> botocore.session.Session:
    """A botocore session that also knows our own models (clients for tests and tools)."""
    session = botocore.session.get_session()
    loader = session.get_component("data_loader")
    loader.search_paths.extend(str(path) for path in own_model_dirs())
    return session


@functools.lru_cache(maxsize=1)
def _botocore_session() -> botocore.session.Session:
    return new_botocore_session()


@functools.cache
def service_model(model_name: str) -> ServiceModel:
    return _botocore_session().get_service_model(model_name)


def api_spec(model_name: str) -> ApiSpec:
    return _BY_MODEL[model_name]


@functools.lru_cache(maxsize=1)
def target_prefixes() -> dict[str, str]:
    """X-Amz-Target prefix (e.g. CodeBuild_20161006) -> botocore service name."""
    return {
        service_model(spec.model_name).metadata["targetPrefix"]: spec.model_name for spec in APIS
    }


def apis_for_app(app: str) -> list[ApiSpec]:
    return [spec for spec in APIS if spec.app == app]
