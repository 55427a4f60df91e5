"""Which AWS APIs Forgeline speaks, and where their botocore models come from.

botocore's service-2.json is the contract (DESIGN.md principle 1): shapes, enums,
constraints and error codes are read from the installed models, never restated here.
"""

from __future__ import annotations

import dataclasses
import functools

import botocore.session
from botocore.model import ServiceModel


@dataclasses.dataclass(frozen=True)
class ApiSpec:
    model_name: str  # botocore service name
    app: str  # the Forgeline service app that serves it: repo, build, deploy, pipeline
    title: str
    # Error code for a malformed member when the model names no more specific one.
    validation_error: str
    # Error code for a forged or stale pagination token.
    invalid_token_error: str
    # The package implementing it, `forgeline.<package>` (named after the API): its
    # `generated/` holds the stubs, its `api.py` the provider.
    package: str


APIS: tuple[ApiSpec, ...] = (
    ApiSpec(
        "codecommit",
        "repo",
        "CodeCommit",
        "ValidationException",
        "InvalidContinuationTokenException",
        package="codecommit",
    ),
    ApiSpec(
        "codebuild",
        "build",
        "CodeBuild",
        "InvalidInputException",
        "InvalidInputException",
        package="codebuild",
    ),
    ApiSpec(
        "codedeploy",
        "deploy",
        "CodeDeploy",
        "ValidationException",
        "InvalidNextTokenException",
        package="codedeploy",
    ),
    ApiSpec(
        "codepipeline",
        "pipeline",
        "CodePipeline",
        "ValidationException",
        "InvalidNextTokenException",
        package="codepipeline",
    ),
    # The supporting APIs builds need, served beside CodeBuild: build logs (CloudWatch
    # Logs), and the secrets a buildspec reads (SSM Parameter Store, Secrets Manager).
    # Forgeline implements a subset of each; every other operation answers 501.
    ApiSpec(
        "logs",
        "build",
        "CloudWatchLogs",
        "InvalidParameterException",
        "InvalidParameterException",
        package="logs",
    ),
    ApiSpec(
        "ssm", "build", "SSM", "ValidationException", "InvalidNextToken", package="ssm"
    ),
    ApiSpec(
        "secretsmanager",
        "build",
        "SecretsManager",
        "InvalidParameterException",
        "InvalidNextTokenException",
        package="secretsmanager",
    ),
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
