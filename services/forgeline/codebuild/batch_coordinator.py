"""Batch builds, the stateful part: starting a batch, advancing it as its builds finish,
stopping, retrying and deleting it. Its BuildBatch shape is batch_output.py's (re-exported
here for the handlers).

A batch is a `build_batches` row. Its build groups' states are derived from the builds
themselves (the `builds` rows are the truth), so advancing is level-triggered: whoever
advances a batch (StartBuildBatch, a finished build through `BUILD_FINISHED_LISTENERS`,
StopBuildBatch, RetryBuildBatch) reads the builds, asks `batches.plan_next` what to do
and does it, in one transaction holding the batch row's lock.

DOWNLOAD_BATCHSPEC runs inside StartBuildBatch: the source is fetched into a scratch
directory only to read the buildspec's `batch:` section, and the batch's builds then
all build the commit it resolved to. For Forgeline's own repositories this is a local
checkout; a batchspec that cannot be read fails the batch in that phase, as on AWS.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from forgeline.codebuild import batch_artifacts, batches, builds, privileges, projects
from forgeline.codebuild.artifacts import ArtifactError
from forgeline.codebuild.batch_output import COMBINED_ARTIFACTS
from forgeline.codebuild.batch_output import batch_output as batch_output  # the API's shape
from forgeline.codebuild.buildspec import BuildspecError, parse_buildspec
from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.phases import PhaseContext, PhaseRecord, phase_from_json, phase_to_json
from forgeline.codebuild.project_document import DEFAULT_BATCH_TIMEOUT_MINUTES, check_batch
from forgeline.codebuild.safepaths import WorkspaceError
from forgeline.codebuild.sources import fetch_source
from forgeline.codebuild.tables.batches import BuildBatch
from forgeline.codebuild.tables.builds import Build
from forgeline.codebuild.tables.projects import BuildProject
from forgeline.core.blobstore import get_blob_store
from forgeline.core.context import RequestContext
from forgeline.core.db import get_sessionmaker, is_postgres, on_commit, pending_on_commit, utcnow
from forgeline.core.events.stream import PUBLISH_LOCK_KEY
from forgeline.core.settings import Settings, builds_root, get_settings

logger = logging.getLogger(__name__)

BATCH_IDENTIFIER_VARIABLE = "CODEBUILD_BATCH_BUILD_IDENTIFIER"
SUBMITTED = "SUBMITTED"
DOWNLOAD_BATCHSPEC = "DOWNLOAD_BATCHSPEC"
IN_PROGRESS = "IN_PROGRESS"
COMBINE_ARTIFACTS = "COMBINE_ARTIFACTS"
# Members of the batch document Forgeline keeps for itself (BatchGetBuildBatches shows
# `artifacts` from the second): when the current run started, and the combined artifact.
_RUN_START = "runStartTime"
_COMBINED = COMBINED_ARTIFACTS
DEFAULT_COMPUTE_TYPE = "BUILD_GENERAL1_SMALL"
_DEFERRED_STOPS = "forgeline.batch_deferred_stops"

# StartBuildBatch members that mean the same in StartBuild: every build of the batch gets them.
_PASSED_TO_BUILDS = (
    "secondarySourcesOverride",
    "secondarySourcesVersionOverride",
    "artifactsOverride",
    "secondaryArtifactsOverride",
    "sourceTypeOverride",
    "sourceLocationOverride",
    "sourceAuthOverride",
    "gitCloneDepthOverride",
    "gitSubmodulesConfigOverride",
    "buildspecOverride",
    "insecureSslOverride",
    "environmentTypeOverride",
    "imageOverride",
    "computeTypeOverride",
    "certificateOverride",
    "cacheOverride",
    "serviceRoleOverride",
    "privilegedModeOverride",
    "queuedTimeoutInMinutesOverride",
    "encryptionKeyOverride",
    "logsConfigOverride",
    "registryCredentialOverride",
    "imagePullCredentialsTypeOverride",
    "debugSessionEnabled",
)

# Batches being advanced by this thread: stopping a queued build finishes it at once, and
# its listener call must not advance the batch again from inside the first advance.
_advancing = threading.local()


# -- phases ---------------------------------------------------------------------------
# Batch phases are phase records like a build's, kept in the row with the same codec.
def _records(batch: BuildBatch) -> list[PhaseRecord]:
    return [phase_from_json(data) for data in batch.phases]


def _set_phases(batch: BuildBatch, records: list[PhaseRecord]) -> None:
    # A new list: JSON columns only notice reassignment.
    batch.phases = [phase_to_json(record) for record in records]
    batch.current_phase = records[-1].phase_type


# -- starting -------------------------------------------------------------------------
def _batch_config(
    project: shapes.Project, params: shapes.StartBuildBatchInput
) -> shapes.ProjectBuildBatchConfig:
    override = params.get("buildBatchConfigOverride")
    config = override or project.get("buildBatchConfig")
    if not config:
        raise errors.InvalidInputException(
            f"Batch builds are not enabled for project {project['name']}: give the project a "
            "buildBatchConfig (or pass buildBatchConfigOverride)."
        )
    config = copy.deepcopy(config)
    if override:
        # An override is checked and completed as a project's configuration is.
        check_batch(config)
        config.setdefault("timeoutInMins", DEFAULT_BATCH_TIMEOUT_MINUTES)
        config.setdefault("combineArtifacts", False)
    return config


def _next_batch_number(session: Session, project: BuildProject) -> int:
    # Locking the project row serializes concurrent starts of the same project.
    session.execute(select(BuildProject.id).where(BuildProject.id == project.id).with_for_update())
    highest = session.scalar(
        select(func.max(BuildBatch.batch_number)).where(
            BuildBatch.account_id == project.account_id,
            BuildBatch.region == project.region,
            BuildBatch.project_name == project.name,
        )
    )
    return int(highest or 0) + 1


def _build_request(params: Mapping[str, Any]) -> dict[str, Any]:
    """StartBuildBatch's members in StartBuild's terms (for builds.resolve_request)."""
    request = {key: params[key] for key in _PASSED_TO_BUILDS if key in params}
    if "buildTimeoutInMinutesOverride" in params:
        request["timeoutInMinutesOverride"] = params["buildTimeoutInMinutesOverride"]
    if "environmentVariablesOverride" in params:
        request["environmentVariablesOverride"] = params["environmentVariablesOverride"]
    if "sourceVersion" in params:
        request["sourceVersion"] = params["sourceVersion"]
    return request


def _start_build_request(members: Mapping[str, Any]) -> shapes.StartBuildInput:
    """A StartBuild request for the batch's builds, from the members the batch keeps (JSON)."""
    # _build_request took them by name from StartBuildBatch, whose members of these names
    # have StartBuild's shapes; the batch keeps them as they came.
    return cast(shapes.StartBuildInput, dict(members))


