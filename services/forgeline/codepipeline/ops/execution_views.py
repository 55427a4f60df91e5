"""Executions as the API shows them: GetPipelineExecution's PipelineExecution,
ListPipelineExecutions' summaries, GetPipelineState's stage states and
ListActionExecutions' details, read from the engine's state and the action rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, cast

from forgeline.codepipeline.engine.state import ArtifactRef, ExecutionState
from forgeline.codepipeline.generated import shapes
from forgeline.codepipeline.running.actions.context import split_location
from forgeline.codepipeline.tables.executions import ActionExecution, PipelineExecution
from forgeline.codepipeline.tables.pipelines import Pipeline


def _trigger(execution: PipelineExecution) -> shapes.ExecutionTrigger:
    return cast(shapes.ExecutionTrigger, dict(execution.trigger))


def _mode(pipeline: Pipeline | None) -> str:
    return (pipeline.declaration if pipeline else {}).get("executionMode", "SUPERSEDED")


def _revisions(state: ExecutionState) -> list[dict[str, Any]]:
    """Each source action's revision, as its output artifacts recorded it."""
    return [
        {
            "actionName": action.name,
            "revisionId": action.revision.get("revisionId", artifact.revision or ""),
            "revisionSummary": action.revision.get("revisionSummary", action.summary or ""),
            "artifactName": artifact.name,
        }
        for _, action in state.succeeded_actions()
        if action.revision is not None
        for artifact in action.output_artifacts
    ]


def _add_how_it_ran(
    shape: shapes.PipelineExecution | shapes.PipelineExecutionSummary,
    execution: PipelineExecution,
    pipeline: Pipeline | None,
    state: ExecutionState,
) -> None:
    """What PipelineExecution and PipelineExecutionSummary both say of an execution."""
    shape["trigger"] = _trigger(execution)
    shape["executionMode"] = _mode(pipeline)
    shape["executionType"] = state.execution_type
    if state.rollback is not None:
        shape["rollbackMetadata"] = {
            "rollbackTargetPipelineExecutionId": state.rollback.target_execution_id
        }
    if state.status_summary:
        shape["statusSummary"] = state.status_summary


def pipeline_execution(
    execution: PipelineExecution, pipeline: Pipeline | None
) -> shapes.PipelineExecution:
    state = ExecutionState.from_document(execution.state)
    shape: shapes.PipelineExecution = {
        "pipelineName": execution.pipeline_name,
        "pipelineVersion": execution.pipeline_version,
        "pipelineExecutionId": execution.id,
        "status": execution.status,
        "artifactRevisions": [
            {
                "name": revision["artifactName"],
                "revisionId": revision["revisionId"],
                "revisionSummary": revision["revisionSummary"],
            }
            for revision in _revisions(state)
        ],
    }
    _add_how_it_ran(shape, execution, pipeline, state)
    if state.variables:
        shape["variables"] = state.resolved_variables()
    return shape


def execution_summary(
    execution: PipelineExecution, pipeline: Pipeline | None
) -> shapes.PipelineExecutionSummary:
    state = ExecutionState.from_document(execution.state)
    summary: shapes.PipelineExecutionSummary = {
        "pipelineExecutionId": execution.id,
        "status": execution.status,
        "startTime": execution.started_at,
        "lastUpdateTime": execution.updated_at,
        "sourceRevisions": [
            {
                "actionName": revision["actionName"],
                "revisionId": revision["revisionId"],
                "revisionSummary": revision["revisionSummary"],
            }
            for revision in _revisions(state)
        ],
    }
    _add_how_it_ran(summary, execution, pipeline, state)
    if state.stop_reason is not None and execution.status in ("Stopping", "Stopped"):
        summary["stopTrigger"] = {"reason": state.stop_reason}
    return summary


