"""ListDeployActionExecutionTargets: the hosts a CodeDeploy action's deployment went to,
with their lifecycle events, read through CodeDeploy's interface."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from forgeline.codedeploy import interface as codedeploy
from forgeline.codepipeline.generated import errors, shapes
from forgeline.codepipeline.ops.pipelines import require_pipeline
from forgeline.codepipeline.tables.executions import ActionExecution
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import page_size, request_page_tokens

LIST_PAGE_SIZE = 100


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _target(view: codedeploy.DeploymentTargetView) -> shapes.DeployActionExecutionTarget:
    events: list[shapes.DeployTargetEvent] = []
    for event in view.events:
        shown: shapes.DeployTargetEvent = {"name": event.name, "status": event.status}
        start, end = _time(event.start_time), _time(event.end_time)
        if start:
            shown["startTime"] = start
        if end:
            shown["endTime"] = end
        if event.message:
            shown["context"] = {"message": event.message}
        events.append(shown)
    target: shapes.DeployActionExecutionTarget = {
        "targetId": view.target_id,
        "targetType": view.target_type,
        "status": view.status,
        "events": events,
    }
    starts = [e["startTime"] for e in events if "startTime" in e]
    ends = [e["endTime"] for e in events if "endTime" in e]
    if starts:
        target["startTime"] = min(starts)
    if ends and view.status in ("Succeeded", "Failed", "Skipped"):
        target["endTime"] = max(ends)
    return target


class DeployTargetOperations:
    def list_deploy_action_execution_targets(
        self, ctx: RequestContext, params: shapes.ListDeployActionExecutionTargetsInput
    ) -> shapes.ListDeployActionExecutionTargetsOutput:
        limit = page_size(
            params.get("maxResults"),
            default=LIST_PAGE_SIZE,
            maximum=LIST_PAGE_SIZE,
            member="maxResults",
            invalid=errors.ValidationException,
        )
        statuses = {
            value
            for rule in params.get("filters") or []
            if rule.get("name") == "TARGET_STATUS"
            for value in rule.get("values") or []
        }
        with session_scope(readonly=True) as session:
            row = _action(session, ctx, params)
            views = codedeploy.deployment_targets(session, row.external_id or "")
        if statuses:
            views = [view for view in views if view.status in statuses]
        page, token = request_page_tokens(ctx).page(
            views, lambda v: v.target_id, {"action": row.id}, params.get("nextToken"), limit
        )
        output: shapes.ListDeployActionExecutionTargetsOutput = {
            "targets": [_target(view) for view in page]
        }
        if token:
            output["nextToken"] = token
        return output


def _action(
    session: Session, ctx: RequestContext, params: shapes.ListDeployActionExecutionTargetsInput
) -> ActionExecution:
    row = session.get(ActionExecution, params["actionExecutionId"])
    if params.get("pipelineName"):
        pipeline = require_pipeline(session, ctx, params["pipelineName"])
        if row is not None and row.pipeline_id != pipeline.id:
            row = None
    kind = (row.detail.get("actionTypeId") or {}) if row is not None else {}
    if row is None or (kind.get("category"), kind.get("provider")) != ("Deploy", "CodeDeploy"):
        raise errors.ActionExecutionNotFoundException(
            f"No CodeDeploy action execution {params['actionExecutionId']} was found."
        )
    return row