def start_batch(
    session: Session,
    ctx: RequestContext,
    params: shapes.StartBuildBatchInput,
    *,
    initiator: str | None = None,
) -> BuildBatch:
    """Create a batch, read its batchspec and start the builds that can start."""
    project = projects.get_project(session, ctx.account_id, ctx.region, params["projectName"])
    project_document = projects.project_output(project)
    config = _batch_config(project_document, params)
    request = _build_request(params)
    document = builds.resolve_request(
        project_document, _start_build_request({**request, "projectName": project.name})
    )
    privileges.check_environment(ctx.account_id, document.get("environment"))
    document["buildBatchConfig"] = config
    now = utcnow()
    document[_RUN_START] = now.isoformat()
    batch_uuid = str(uuid.uuid4())
    batch_id = f"{project.name}:{batch_uuid}"
    batch = BuildBatch(
        id=batch_id,
        account_id=ctx.account_id,
        region=ctx.region,
        project_name=project.name,
        arn=ctx.arn("codebuild", f"build-batch/{batch_id}"),
        batch_number=_next_batch_number(session, project),
        status=IN_PROGRESS,
        complete=False,
        fast_fail=False,
        stop_requested=False,
        request={**request, "principalArn": ctx.principal_arn},
        document=document,
        groups=[],
        initiator=initiator or builds.initiator_of(ctx),
        start_time=now,
    )
    _set_phases(
        batch,
        [
            PhaseRecord(SUBMITTED, now).finish("SUCCEEDED", now),
            PhaseRecord(DOWNLOAD_BATCHSPEC, now),
        ],
    )
    session.add(batch)
    session.flush()
    _download_batchspec(session, batch)
    watch_timeouts(get_settings())
    return batch


