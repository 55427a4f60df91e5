"""Which AWS APIs Forgeline speaks (as the service manifests declare), and where their
botocore models come from.

botocore's service-2.json is the contract (DESIGN.md principle 1): shapes, enums,
constraints and error codes are read from the installed models, never restated here.
"""

from __future__ import annotations

import functools

import botocore.session
from botocore.model import ServiceModel

from forgeline.core.manifest import ApiSpec, service_manifests

__all__ = ["APIS", "ApiSpec", "api_spec", "apis_for_app", "service_model", "target_prefixes"]


# Each service's manifest declares the APIs it serves; the order here (every service's
# own API, then the supporting ones) is the order of the README's coverage table.
APIS: tuple[ApiSpec, ...] = tuple(
    [spec for manifest in service_manifests() for spec in manifest.apis]
    + [spec for manifest in service_manifests() for spec in manifest.supporting_apis]
)

_BY_MODEL = {spec.model_name: spec for spec in APIS}


@functools.lru_cache(maxsize=1)
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


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
