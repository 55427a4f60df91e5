"""A build project's stored document: CreateProject/UpdateProject input made into the
`Project` shape, with AWS's defaults filled in and its semantic rules checked.

The protocol layer has already checked types, lengths, ranges, patterns and enums
against the model; what is left here are the rules that tie fields together (a source
type and its location, CodePipeline on both ends, identifiers of secondary sources...).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.s3locations import split_location
from forgeline.core import tagging

# Members of the input that are stored as given, under the same name, in the document.
COPIED_MEMBERS = (
    "description",
    "source",
    "secondarySources",
    "sourceVersion",
    "secondarySourceVersions",
    "artifacts",
    "secondaryArtifacts",
    "cache",
    "environment",
    "serviceRole",
    "timeoutInMinutes",
    "queuedTimeoutInMinutes",
    "encryptionKey",
    "tags",
    "vpcConfig",
    "logsConfig",
    "fileSystemLocations",
    "buildBatchConfig",
    "concurrentBuildLimit",
    "autoRetryLimit",
)

DEFAULT_TIMEOUT_MINUTES = 60
DEFAULT_QUEUED_TIMEOUT_MINUTES = 480
DEFAULT_BATCH_TIMEOUT_MINUTES = 2160
# AWS's default account quota of concurrently running builds; a project's own limit
# may not exceed it.
ACCOUNT_CONCURRENT_BUILD_LIMIT = 1000
MAX_SECONDARY_SOURCES = 12
MAX_SECONDARY_ARTIFACTS = 12
MAX_AUTO_RETRY_LIMIT = 10

GIT_SOURCE_TYPES = frozenset(
    {"CODECOMMIT", "GITHUB", "GITHUB_ENTERPRISE", "BITBUCKET", "GITLAB", "GITLAB_SELF_MANAGED"}
)
SOURCE_TYPES_WITH_LOCATION = GIT_SOURCE_TYPES | {"S3"}
# Providers CodeBuild can report build status to (ProjectSource.reportBuildStatus).
STATUS_REPORTING_SOURCE_TYPES = GIT_SOURCE_TYPES - {"CODECOMMIT"}
RESERVED_VARIABLE_PREFIX = "CODEBUILD_"
LAMBDA_ENVIRONMENT_TYPES = frozenset({"LINUX_LAMBDA_CONTAINER", "ARM_LAMBDA_CONTAINER"})

_IDENTIFIER = re.compile(r"[A-Za-z0-9_]{1,127}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_ROLE_NAME = re.compile(r"[\w+=,.@/-]{1,512}")
_URL = re.compile(r"https?://[^\s/]+(/\S*)?")

TAG_ERRORS = tagging.TagErrors(
    too_many="InvalidInputException",
    reserved_key="InvalidInputException",
    invalid="InvalidInputException",
)


def invalid(message: str) -> errors.InvalidInputException:
    return errors.InvalidInputException(message)


def normalize_project(
    params: shapes.CreateProjectInput | shapes.UpdateProjectInput,
    existing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The project document after applying CreateProject/UpdateProject `params`.

    `existing` is the stored document for UpdateProject: only the members present in
    `params` change, each replaced whole (as AWS does: an `environment` given replaces
    the previous environment, `secondarySources: []` removes all secondary sources).
    The result carries AWS's defaults and has passed every check; `name`, `arn` and
    what depends on the account (badge URL, default encryption key) are the caller's.
    It is the JSON kept in the project row, read back as a `Project` by
    projects.stored_project.
    """
    document: dict[str, Any] = copy.deepcopy(dict(existing)) if existing else {}
    # COPIED_MEMBERS are names both inputs share, so they are read by name.
    given: Mapping[str, object] = params
    for member in COPIED_MEMBERS:
        if member in given:
            document[member] = copy.deepcopy(given[member])
    if "badgeEnabled" in params:
        badge = dict(document.get("badge") or {})
        badge["badgeEnabled"] = bool(params["badgeEnabled"])
        document["badge"] = badge
    if document.get("concurrentBuildLimit") == -1 and existing is not None:
        # UpdateProject's documented way to remove the limit.
        del document["concurrentBuildLimit"]
    fill_defaults(document)
    check_document(document)
    return document