def _download_batchspec(session: Session, batch: BuildBatch) -> None:
    """DOWNLOAD_BATCHSPEC: read the batch section, then start the batch or fail it."""
    document = batch.document
    try:
        spec, resolved = _read_batchspec(batch)
        environment = document.get("environment") or {}
        restrictions = (document.get("buildBatchConfig") or {}).get("restrictions")
        batches.check_restrictions(
            spec, restrictions, environment.get("computeType") or DEFAULT_COMPUTE_TYPE
        )
    except batches.BatchspecError as exc:
        _fail_download(batch, "CLIENT_ERROR", exc.message)
        return
    except BuildspecError as exc:
        where = f" at line {exc.line}" if exc.line else ""
        _fail_download(batch, "YAML_FILE_ERROR", f"{exc.message}{where}")
        return
    except WorkspaceError as exc:
        _fail_download(batch, exc.code, exc.message)
        return
    groups = [_group_of(task) for task in spec.tasks]
    _check_privileges(batch, groups)
    now = utcnow()
    batch.resolved_source_version = resolved
    batch.fast_fail = spec.fast_fail
    batch.groups = groups
    records = _records(batch)
    _set_phases(
        batch,
        [*records[:-1], records[-1].finish("SUCCEEDED", now), PhaseRecord(IN_PROGRESS, now)],
    )
    session.flush()
    advance(session, batch)


def _read_batchspec(batch: BuildBatch) -> tuple[batches.Batchspec, str | None]:
    settings = get_settings()
    document = batch.document
    scratch_root = builds_root(settings)
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="batchspec-", dir=scratch_root) as scratch:
        fetched = fetch_source(
            settings,
            batch.account_id,
            batch.region,
            # Only the buildspec is read here: one commit of history is enough.
            dict(document.get("source") or {"type": "NO_SOURCE"}, gitCloneDepth=1),
            document.get("sourceVersion"),
            Path(scratch) / "src",
        )
    if fetched.buildspec_text is None:
        path = fetched.buildspec_path or "buildspec.yml"
        raise batches.BatchspecError(f"The buildspec {path} was not found in the source.")
    spec = batches.parse_batchspec(parse_buildspec(fetched.buildspec_text).batch)
    return spec, fetched.resolved_version


def _check_privileges(batch: BuildBatch, groups: list[dict[str, Any]]) -> None:
    """InvalidInputException unless the operator allows every privileged build the batch
    asks for: its environment's, and each entry's `privileged-mode`."""
    privileges.check_environment(batch.account_id, batch.document.get("environment"))
    for group in groups:
        privileged = bool(group["overrides"].get("privilegedModeOverride"))
        privileges.check(batch.account_id, privileged)


def _fail_download(batch: BuildBatch, code: str, message: str) -> None:
    now = utcnow()
    records = _records(batch)
    failed = records[-1].finish("FAILED", now, (PhaseContext(code, message),))
    _finish(batch, batches.FAILED, now, [*records[:-1], failed])


def _group_of(task: batches.BatchTask) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if task.buildspec is not None:
        overrides["buildspecOverride"] = task.buildspec
    if task.env.image is not None:
        overrides["imageOverride"] = task.env.image
    if task.env.compute_type is not None:
        overrides["computeTypeOverride"] = task.env.compute_type
    if task.env.environment_type is not None:
        overrides["environmentTypeOverride"] = task.env.environment_type
    if task.env.privileged_mode is not None:
        overrides["privilegedModeOverride"] = task.env.privileged_mode
    if task.debug_session is not None:
        overrides["debugSessionEnabled"] = task.debug_session
    return {
        "identifier": task.identifier,
        "dependsOn": list(task.depends_on),
        "ignoreFailure": task.ignore_failure,
        "variables": dict(task.env.variables),
        "overrides": overrides,
        "status": batches.PENDING,
        "buildId": None,
        "priorBuildIds": [],
    }


