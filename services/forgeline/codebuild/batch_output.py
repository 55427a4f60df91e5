"""Build batches in botocore's shapes: BuildBatch with its build groups and phases.

The stateful part (starting, advancing, stopping, retrying) is batch_coordinator.py;
this module only reads a batch row and its builds' rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codebuild import builds
from forgeline.codebuild.generated import shapes
from forgeline.codebuild.phases import phase_from_json
from forgeline.codebuild.tables.batches import BuildBatch
from forgeline.codebuild.tables.builds import Build

# The batch document's member holding the combined artifact (BatchGetBuildBatches shows
# it as `artifacts`), written by the coordinator once COMBINE_ARTIFACTS succeeded.
COMBINED_ARTIFACTS = "combinedArtifacts"


def phases_output(stored: list[dict[str, Any]]) -> list[shapes.BuildBatchPhase]:
    """botocore's BuildBatchPhase list (no empty contexts, unlike a build's phases)."""
    shown: list[shapes.BuildBatchPhase] = []
    for record in map(phase_from_json, stored):
        item: shapes.BuildBatchPhase = {
            "phaseType": record.phase_type,
            "startTime": record.start_time,
        }
        if record.phase_status:
            item["phaseStatus"] = record.phase_status
        if record.end_time is not None:
            item["endTime"] = record.end_time
            item["durationInSeconds"] = int((record.end_time - record.start_time).total_seconds())
        if record.contexts:
            item["contexts"] = [context.to_botocore() for context in record.contexts]
        shown.append(item)
    return shown


def _summary(build: Build) -> shapes.BuildSummary:
    summary: shapes.BuildSummary = {
        "arn": build.arn,
        "requestedOn": build.queued_at,
        "buildStatus": build.build_status,
    }
    artifacts = build.results.get("artifacts") or {}
    artifact_type = (build.document.get("artifacts") or {}).get("type", "NO_ARTIFACTS")
    primary: shapes.ResolvedArtifact = {"type": artifact_type}
    if artifacts.get("location"):
        primary["location"] = artifacts["location"]
    summary["primaryArtifact"] = primary
    secondary: list[shapes.ResolvedArtifact] = []
    for item in build.results.get("secondaryArtifacts") or []:
        resolved: shapes.ResolvedArtifact = {"type": "S3"}
        if item.get("location"):
            resolved["location"] = item["location"]
        if item.get("artifactIdentifier"):
            resolved["identifier"] = item["artifactIdentifier"]
        secondary.append(resolved)
    summary["secondaryArtifacts"] = secondary
    return summary


def _groups_output(session: Session, batch: BuildBatch) -> list[shapes.BuildGroup]:
    build_ids = [
        build_id
        for group in batch.groups
        for build_id in [group["buildId"], *group["priorBuildIds"]]
        if build_id
    ]
    rows = (
        {b.id: b for b in session.scalars(select(Build).where(Build.id.in_(build_ids)))}
        if build_ids
        else {}
    )
    shown: list[shapes.BuildGroup] = []
    for group in batch.groups:
        item: shapes.BuildGroup = {
            "identifier": group["identifier"],
            "dependsOn": list(group["dependsOn"]),
            "ignoreFailure": group["ignoreFailure"],
        }
        current = rows.get(group["buildId"]) if group["buildId"] else None
        if current is not None:
            item["currentBuildSummary"] = _summary(current)
        item["priorBuildSummaryList"] = [
            _summary(rows[build_id]) for build_id in group["priorBuildIds"] if build_id in rows
        ]
        shown.append(item)
    return shown


def batch_output(session: Session, batch: BuildBatch) -> shapes.BuildBatch:
    """The batch in botocore's BuildBatch shape."""
    document = batch.document
    output: shapes.BuildBatch = {
        "id": batch.id,
        "arn": batch.arn,
        "startTime": batch.start_time,
        "currentPhase": batch.current_phase,
        "buildBatchStatus": batch.status,
        "projectName": batch.project_name,
        "phases": phases_output(batch.phases),
        "source": document.get("source") or shapes.ProjectSource(type="NO_SOURCE"),
        "secondarySources": document.get("secondarySources") or [],
        "secondarySourceVersions": document.get("secondarySourceVersions") or [],
        "artifacts": document.get(COMBINED_ARTIFACTS) or shapes.BuildArtifacts(location=""),
        "secondaryArtifacts": [],
        "cache": document.get("cache") or shapes.ProjectCache(type="NO_CACHE"),
        "environment": builds.environment_output(document.get("environment") or {}),
        "logConfig": document.get("logsConfig") or shapes.LogsConfig(),
        "buildTimeoutInMinutes": document.get("timeoutInMinutes", 60),
        "queuedTimeoutInMinutes": document.get("queuedTimeoutInMinutes", 480),
        "complete": batch.complete,
        "buildBatchNumber": batch.batch_number,
        "buildBatchConfig": document.get("buildBatchConfig") or shapes.ProjectBuildBatchConfig(),
        "buildGroups": _groups_output(session, batch),
        "debugSessionEnabled": bool((document.get("debugSession") or {}).get("sessionEnabled")),
    }
    if batch.initiator is not None:
        output["initiator"] = batch.initiator
    if document.get("sourceVersion"):
        output["sourceVersion"] = document["sourceVersion"]
    if batch.resolved_source_version:
        output["resolvedSourceVersion"] = batch.resolved_source_version
    if document.get("serviceRole"):
        output["serviceRole"] = document["serviceRole"]
    if document.get("encryptionKey"):
        output["encryptionKey"] = document["encryptionKey"]
    if batch.end_time is not None:
        output["endTime"] = batch.end_time
    return output
