"""A build's environment variables: CodeBuild's built-in ones, then the buildspec's, then
the project's and StartBuild's (which win), with parameter-store and secrets-manager values
resolved and remembered for masking.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from forgeline.codebuild import secret_values
from forgeline.codebuild.plan import BuildPlan

# Variables a build may not set: they are the platform's.
_RESERVED_PREFIXES = ("CODEBUILD_",)


@dataclass
class BuildEnvironment:
    variables: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)  # values to mask in logs


@dataclass(frozen=True)
class BuildFacts:
    """What the built-in variables describe."""

    build_id: str
    build_arn: str
    build_number: int
    project_name: str
    image: str
    initiator: str
    region: str
    account_id: str
    start_time: dt.datetime
    source_version: str | None
    source_repo_url: str | None
    kms_key_id: str | None
    log_stream: str
    public_url: str | None
    batch_identifier: str | None = None


def built_in_variables(facts: BuildFacts) -> dict[str, str]:
    """The CODEBUILD_* variables AWS documents ("Environment variables in build
    environments"). Directory variables (CODEBUILD_SRC_DIR...) depend on the runner and
    are added by the engine."""
    variables = {
        "AWS_DEFAULT_REGION": facts.region,
        "AWS_REGION": facts.region,
        "CODEBUILD_BUILD_ARN": facts.build_arn,
        "CODEBUILD_BUILD_ID": facts.build_id,
        "CODEBUILD_BUILD_IMAGE": facts.image,
        "CODEBUILD_BUILD_NUMBER": str(facts.build_number),
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        "CODEBUILD_INITIATOR": facts.initiator,
        "CODEBUILD_LOG_PATH": facts.log_stream,
        "CODEBUILD_START_TIME": str(int(facts.start_time.timestamp() * 1000)),
        "CODEBUILD_CI": "true",
        "CODEBUILD_PROJECT_NAME": facts.project_name,
    }
    if facts.kms_key_id:
        variables["CODEBUILD_KMS_KEY_ID"] = facts.kms_key_id
    if facts.source_version:
        variables["CODEBUILD_SOURCE_VERSION"] = facts.source_version
    if facts.source_repo_url:
        variables["CODEBUILD_SOURCE_REPO_URL"] = facts.source_repo_url
    if facts.public_url:
        # Builds reach Forgeline's own APIs (aws CLI, git) through this endpoint.
        variables["CODEBUILD_PUBLIC_BUILD_URL"] = (
            f"{facts.public_url.rstrip('/')}/builds/{facts.build_id}"
        )
        variables["AWS_ENDPOINT_URL"] = facts.public_url
    if facts.batch_identifier:
        variables["CODEBUILD_BATCH_BUILD_IDENTIFIER"] = facts.batch_identifier
    return variables


def _resolve(session: Session, account_id: str, region: str, kind: str, reference: str) -> str:
    if kind == "PARAMETER_STORE":
        return secret_values.resolve_parameter(session, account_id, region, reference)
    if kind == "SECRETS_MANAGER":
        return secret_values.resolve_secret(session, account_id, region, reference)
    return reference


def assemble(
    session: Session,
    account_id: str,
    region: str,
    built_ins: Mapping[str, str],
    plan: BuildPlan | None,
    project_variables: list[dict[str, str]],
) -> BuildEnvironment:
    """Merge in precedence order: built-ins < buildspec < project and StartBuild.

    Raises secret_values.SecretResolutionError when a parameter or secret is missing.
    """
    result = BuildEnvironment(variables=dict(built_ins))
    if plan is not None:
        result.variables.update(plan.variables)
        for name, parameter in plan.parameter_store.items():
            value = secret_values.resolve_parameter(session, account_id, region, parameter)
            result.variables[name] = value
            result.secrets.append(value)
        for name, secret in plan.secrets_manager.items():
            reference = ":".join(
                [
                    secret.secret_id,
                    secret.json_key or "",
                    secret.version_stage or "",
                    secret.version_id or "",
                ]
            ).rstrip(":")
            value = secret_values.resolve_secret(session, account_id, region, reference)
            result.variables[name] = value
            result.secrets.append(value)
    for variable in project_variables:
        kind = variable.get("type", "PLAINTEXT")
        value = _resolve(session, account_id, region, kind, variable.get("value", ""))
        result.variables[variable["name"]] = value
        if kind != "PLAINTEXT":
            result.secrets.append(value)
    result.secrets = sorted({secret for secret in result.secrets if secret}, key=len, reverse=True)
    return result


def reserved(name: str) -> bool:
    return name.startswith(_RESERVED_PREFIXES)