# -- advancing ------------------------------------------------------------------------
def _in_progress() -> set[str]:
    current: set[str] | None = getattr(_advancing, "ids", None)
    if current is None:
        current = set()
        _advancing.ids = current
    return current


def _sync_groups(session: Session, batch: BuildBatch) -> list[dict[str, Any]]:
    """The groups with each started build's status read from its row."""
    groups = copy.deepcopy(batch.groups)
    for group in groups:
        if group["status"] == batches.IN_PROGRESS and group["buildId"]:
            build = session.get(Build, group["buildId"])
            if build is None:
                group["status"] = "FAULT"  # deleted under the batch
            elif build.build_complete:
                group["status"] = build.build_status
    return groups


def _context_of(batch: BuildBatch) -> RequestContext:
    return RequestContext(
        account_id=batch.account_id,
        region=batch.region,
        principal_arn=batch.request.get("principalArn") or "",
        access_key_id=None,
        service="codebuild",
        operation="StartBuildBatch",
    )


def _start_group(session: Session, batch: BuildBatch, group: dict[str, Any]) -> Build:
    request = {k: v for k, v in batch.request.items() if k != "principalArn"}
    params: dict[str, Any] = {**request, "projectName": batch.project_name, **group["overrides"]}
    if batch.resolved_source_version:
        # Every build of the batch builds the commit the batchspec was read from.
        params["sourceVersion"] = batch.resolved_source_version
    variables = {v["name"]: v for v in request.get("environmentVariablesOverride") or []}
    for name, value in group["variables"].items():
        variables[name] = {"name": name, "value": value, "type": "PLAINTEXT"}
    variables[BATCH_IDENTIFIER_VARIABLE] = {
        "name": BATCH_IDENTIFIER_VARIABLE,
        "value": group["identifier"],
        "type": "PLAINTEXT",
    }
    params["environmentVariablesOverride"] = list(variables.values())
    return builds.queue_build(
        session,
        _context_of(batch),
        _start_build_request(params),
        initiator=batch.initiator,
        batch_id=batch.id,
    )


def advance(session: Session, batch: BuildBatch) -> None:
    """Start, stop or skip builds as the batch's state asks, and finish it when all ended."""
    busy = _in_progress()
    if batch.complete or batch.id in busy or not batch.groups:
        return
    busy.add(batch.id)
    try:
        _advance(session, batch)
    finally:
        busy.discard(batch.id)


def _advance(session: Session, batch: BuildBatch) -> None:
    asked_to_stop: set[str] = set()
    # Each round either starts, skips or stops something or ends the loop; a group
    # changes state at most three times, so this bound is never the reason to stop.
    for _ in range(3 * len(batch.groups) + 2):
        groups = _sync_groups(session, batch)
        step = batches.plan_next(
            [
                batches.GroupState(
                    g["identifier"], g["status"], tuple(g["dependsOn"]), g["ignoreFailure"]
                )
                for g in groups
            ],
            fast_fail=batch.fast_fail,
            stop_requested=batch.stop_requested,
            timed_out=timed_out(batch, utcnow()),
        )
        by_id = {g["identifier"]: g for g in groups}
        for identifier in step.skip:
            by_id[identifier]["status"] = batches.SKIPPED
        for identifier in step.start:
            started = _start_group(session, batch, by_id[identifier])
            by_id[identifier].update(status=batches.IN_PROGRESS, buildId=started.id)
        batch.groups = groups
        session.flush()
        to_stop = [i for i in step.stop if i not in asked_to_stop]
        for identifier in to_stop:
            asked_to_stop.add(identifier)
            _stop_build(session, by_id[identifier]["buildId"])
        if step.batch_status is not None:
            _finish_run(session, batch, step.batch_status)
            return
        if not (step.start or step.skip or to_stop):
            return


