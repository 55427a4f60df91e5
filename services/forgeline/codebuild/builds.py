"""Build records: starting a build from a project plus StartBuild's overrides, and showing
it in botocore's Build shape.

The run itself belongs to services/forgeline/codebuild/engine.py; this module only writes the row a
worker later claims, and reads rows back for the API.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from forgeline.codebuild import events as build_events
from forgeline.codebuild import privileges, projects, scheduler_doorbell
from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.phases import (
    COMPLETED,
    IN_PROGRESS,
    QUEUED,
    STOPPED,
    SUBMITTED,
    SUCCEEDED,
    Abandoned,
    BuildFinished,
    BuildState,
    PhaseContext,
    PhaseRecord,
    next_phase,
    phase_from_json,
    phase_to_json,
)
from forgeline.codebuild.tables.builds import Build
from forgeline.codebuild.tables.projects import BuildProject
from forgeline.core.context import RequestContext
from forgeline.core.db import utcnow
from forgeline.core.work.leases import QUEUED as LEASE_QUEUED
from forgeline.core.work.leases import SUCCEEDED as LEASE_DONE

# Called inside the transaction that records a build's final status (batches advance here).
BUILD_FINISHED_LISTENERS: list[Callable[[Session, Build], None]] = []

FINAL_STATUSES = ("SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED")
# A build a worker claimed, then lost, is retried once if it had not started.
BUILD_MAX_ATTEMPTS = 2


def phases_output(stored: Iterable[dict[str, Any]]) -> list[shapes.BuildPhase]:
    return [phase_from_json(data).to_botocore() for data in stored]


# ---------------------------------------------------------------- starting builds


def _merge_variables(
    base: list[shapes.EnvironmentVariable], overrides: list[shapes.EnvironmentVariable]
) -> list[shapes.EnvironmentVariable]:
    """Project variables with StartBuild's overrides replacing same-named ones."""
    merged = {variable["name"]: variable for variable in base}
    for variable in overrides:
        merged[variable["name"]] = variable
    return [
        {"name": v["name"], "value": v.get("value", ""), "type": v.get("type", "PLAINTEXT")}
        for v in merged.values()
    ]


def _check_source_type(source: shapes.ProjectSource) -> None:
    kind = source.get("type")
    if kind not in ("CODECOMMIT", "S3", "NO_SOURCE", "CODEPIPELINE"):
        raise errors.InvalidInputException(
            f"Source type {kind} is not supported by Forgeline; use CODECOMMIT, S3, "
            "NO_SOURCE or CODEPIPELINE."
        )
    if kind == "NO_SOURCE" and not source.get("buildspec"):
        raise errors.InvalidInputException(
            "Invalid source: a NO_SOURCE build needs an inline buildspec."
        )


def _source(project: shapes.Project, params: shapes.StartBuildInput) -> shapes.ProjectSource:
    """The build's primary source: the project's with StartBuild's overrides."""
    source = copy.deepcopy(project.get("source") or shapes.ProjectSource(type="NO_SOURCE"))
    if "sourceTypeOverride" in params:
        source["type"] = params["sourceTypeOverride"]
    if "sourceLocationOverride" in params:
        source["location"] = params["sourceLocationOverride"]
    if "gitCloneDepthOverride" in params:
        source["gitCloneDepth"] = params["gitCloneDepthOverride"]
    if "buildspecOverride" in params:
        source["buildspec"] = params["buildspecOverride"]
    if "insecureSslOverride" in params:
        source["insecureSsl"] = params["insecureSslOverride"]
    _check_source_type(source)
    return source


def _environment(project: shapes.Project, params: shapes.StartBuildInput) -> dict[str, Any]:
    """The build's environment: the project's with StartBuild's overrides, as the build
    document keeps it (JSON; environment_output shows it)."""
    environment: dict[str, Any] = copy.deepcopy(dict(project.get("environment") or {}))
    if "imageOverride" in params:
        environment["image"] = params["imageOverride"]
    if "computeTypeOverride" in params:
        environment["computeType"] = params["computeTypeOverride"]
    if "environmentTypeOverride" in params:
        environment["type"] = params["environmentTypeOverride"]
    if "privilegedModeOverride" in params:
        environment["privilegedMode"] = params["privilegedModeOverride"]
    if "certificateOverride" in params:
        environment["certificate"] = params["certificateOverride"]
    if "imagePullCredentialsTypeOverride" in params:
        environment["imagePullCredentialsType"] = params["imagePullCredentialsTypeOverride"]
    if "registryCredentialOverride" in params:
        environment["registryCredential"] = params["registryCredentialOverride"]
    environment["environmentVariables"] = _merge_variables(
        environment.get("environmentVariables") or [],
        params.get("environmentVariablesOverride") or [],
    )
    return environment