# -- defaults -----------------------------------------------------------------------------
def fill_defaults(document: dict[str, Any]) -> None:
    """Add the members AWS fills in when a project is saved without them."""
    document.setdefault("secondarySources", [])
    document.setdefault("secondarySourceVersions", [])
    document.setdefault("secondaryArtifacts", [])
    document.setdefault("tags", [])
    document.setdefault("fileSystemLocations", [])
    document.setdefault("timeoutInMinutes", DEFAULT_TIMEOUT_MINUTES)
    document.setdefault("queuedTimeoutInMinutes", DEFAULT_QUEUED_TIMEOUT_MINUTES)
    document.setdefault("projectVisibility", "PRIVATE")
    badge = document.setdefault("badge", {"badgeEnabled": False})
    if not badge.get("badgeEnabled"):
        badge.pop("badgeRequestUrl", None)
    for source in _sources(document):
        source.setdefault("insecureSsl", False)
        if source["type"] in STATUS_REPORTING_SOURCE_TYPES:
            source.setdefault("reportBuildStatus", False)
    for artifacts in _artifacts(document):
        if artifacts.get("type") == "S3":
            artifacts.setdefault("namespaceType", "NONE")
            artifacts.setdefault("packaging", "NONE")
            artifacts.setdefault("encryptionDisabled", False)
    environment = document.get("environment")
    if environment is not None:
        environment.setdefault("environmentVariables", [])
        environment.setdefault("privilegedMode", False)
        environment.setdefault("imagePullCredentialsType", "CODEBUILD")
        for variable in environment["environmentVariables"]:
            variable.setdefault("type", "PLAINTEXT")
    document.setdefault("cache", {"type": "NO_CACHE"})
    logs = document.setdefault("logsConfig", {})
    logs.setdefault("cloudWatchLogs", {"status": "ENABLED"})
    s3_logs = logs.setdefault("s3Logs", {"status": "DISABLED"})
    s3_logs.setdefault("encryptionDisabled", False)
    batch = document.get("buildBatchConfig")
    if batch is not None:
        # What AWS stores when a batch configuration omits it (not the console's 480).
        batch.setdefault("timeoutInMins", DEFAULT_BATCH_TIMEOUT_MINUTES)
        batch.setdefault("combineArtifacts", False)