def _stop_build(session: Session, build_id: str) -> None:
    """Ask a build of the batch to stop, now or, if its row is busy, right after commit.

    A worker finishing a build holds that build's row (and, on Postgres, the event
    publishing lock) while it advances the batch; the build to stop may meanwhile be
    waiting for one of those in its own transaction. Waiting for its row here could
    deadlock, so a busy row is stopped after this transaction commits, when this one
    holds nothing.
    """
    statement = select(Build).where(Build.id == build_id).with_for_update(skip_locked=True)
    row = session.scalars(statement).first()
    if row is not None:
        builds.request_stop(session, row)
        return
    stops = pending_on_commit(session, _DEFERRED_STOPS)
    if not isinstance(stops, _DeferredStops):
        stops = _DeferredStops()
        on_commit(session, stops, key=_DEFERRED_STOPS)
    stops.build_ids.append(build_id)


class _DeferredStops:
    """Builds of a batch to stop once the transaction that decided it has committed."""

    def __init__(self) -> None:
        self.build_ids: list[str] = []

    def __call__(self) -> None:
        try:
            sessions = get_sessionmaker(get_settings().resolved_database_url)
            with sessions.begin() as fresh:
                for build_id in self.build_ids:
                    row = fresh.get(Build, build_id, with_for_update=True)
                    if row is not None:
                        builds.request_stop(fresh, row)
        except Exception:
            # The batch still wants them stopped: its next advance asks again.
            logger.exception("could not stop builds %s of a batch", ", ".join(self.build_ids))


def _finish_run(session: Session, batch: BuildBatch, status: str) -> None:
    now = utcnow()
    phases = _records(batch)
    contexts: tuple[PhaseContext, ...] = ()
    if status == batches.TIMED_OUT:
        minutes = _timeout_minutes(batch)
        contexts = (
            PhaseContext("BUILD_TIMED_OUT", f"Batch build has timed out after {minutes} minutes."),
        )
    if phases and phases[-1].phase_type == IN_PROGRESS and phases[-1].end_time is None:
        phases[-1] = phases[-1].finish(status, now, contexts)
    document = batch.document
    if status in (batches.SUCCEEDED, batches.FAILED) and batch_artifacts.combines(
        document.get("artifacts") or {}, document.get("buildBatchConfig") or {}
    ):
        # The builds ran to their end (not stopped, not timed out): gather what they built.
        combined, phase = _combine_artifacts(session, batch, PhaseRecord(COMBINE_ARTIFACTS, now))
        phases.append(phase)
        if combined is None:
            status = batches.FAILED
        now = utcnow()
    _finish(batch, status, now, phases)


def _combine_artifacts(
    session: Session, batch: BuildBatch, phase: PhaseRecord
) -> tuple[dict[str, Any] | None, PhaseRecord]:
    """COMBINE_ARTIFACTS: (the combined BuildArtifacts or None on failure, the closed phase)."""
    built = []
    for group in batch.groups:
        build = session.get(Build, group["buildId"]) if group["buildId"] else None
        if build is None or build.build_status != batches.SUCCEEDED:
            continue  # a failed build's upload may be partial or missing
        location = (build.results.get("artifacts") or {}).get("location")
        if location:
            built.append(batch_artifacts.BuiltArtifact(group["identifier"], location))
    document = batch.document
    try:
        stored = batch_artifacts.combine_artifacts(
            get_blob_store(get_settings()), document["artifacts"], batch.id, built
        )
    except ArtifactError as exc:
        return None, phase.finish("FAILED", utcnow(), (PhaseContext(exc.code, exc.message),))
    combined = stored.as_build_artifacts()
    batch.document = {**document, _COMBINED: combined}
    return combined, phase.finish("SUCCEEDED", utcnow())


# The outcome phase is named after the batch status; BuildBatchPhaseType has no TIMED_OUT
# (nor FAULT), so those batches end in a FAILED phase.
_OUTCOME_PHASES = {batches.TIMED_OUT: batches.FAILED, "FAULT": batches.FAILED}