def resolve_request(project: shapes.Project, params: shapes.StartBuildInput) -> dict[str, Any]:
    """The build's document: the project's settings with StartBuild's overrides applied."""
    source = _source(project, params)
    environment = _environment(project, params)
    secondary_sources = copy.deepcopy(
        params.get("secondarySourcesOverride", project.get("secondarySources") or [])
    )
    for secondary in secondary_sources:
        _check_source_type(secondary | {"buildspec": secondary.get("buildspec") or "x"})
    secondary_versions = copy.deepcopy(
        params.get("secondarySourcesVersionOverride", project.get("secondarySourceVersions") or [])
    )
    document: dict[str, Any] = {
        "source": source,
        "sourceVersion": params.get("sourceVersion", project.get("sourceVersion")),
        "secondarySources": secondary_sources,
        "secondarySourceVersions": secondary_versions,
        "environment": environment,
        "artifacts": copy.deepcopy(
            params.get("artifactsOverride", project.get("artifacts") or {"type": "NO_ARTIFACTS"})
        ),
        "secondaryArtifacts": copy.deepcopy(
            params.get("secondaryArtifactsOverride", project.get("secondaryArtifacts") or [])
        ),
        "cache": copy.deepcopy(
            params.get("cacheOverride", project.get("cache") or {"type": "NO_CACHE"})
        ),
        "logsConfig": copy.deepcopy(
            params.get("logsConfigOverride", project.get("logsConfig") or {})
        ),
        "serviceRole": params.get("serviceRoleOverride", project.get("serviceRole")),
        "timeoutInMinutes": params.get(
            "timeoutInMinutesOverride", project.get("timeoutInMinutes", 60)
        ),
        "queuedTimeoutInMinutes": params.get(
            "queuedTimeoutInMinutesOverride", project.get("queuedTimeoutInMinutes", 480)
        ),
        "encryptionKey": params.get("encryptionKeyOverride", project.get("encryptionKey")),
        "debugSession": {"sessionEnabled": bool(params.get("debugSessionEnabled", False))},
    }
    if document["sourceVersion"] is None:
        del document["sourceVersion"]
    return document


def queue_build(
    session: Session,
    ctx: RequestContext,
    params: shapes.StartBuildInput,
    *,
    initiator: str | None = None,
    batch_id: str | None = None,
) -> Build:
    """Insert a queued build of `params["projectName"]`; a worker picks it up after commit."""
    project = projects.find_project(session, ctx.account_id, ctx.region, params["projectName"])
    if project is None:
        raise errors.ResourceNotFoundException(
            f"Project cannot be found: {ctx.arn('codebuild', 'project/' + params['projectName'])}"
        )
    project_document = projects.project_output(project)
    document = resolve_request(project_document, params)
    if batch_id is None:
        # A batch's builds were admitted when the batch started (or was retried).
        privileges.check_environment(ctx.account_id, document.get("environment"))
    return insert_build(
        session,
        ctx,
        project,
        document,
        concurrency_limit=project_document.get("concurrentBuildLimit"),
        initiator=initiator,
        batch_id=batch_id,
    )


def retry_build(session: Session, ctx: RequestContext, original: Build) -> Build:
    """A new build of the same project with the same settings as `original` (RetryBuild)."""
    project = projects.find_project(session, ctx.account_id, ctx.region, original.project_name)
    if project is None:
        raise errors.ResourceNotFoundException(
            f"Project cannot be found: {ctx.arn('codebuild', 'project/' + original.project_name)}"
        )
    privileges.check_environment(ctx.account_id, original.document.get("environment"))
    return insert_build(
        session,
        ctx,
        project,
        copy.deepcopy(original.document),
        concurrency_limit=projects.project_output(project).get("concurrentBuildLimit"),
        batch_id=original.batch_id,
    )