def _sources(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    primary = [document["source"]] if document.get("source") else []
    return primary + list(document.get("secondarySources") or [])


def _artifacts(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    primary = [document["artifacts"]] if document.get("artifacts") else []
    return primary + list(document.get("secondaryArtifacts") or [])


# -- checks -------------------------------------------------------------------------------
def check_document(document: Mapping[str, Any]) -> None:
    check_sources(document)
    check_artifacts(document)
    check_codepipeline_pairing(document)
    check_environment(document.get("environment") or {})
    check_cache(document.get("cache") or {})
    check_logs(document.get("logsConfig") or {})
    check_limits(document)
    check_service_role(document.get("serviceRole"))
    check_vpc(document.get("vpcConfig"))
    check_file_systems(document.get("fileSystemLocations") or [])
    check_batch(document.get("buildBatchConfig"))
    check_tags(document.get("tags") or [])


def check_identifier(identifier: str | None) -> None:
    if identifier is None or not _IDENTIFIER.fullmatch(identifier):
        raise invalid(
            "Invalid input: identifier must contain only alphanumeric characters and "
            "underscores and be less than 128 characters in length"
        )


def _unique(identifiers: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for identifier in identifiers:
        if identifier in seen:
            raise invalid(f"Invalid input: duplicate {what}: {identifier}")
        seen.add(identifier)


def check_sources(document: Mapping[str, Any]) -> None:
    source = document.get("source")
    if not source:
        raise invalid("Invalid input: project source is required")
    check_source(source)
    if source.get("sourceIdentifier") is not None:
        check_identifier(source["sourceIdentifier"])
    secondary = document.get("secondarySources") or []
    if len(secondary) > MAX_SECONDARY_SOURCES:
        raise invalid(
            f"Invalid input: a project can have at most {MAX_SECONDARY_SOURCES} secondary "
            f"sources, got {len(secondary)}"
        )
    for each in secondary:
        check_identifier(each.get("sourceIdentifier"))
        if each["type"] == "CODEPIPELINE" and source["type"] != "CODEPIPELINE":
            raise invalid(
                "Invalid input: a secondary source of type CODEPIPELINE needs a primary "
                "source of type CODEPIPELINE"
            )
        check_source(each)
    _unique((each["sourceIdentifier"] for each in secondary), "source identifier")
    known = {each["sourceIdentifier"] for each in secondary}
    versions = document.get("secondarySourceVersions") or []
    for version in versions:
        if version["sourceIdentifier"] not in known:
            raise invalid(
                "Invalid input: secondary source version refers to unknown source "
                f"identifier: {version['sourceIdentifier']}"
            )
    _unique((v["sourceIdentifier"] for v in versions), "secondary source version identifier")


def check_source(source: Mapping[str, Any]) -> None:
    kind = source["type"]
    location = source.get("location")
    if kind in SOURCE_TYPES_WITH_LOCATION and not location:
        raise invalid("Project source location is required")
    if kind == "NO_SOURCE":
        if not (source.get("buildspec") or "").strip():
            raise invalid(
                "Invalid input: a buildspec is required when the source type is NO_SOURCE"
            )
        if location:
            raise invalid("Invalid input: location must be empty when the source type is NO_SOURCE")
    if kind == "S3":
        bucket, key = split_location(location or "")
        if not bucket or not key:
            raise invalid(
                f"Invalid input: S3 source location must be <bucket-name>/<object-key>, "
                f"got {location!r}"
            )
    if kind in GIT_SOURCE_TYPES:
        if not _URL.fullmatch(location or ""):
            raise invalid(
                f"Invalid input: {kind} source location must be the repository's HTTPS clone "
                f"URL, got {location!r}"
            )
        if kind == "CODECOMMIT" and "/v1/repos/" not in (location or ""):
            raise invalid(
                "Invalid input: CODECOMMIT source location must be the repository's HTTPS "
                f"clone URL (https://<host>/v1/repos/<repository-name>), got {location!r}"
            )
    if source.get("reportBuildStatus") and kind not in STATUS_REPORTING_SOURCE_TYPES:
        raise invalid(
            "Invalid input: reportBuildStatus is only valid for GitHub, GitHub Enterprise, "
            f"GitLab, GitLab Self Managed and Bitbucket sources, not {kind}"
        )
    auth = source.get("auth") or {}
    if auth.get("type") in {"CODECONNECTIONS", "SECRETS_MANAGER"} and not auth.get("resource"):
        raise invalid(
            f"Invalid input: source auth of type {auth['type']} needs the connection or "
            "secret ARN as its resource"
        )
    if source.get("gitSubmodulesConfig") is not None and kind not in GIT_SOURCE_TYPES:
        raise invalid(f"Invalid input: gitSubmodulesConfig is not valid for source type {kind}")


def check_artifacts(document: Mapping[str, Any]) -> None:
    artifacts = document.get("artifacts")
    if not artifacts:
        raise invalid("Invalid input: project artifacts are required")
    check_artifact(artifacts)
    secondary = document.get("secondaryArtifacts") or []
    if len(secondary) > MAX_SECONDARY_ARTIFACTS:
        raise invalid(
            f"Invalid input: a project can have at most {MAX_SECONDARY_ARTIFACTS} secondary "
            f"artifacts, got {len(secondary)}"
        )
    for each in secondary:
        check_identifier(each.get("artifactIdentifier"))
        check_artifact(each)
    _unique((each["artifactIdentifier"] for each in secondary), "artifact identifier")


def check_artifact(artifacts: Mapping[str, Any]) -> None:
    kind = artifacts["type"]
    if kind == "NO_ARTIFACTS":
        # AWS's own wording for these two.
        if artifacts.get("location"):
            raise invalid("Invalid artifacts: artifact type NO_ARTIFACTS should have null location")
        if artifacts.get("name"):
            raise invalid(
                "Invalid artifacts: artifact type NO_ARTIFACTS should have null output name"
            )
    if kind == "S3":
        location = artifacts.get("location")
        if not location:
            raise invalid("Invalid input: artifacts location is required when the type is S3")
        if "/" in location.strip("/") and not location.startswith("arn:aws:s3:::"):
            raise invalid(
                "Invalid input: S3 artifacts location must be a bucket name (use path for "
                f"a prefix), got {location!r}"
            )


def check_codepipeline_pairing(document: Mapping[str, Any]) -> None:
    source_pipeline = document["source"]["type"] == "CODEPIPELINE"
    artifacts_pipeline = document["artifacts"]["type"] == "CODEPIPELINE"
    if source_pipeline != artifacts_pipeline:
        raise invalid(
            "Invalid input: when using CodePipeline both sourceType, and artifactType must "
            "be set to: CODEPIPELINE"
        )


def check_environment(environment: Mapping[str, Any]) -> None:
    if not environment:
        raise invalid("Invalid input: project environment is required")
    kind, compute = environment["type"], environment["computeType"]
    lambda_compute = compute.startswith("BUILD_LAMBDA_")
    if kind in LAMBDA_ENVIRONMENT_TYPES and not lambda_compute:
        raise invalid(
            f"Invalid input: environment type {kind} requires a BUILD_LAMBDA_* compute type, "
            f"got {compute}"
        )
    if lambda_compute and kind not in LAMBDA_ENVIRONMENT_TYPES:
        raise invalid(
            f"Invalid input: compute type {compute} requires environment type "
            f"LINUX_LAMBDA_CONTAINER or ARM_LAMBDA_CONTAINER, got {kind}"
        )
    if kind in LAMBDA_ENVIRONMENT_TYPES and environment.get("privilegedMode"):
        raise invalid(f"Invalid input: privilegedMode is not supported for environment type {kind}")
    if compute == "ATTRIBUTE_BASED_COMPUTE" and not (
        environment.get("computeConfiguration") or environment.get("fleet")
    ):
        raise invalid(
            "Invalid input: compute type ATTRIBUTE_BASED_COMPUTE requires computeConfiguration"
        )
    for variable in environment.get("environmentVariables") or []:
        if variable["name"].upper().startswith(RESERVED_VARIABLE_PREFIX):
            # AWS's wording; the prefix belongs to the variables every build gets.
            raise invalid(
                f"No user environment variables can start with {RESERVED_VARIABLE_PREFIX}"
            )
        kind_of_value = variable.get("type", "PLAINTEXT")
        if kind_of_value != "PLAINTEXT" and not variable["value"]:
            raise invalid(
                f"Invalid input: environment variable {variable['name']} of type "
                f"{kind_of_value} needs the parameter or secret name as its value"
            )
    credential = environment.get("registryCredential")
    if credential is not None and environment.get("imagePullCredentialsType") != "SERVICE_ROLE":
        raise invalid(
            "Invalid input: registryCredential requires imagePullCredentialsType SERVICE_ROLE"
        )


def check_cache(cache: Mapping[str, Any]) -> None:
    kind = cache.get("type")
    if kind == "S3" and not cache.get("location"):
        raise invalid("Invalid input: cache location is required when the cache type is S3")
    if kind == "LOCAL" and not cache.get("modes"):
        raise invalid("Invalid input: cache modes are required when the cache type is LOCAL")
    if kind != "LOCAL" and cache.get("modes"):
        raise invalid(f"Invalid input: cache modes are only valid for cache type LOCAL, not {kind}")


def check_logs(logs: Mapping[str, Any]) -> None:
    s3_logs = logs.get("s3Logs") or {}
    if s3_logs.get("status") == "ENABLED" and not s3_logs.get("location"):
        raise invalid("Invalid input: S3 logs location is required when S3 logs are enabled")
    if s3_logs.get("location"):
        bucket, _ = split_location(s3_logs["location"])
        if not bucket:
            raise invalid(
                f"Invalid input: S3 logs location {s3_logs['location']!r} names no bucket"
            )


def check_limits(document: Mapping[str, Any]) -> None:
    limit = document.get("concurrentBuildLimit")
    if limit is not None:
        if limit < 1:
            raise invalid(f"Invalid input: concurrentBuildLimit must be at least 1, got {limit}")
        if limit > ACCOUNT_CONCURRENT_BUILD_LIMIT:
            raise invalid(
                "Project-level concurrent build limit cannot exceed the account-level "
                f"concurrent build limit of {ACCOUNT_CONCURRENT_BUILD_LIMIT}."
            )
    retries = document.get("autoRetryLimit")
    if retries is not None and not 0 <= retries <= MAX_AUTO_RETRY_LIMIT:
        raise invalid(
            f"Invalid input: autoRetryLimit must be between 0 and {MAX_AUTO_RETRY_LIMIT}, "
            f"got {retries}"
        )


def check_service_role(role: str | None) -> None:
    if role is None:
        raise invalid("Invalid input: serviceRole is required")
    pattern = _ROLE_ARN if role.startswith("arn:") else _ROLE_NAME
    if not pattern.fullmatch(role):
        raise invalid(f"Invalid service role: {role!r} is not an IAM role name or role ARN")


def check_vpc(vpc: Mapping[str, Any] | None) -> None:
    if not vpc:
        return
    if vpc.get("vpcId") and not (vpc.get("subnets") and vpc.get("securityGroupIds")):
        raise invalid("Invalid vpc config: subnets and securityGroupIds are required with a vpcId")
    if not vpc.get("vpcId") and (vpc.get("subnets") or vpc.get("securityGroupIds")):
        raise invalid("Invalid vpc config: vpcId is required with subnets or securityGroupIds")


def check_file_systems(locations: list[Mapping[str, Any]]) -> None:
    for location in locations:
        check_identifier(location.get("identifier"))
        if not location.get("location") or not location.get("mountPoint"):
            raise invalid("Invalid input: a file system location needs location and mountPoint")
    _unique((each["identifier"] for each in locations), "file system identifier")


def check_batch(batch: Mapping[str, Any] | None) -> None:
    if batch is None:
        return
    timeout = batch.get("timeoutInMins")
    if timeout is not None and not 5 <= timeout <= DEFAULT_BATCH_TIMEOUT_MINUTES:
        raise invalid(
            "Invalid input: buildBatchConfig timeoutInMins must be between 5 and "
            f"{DEFAULT_BATCH_TIMEOUT_MINUTES}, got {timeout}"
        )
    maximum = (batch.get("restrictions") or {}).get("maximumBuildsAllowed")
    if maximum is not None and maximum < 1:
        raise invalid(f"Invalid input: maximumBuildsAllowed must be at least 1, got {maximum}")


def check_tags(tags: list[Mapping[str, Any]]) -> None:
    mapping: dict[str, str] = {}
    for tag in tags:
        key = tag.get("key")
        if not key:
            raise invalid("Invalid input: every tag needs a key")
        if key in mapping:
            raise invalid(f"Invalid input: duplicate tag key: {key}")
        mapping[key] = tag.get("value") or ""
    tagging.validate_tags(mapping, TAG_ERRORS)