def _finish(batch: BuildBatch, status: str, at: dt.datetime, phases: list[PhaseRecord]) -> None:
    # AWS ends the phase list with a phase named after the outcome, without a status.
    outcome = _OUTCOME_PHASES.get(status, status)
    _set_phases(batch, [*phases, PhaseRecord(outcome, at, phase_status=None)])
    batch.status = status
    batch.complete = True
    batch.end_time = at


def on_build_finished(session: Session, build: Build) -> None:
    """Listener: a build of a batch ended; move its batch on."""
    if not build.batch_id:
        return
    batch = session.get(BuildBatch, build.batch_id, with_for_update=True)
    if batch is None:
        return
    advance(session, batch)
    if not batch.complete:
        watch_timeouts(get_settings())  # this process may not have watched it yet


# -- batch timeout ----------------------------------------------------------------------
# How often the watcher looks for batches past their timeout, in "minutes" of
# build_minute_seconds, within these bounds in seconds.
_WATCH_FRACTION_OF_MINUTE = 0.25
_WATCH_BOUNDS = (0.25, 15.0)


def _timeout_minutes(batch: BuildBatch) -> int:
    config = batch.document.get("buildBatchConfig") or {}
    return int(config.get("timeoutInMins") or DEFAULT_BATCH_TIMEOUT_MINUTES)


def deadline_of(batch: BuildBatch, minute_seconds: float) -> dt.datetime:
    """When the current run of the batch times out (buildBatchConfig/timeoutInMins)."""
    started = batch.document.get(_RUN_START)
    run_start = dt.datetime.fromisoformat(started) if started else batch.start_time
    return run_start + dt.timedelta(seconds=_timeout_minutes(batch) * minute_seconds)


def timed_out(batch: BuildBatch, now: dt.datetime) -> bool:
    return not batch.complete and now >= deadline_of(batch, get_settings().build_minute_seconds)


def expire_batches(settings: Settings, now: dt.datetime | None = None) -> int:
    """Advance every running batch past its timeout (it stops its builds and ends
    TIMED_OUT once they ended); returns how many were found."""
    now = now or utcnow()
    sessions = get_sessionmaker(settings.resolved_database_url)
    with sessions() as session:
        running = session.scalars(select(BuildBatch).where(BuildBatch.complete.is_(False))).all()
        expired = [b.id for b in running if now >= deadline_of(b, settings.build_minute_seconds)]
    for batch_id in expired:
        with sessions.begin() as session:
            batch = session.get(BuildBatch, batch_id)
            if batch is None:
                continue
            lock_batch(session, batch)
            advance(session, batch)
    return len(expired)


_watchers: set[str] = set()
_watchers_lock = threading.Lock()


def watch_timeouts(settings: Settings) -> None:
    """Enforce batch timeouts from this process, in a daemon thread (started once).

    Nothing else wakes a batch whose builds all run longer than its timeout, so a
    process that starts or advances batches keeps an eye on the clock for them.
    """
    key = settings.resolved_database_url
    with _watchers_lock:
        if key in _watchers:
            return
        _watchers.add(key)
    interval = min(
        max(settings.build_minute_seconds * _WATCH_FRACTION_OF_MINUTE, _WATCH_BOUNDS[0]),
        _WATCH_BOUNDS[1],
    )
    threading.Thread(
        target=_watch, args=(settings, interval), name="batch-timeouts", daemon=True
    ).start()


def _watch(settings: Settings, interval: float) -> None:
    while True:
        time.sleep(interval)
        try:
            expire_batches(settings)
        except Exception:
            logger.warning("could not check batch builds for timeouts", exc_info=True)


# -- stop, retry, delete --------------------------------------------------------------
def stop_batch(session: Session, batch: BuildBatch) -> None:
    if batch.complete:
        return
    batch.stop_requested = True
    session.flush()
    advance(session, batch)


RETRYABLE_STATUSES = ("FAILED", "FAULT", "TIMED_OUT", "STOPPED")