def stage_states(
    pipeline: Pipeline,
    executions: Sequence[PipelineExecution],
    approval_tokens: Mapping[str, str],
) -> list[shapes.StageState]:
    """Each stage as the newest execution that reached it left it, with the executions
    waiting to enter it; `executions` newest first. `approval_tokens` gives the token of
    each manual approval waiting, by action execution id."""
    states = [(row, ExecutionState.from_document(row.state)) for row in executions]
    disabled = pipeline.disabled_transitions or {}
    shown: list[shapes.StageState] = []
    for stage in pipeline.declaration.get("stages", []):
        name = stage["name"]
        transition = disabled.get(name)
        entry: shapes.StageState = {
            "stageName": name,
            "inboundTransitionState": {"enabled": transition is None},
            "actionStates": [{"actionName": action["name"]} for action in stage["actions"]],
        }
        if transition is not None:
            entry["inboundTransitionState"] = {
                "enabled": False,
                "lastChangedBy": transition.get("lastChangedBy", ""),
                "lastChangedAt": dt.datetime.fromisoformat(transition["lastChangedAt"]),
                "disabledReason": transition.get("reason", ""),
            }
        waiting = [
            {"pipelineExecutionId": row.id, "status": "InProgress"}
            for row, state in states
            if state.waiting_for == name and state.status == "InProgress"
        ]
        if waiting:
            entry["inboundExecution"] = cast(shapes.StageExecution, waiting[0])
            entry["inboundExecutions"] = cast(list[shapes.StageExecution], waiting)
        for row, state in states:
            reached = state.stage(name)
            if reached is None or reached.status is None:
                continue
            entry["latestExecution"] = {"pipelineExecutionId": row.id, "status": reached.status}
            entry["actionStates"] = [
                _action_state(action.name, action.to_action_execution(), approval_tokens)
                for action in reached.actions
            ]
            metadata = reached.retry_metadata()
            if metadata:
                entry["retryStageMetadata"] = metadata
            break
        shown.append(entry)
    return shown


def _action_state(
    name: str, latest: shapes.ActionExecution, approval_tokens: Mapping[str, str]
) -> shapes.ActionState:
    state: shapes.ActionState = {"actionName": name}
    if latest:
        token = approval_tokens.get(latest.get("actionExecutionId", ""))
        if token is not None and latest.get("status") == "InProgress":
            latest["token"] = token
        state["latestExecution"] = latest
    return state


def _s3_artifact(ref: dict[str, Any]) -> shapes.ArtifactDetail:
    artifact = ArtifactRef.from_document(ref)
    bucket, key = split_location(artifact.location)
    return {"name": artifact.name, "s3location": {"bucket": bucket, "key": key}}


def action_execution_detail(
    row: ActionExecution, execution: PipelineExecution
) -> shapes.ActionExecutionDetail:
    detail = row.detail
    output = detail.get("output") or {}
    action_input: shapes.ActionExecutionInput = {
        "actionTypeId": cast(shapes.ActionTypeId, detail["actionTypeId"]),
        "configuration": dict(detail.get("configuration") or {}),
        "resolvedConfiguration": dict(detail.get("resolvedConfiguration") or {}),
        "inputArtifacts": [_s3_artifact(ref) for ref in detail.get("inputArtifacts") or []],
    }
    if detail.get("namespace"):
        action_input["namespace"] = detail["namespace"]
    result: shapes.ActionExecutionResult = {}
    external = output.get("externalExecutionId") or row.external_id
    if external:
        result["externalExecutionId"] = external
    if output.get("summary"):
        result["externalExecutionSummary"] = output["summary"]
    if output.get("externalExecutionUrl"):
        result["externalExecutionUrl"] = output["externalExecutionUrl"]
    if output.get("error"):
        result["errorDetails"] = cast(shapes.ErrorDetails, output["error"])
    shape: shapes.ActionExecutionDetail = {
        "pipelineExecutionId": execution.id,
        "actionExecutionId": row.id,
        "pipelineVersion": execution.pipeline_version,
        "stageName": row.stage,
        "actionName": row.action,
        "startTime": row.started_at,
        "lastUpdateTime": row.updated_at,
        "status": row.status,
        "input": action_input,
        "output": {
            "outputArtifacts": [_s3_artifact(ref) for ref in output.get("outputArtifacts") or []],
            "executionResult": result,
            "outputVariables": dict(output.get("outputVariables") or {}),
        },
    }
    return shape