def insert_build(
    session: Session,
    ctx: RequestContext,
    project: BuildProject,
    document: dict[str, Any],
    *,
    concurrency_limit: int | None = None,
    initiator: str | None = None,
    batch_id: str | None = None,
) -> Build:
    number = _next_build_number(session, project)
    build_uuid = str(uuid.uuid4())
    build_id = f"{project.name}:{build_uuid}"
    now = utcnow()
    phases = [
        PhaseRecord(SUBMITTED, start_time=now).finish(SUCCEEDED, now),
        PhaseRecord(QUEUED, start_time=now),
    ]
    build = Build(
        id=build_id,
        uuid=build_uuid,
        account_id=ctx.account_id,
        region=ctx.region,
        project_name=project.name,
        arn=ctx.arn("codebuild", f"build/{build_id}"),
        build_number=number,
        build_status=IN_PROGRESS,
        current_phase=QUEUED,
        build_complete=False,
        phases=[phase_to_json(record) for record in phases],
        document=document,
        results={},
        concurrency_limit=concurrency_limit,
        stop_requested=False,
        initiator=initiator or initiator_of(ctx),
        batch_id=batch_id,
        queued_at=now,
        start_time=now,
        status=LEASE_QUEUED,
        attempts=0,
        max_attempts=BUILD_MAX_ATTEMPTS,
    )
    session.add(build)
    session.flush()
    build_events.publish_state_change(session, build)
    scheduler_doorbell.ring_after_commit(session)
    return build


def _next_build_number(session: Session, project: BuildProject) -> int:
    """Build numbers count up per project; the UPDATE serializes concurrent starts."""
    statement = (
        update(BuildProject)
        .where(BuildProject.id == project.id)
        .values(build_counter=BuildProject.build_counter + 1)
        .returning(BuildProject.build_counter)
    )
    return int(session.execute(statement).scalar_one())


def initiator_of(ctx: RequestContext) -> str:
    """AWS shows the caller's name: the user part of the principal ARN."""
    return ctx.principal_arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1] or ctx.principal_arn


# ---------------------------------------------------------------- reading builds


def is_final(build: Build) -> bool:
    return build.build_complete


def bare_build_id(build_id: str) -> str:
    """A build id, given as "<project>:<uuid>" or as the build's ARN."""
    if build_id.startswith("arn:"):
        _, _, resource = build_id.partition(":build/")
        return resource
    return build_id


# "<project>:<build uuid>", the project part following CreateProject's name pattern.
_BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}:[^:\s]+")


def well_formed_build_id(bare_id: str) -> bool:
    """Whether BARE_ID has a build id's shape; AWS refuses other ids as invalid input."""
    return _BUILD_ID.fullmatch(bare_id) is not None


def find_builds(session: Session, ctx: RequestContext, ids: Iterable[str]) -> dict[str, Build]:
    """This account's and region's builds among `ids` (bare ids), by id."""
    wanted = list(ids)
    rows = session.scalars(
        select(Build).where(
            Build.account_id == ctx.account_id, Build.region == ctx.region, Build.id.in_(wanted)
        )
    ).all()
    return {row.id: row for row in rows}


def build_output(build: Build) -> shapes.Build:
    """The build in botocore's Build shape, as BatchGetBuilds returns it."""
    document = build.document
    results = build.results
    output: shapes.Build = {
        "id": build.id,
        "arn": build.arn,
        "buildNumber": build.build_number,
        "startTime": build.start_time,
        "currentPhase": build.current_phase,
        "buildStatus": build.build_status,
        "projectName": build.project_name,
        "phases": phases_output(build.phases),
        "source": document.get("source", {}),
        "secondarySources": document.get("secondarySources", []),
        "secondarySourceVersions": document.get("secondarySourceVersions", []),
        "artifacts": results.get("artifacts", {"location": ""}),
        "secondaryArtifacts": results.get("secondaryArtifacts", []),
        "cache": document.get("cache", {"type": "NO_CACHE"}),
        "environment": environment_output(document.get("environment", {})),
        "logs": {**(results.get("logs") or _logs_output(build)), "deepLink": _deep_link(build)},
        "timeoutInMinutes": document.get("timeoutInMinutes", 60),
        "queuedTimeoutInMinutes": document.get("queuedTimeoutInMinutes", 480),
        "buildComplete": build.build_complete,
        "exportedEnvironmentVariables": results.get("exportedEnvironmentVariables", []),
        "reportArns": results.get("reportArns", []),
        "debugSession": document.get("debugSession", {"sessionEnabled": False}),
    }
    if build.initiator is not None:
        output["initiator"] = build.initiator
    if document.get("sourceVersion"):
        output["sourceVersion"] = document["sourceVersion"]
    if document.get("serviceRole"):
        output["serviceRole"] = document["serviceRole"]
    if document.get("encryptionKey"):
        output["encryptionKey"] = document["encryptionKey"]
    if results.get("resolvedSourceVersion"):
        output["resolvedSourceVersion"] = results["resolvedSourceVersion"]
    if build.end_time is not None:
        output["endTime"] = build.end_time
    if build.batch_id:
        output["buildBatchArn"] = build.arn.replace(
            f":build/{build.id}", f":build-batch/{build.batch_id}"
        )
    return output