def retry_batch(session: Session, batch: BuildBatch, retry_type: str) -> None:
    """RETRY_ALL_BUILDS runs every group again; RETRY_FAILED_BUILDS those that did not succeed."""
    if not batch.complete or batch.status not in RETRYABLE_STATUSES:
        raise errors.InvalidInputException(
            f"Build batch {batch.id} is {batch.status if batch.complete else 'still running'}; "
            "only a batch that ended without succeeding can be retried."
        )
    # The operator may have withdrawn the permission since the batch first ran.
    _check_privileges(batch, batch.groups)
    now = utcnow()
    batch.stop_requested = False
    batch.complete = False
    batch.status = IN_PROGRESS
    batch.end_time = None
    # A retry is a new run: its own batch timeout, and artifacts combined afresh.
    document = {k: v for k, v in batch.document.items() if k != _COMBINED}
    batch.document = {**document, _RUN_START: now.isoformat()}
    phases = _records(batch)[:-1]  # without the outcome phase
    if not batch.groups:
        # The batchspec could not be read: read it again.
        _set_phases(batch, [*phases, PhaseRecord(DOWNLOAD_BATCHSPEC, now)])
        session.flush()
        _download_batchspec(session, batch)
        watch_timeouts(get_settings())
        return
    groups = copy.deepcopy(batch.groups)
    for group in groups:
        if retry_type == "RETRY_ALL_BUILDS" or group["status"] != batches.SUCCEEDED:
            if group["buildId"]:
                group["priorBuildIds"] = [*group["priorBuildIds"], group["buildId"]]
            group.update(status=batches.PENDING, buildId=None)
    batch.groups = groups
    _set_phases(batch, [*phases, PhaseRecord(IN_PROGRESS, now)])
    session.flush()
    advance(session, batch)
    watch_timeouts(get_settings())


def delete_batch(session: Session, batch: BuildBatch) -> shapes.DeleteBuildBatchOutput:
    """Delete a finished batch and its builds; DeleteBuildBatch's output."""
    if not batch.complete:
        raise errors.InvalidInputException(
            f"Build batch {batch.id} is still running; stop it before deleting it."
        )
    rows = session.scalars(select(Build).where(Build.batch_id == batch.id)).all()
    deleted: list[str] = []
    not_deleted: list[shapes.BuildNotDeleted] = []
    for row in rows:
        if row.build_complete:
            deleted.append(row.id)
            session.delete(row)
        else:
            not_deleted.append({"id": row.id, "statusCode": "BUILD_IN_PROGRESS"})
    session.delete(batch)
    output: shapes.DeleteBuildBatchOutput = {
        "buildsDeleted": deleted,
        "buildsNotDeleted": not_deleted,
    }
    if not deleted:
        del output["buildsDeleted"]  # the model wants at least one id when present
    return output


# -- reading --------------------------------------------------------------------------
def find_batches(
    session: Session, account_id: str, region: str, ids: list[str]
) -> dict[str, BuildBatch]:
    """Batches by id or ARN in this account and region."""
    prefix = f"arn:aws:codebuild:{region}:{account_id}:build-batch/"
    wanted = {raw.removeprefix(prefix) for raw in ids}
    if not wanted:
        return {}
    rows = session.scalars(
        select(BuildBatch).where(
            BuildBatch.account_id == account_id,
            BuildBatch.region == region,
            BuildBatch.id.in_(wanted),
        )
    ).all()
    return {row.id: row for row in rows}


def get_batch(
    session: Session, ctx: RequestContext, batch_id: str, *, lock: bool = False
) -> BuildBatch:
    found = find_batches(session, ctx.account_id, ctx.region, [batch_id])
    if not found:
        raise errors.ResourceNotFoundException(f"Build batch {batch_id} does not exist.")
    batch = next(iter(found.values()))
    if lock:
        lock_batch(session, batch)
    return batch


def lock_batch(session: Session, batch: BuildBatch) -> None:
    """Lock a batch to change it from an API call.

    A finishing build takes the event publishing lock (Postgres) and then its batch's
    row; stopping or starting builds here publishes events too. Taking the two in the
    same order keeps an API call and a worker from waiting on each other forever.
    """
    if is_postgres(session):
        session.execute(select(func.pg_advisory_xact_lock(PUBLISH_LOCK_KEY)))
    session.refresh(batch, with_for_update=True)