def _deep_link(build: Build) -> str:
    """Build.logs.deepLink: where this server answers with the build's log text."""
    from forgeline.codebuild.log_links import deep_link
    from forgeline.core.lifecycle import server_key
    from forgeline.core.settings import get_settings

    settings = get_settings()
    return deep_link(settings, server_key(settings), build.id, build.uuid)


def environment_output(environment: Mapping[str, Any]) -> shapes.ProjectEnvironment:
    """A build document's environment as botocore's ProjectEnvironment, AWS's defaults
    filled in."""
    # The document keeps the project's environment with StartBuild's overrides: the
    # ProjectEnvironment shape as JSON, some of the members AWS always shows maybe missing.
    shown = cast(shapes.ProjectEnvironment, dict(environment))
    shown.setdefault("type", "LINUX_CONTAINER")
    shown.setdefault("computeType", "BUILD_GENERAL1_SMALL")
    shown.setdefault("image", "")
    shown.setdefault("privilegedMode", False)
    shown.setdefault("imagePullCredentialsType", "CODEBUILD")
    return shown


def log_group_and_stream(build: Build) -> tuple[str, str]:
    config = (build.document.get("logsConfig") or {}).get("cloudWatchLogs") or {}
    group = config.get("groupName") or f"/aws/codebuild/{build.project_name}"
    stream = f"{config['streamName']}/{build.uuid}" if config.get("streamName") else build.uuid
    return group, stream


def logs_enabled(build: Build) -> bool:
    config = (build.document.get("logsConfig") or {}).get("cloudWatchLogs") or {}
    return config.get("status", "ENABLED") == "ENABLED"


def _logs_output(build: Build) -> shapes.LogsLocation:
    group, stream = log_group_and_stream(build)
    return logs_location(
        build.account_id,
        build.region,
        build.document.get("logsConfig") or {},
        (group, stream) if logs_enabled(build) else None,
    )


def logs_location(
    account_id: str,
    region: str,
    logs_config: Mapping[str, Any],
    stream: tuple[str, str] | None,
) -> shapes.LogsLocation:
    """botocore's LogsLocation; `stream` is (group, stream) when the build has a stream."""
    output: shapes.LogsLocation = {
        "cloudWatchLogs": logs_config.get("cloudWatchLogs")
        or shapes.CloudWatchLogsConfig(status="ENABLED"),
        "s3Logs": logs_config.get("s3Logs") or shapes.S3LogsConfig(status="DISABLED"),
    }
    if stream is not None:
        group, name = stream
        output["groupName"] = group
        output["streamName"] = name
        output["cloudWatchLogsArn"] = (
            f"arn:aws:logs:{region}:{account_id}:log-group:{group}:log-stream:{name}"
        )
    return output


# ---------------------------------------------------------------- stopping and finishing


def request_stop(session: Session, build: Build) -> None:
    """Ask for the build to stop: a queued build ends now; a running one within seconds."""
    if build.build_complete:
        return
    build.stop_requested = True
    if build.status == LEASE_QUEUED:
        # Not claimed yet: nothing runs, so the build can end right here.
        end_without_runner(session, build, STOPPED, utcnow())
        build.status = LEASE_DONE


def end_without_runner(
    session: Session,
    build: Build,
    status: str,
    at: dt.datetime,
    context: PhaseContext | None = None,
) -> None:
    """End a build that is not running anywhere: close its open phase (with `context`)
    as `status` and complete the build (the phase machine's Abandoned transition)."""
    state = BuildState(phases=tuple(phase_from_json(data) for data in build.phases))
    contexts = (context,) if context is not None else ()
    state, effects = next_phase(state, Abandoned(at, status, contexts))
    build.phases = [phase_to_json(record) for record in state.phases]
    for effect in effects:
        if isinstance(effect, BuildFinished):
            finish(session, build, effect.build_status, at)


def finish(session: Session, build: Build, build_status: str, at: dt.datetime) -> None:
    """Record the final status, publish it, and tell the listeners (same transaction)."""
    build.build_status = build_status
    build.current_phase = COMPLETED
    build.build_complete = True
    build.end_time = at
    session.flush()
    build_events.publish_state_change(session, build)
    for listener in list(BUILD_FINISHED_LISTENERS):
        listener(session, build)
