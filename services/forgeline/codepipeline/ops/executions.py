"""Executions: StartPipelineExecution, GetPipelineExecution, ListPipelineExecutions,
GetPipelineState, ListActionExecutions, StopPipelineExecution, RetryStageExecution,
PutApprovalResult, and Enable/DisableStageTransition.

Every change goes through the driver (running/driver.py) with the execution's row locked;
the checks AWS makes before it (stoppable, retryable, latest, the approval's token) are
the engine's pure predicates or made here on the same locked rows.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codepipeline.engine import lanes
from forgeline.codepipeline.engine.events import (
    ActionFailed,
    ActionSucceeded,
    RetryRequested,
    StopRequested,
)
from forgeline.codepipeline.engine.machine import can_retry, can_stop, is_duplicate_stop
from forgeline.codepipeline.generated import errors, shapes
from forgeline.codepipeline.ops import execution_views as views
from forgeline.codepipeline.ops.pipelines import require_pipeline
from forgeline.codepipeline.running import driver
from forgeline.codepipeline.running.rollbacks import start_rollback
from forgeline.codepipeline.running.starting import start_execution
from forgeline.codepipeline.tables.executions import ActionExecution, PipelineExecution
from forgeline.codepipeline.tables.pipelines import Pipeline
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.idempotency import idempotent
from forgeline.core.pagination import page_size, request_page_tokens

LIST_EXECUTIONS_DEFAULT = 100
LIST_EXECUTIONS_MAX = 100
LIST_ACTIONS_DEFAULT = 100
LIST_ACTIONS_MAX = 100
APPROVED, REJECTED = "Approved", "Rejected"


def require_execution(
    session: Session, pipeline: Pipeline, execution_id: str, *, lock: bool = False
) -> PipelineExecution:
    query = select(PipelineExecution).where(
        PipelineExecution.id == execution_id, PipelineExecution.pipeline_id == pipeline.id
    )
    if lock:
        query = query.with_for_update()
    execution = session.scalars(query).first()
    if execution is None:
        raise errors.PipelineExecutionNotFoundException(
            f"Pipeline execution {execution_id} of pipeline {pipeline.name} does not exist."
        )
    return execution


def _executions(session: Session, pipeline: Pipeline) -> list[PipelineExecution]:
    """The pipeline's executions, newest first."""
    return list(
        session.scalars(
            select(PipelineExecution)
            .where(PipelineExecution.pipeline_id == pipeline.id)
            .order_by(PipelineExecution.started_at.desc(), PipelineExecution.id)
        )
    )


def _stage_names(pipeline: Pipeline) -> list[str]:
    return [stage["name"] for stage in pipeline.declaration.get("stages", [])]


def _require_stage(pipeline: Pipeline, stage: str) -> None:
    if stage not in _stage_names(pipeline):
        raise errors.StageNotFoundException(f"Pipeline {pipeline.name} has no stage named {stage}.")


class ExecutionOperations:
    def start_pipeline_execution(
        self, ctx: RequestContext, params: shapes.StartPipelineExecutionInput
    ) -> shapes.StartPipelineExecutionOutput:
        with session_scope() as session:

            def start() -> dict[str, Any]:
                pipeline = require_pipeline(session, ctx, params["name"])
                variables = _start_variables(pipeline, params.get("variables") or [])
                revisions = _source_revisions(pipeline, params.get("sourceRevisions") or [])
                execution = start_execution(
                    session,
                    pipeline,
                    {"triggerType": "StartPipelineExecution", "triggerDetail": ctx.principal_arn},
                    variables=variables,
                    source_revisions=revisions,
                    client_request_token=params.get("clientRequestToken"),
                )
                return {"pipelineExecutionId": execution.id}

            answer = idempotent(
                session,
                ctx,
                params.get("clientRequestToken"),
                params,
                start,
                mismatch_error="ValidationException",
            )
        return cast(shapes.StartPipelineExecutionOutput, answer)

    def put_action_revision(
        self, ctx: RequestContext, params: shapes.PutActionRevisionInput
    ) -> shapes.PutActionRevisionOutput:
        stage, action = params["stageName"], params["actionName"]
        revision = params["actionRevision"]["revisionId"]
        with session_scope() as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"])
            _require_stage(pipeline, stage)
            declared = next(s for s in pipeline.declaration["stages"] if s["name"] == stage)
            found = next((a for a in declared["actions"] if a["name"] == action), None)
            if found is None:
                raise errors.ActionNotFoundException(
                    f"Stage {stage} of pipeline {pipeline.name} has no action named {action}."
                )
            if found["actionTypeId"]["category"] != "Source":
                raise errors.ValidationException(
                    f"{action} is not a source action: only a source takes a revision."
                )
            if _last_revision(session, pipeline, stage, action) == revision:
                return {"newRevision": False}
            overrides = {}
            if found["actionTypeId"]["provider"] == "CodeCommit":
                overrides[action] = {"revisionType": "COMMIT_ID", "revisionValue": revision}
            execution = start_execution(
                session,
                pipeline,
                {"triggerType": "PutActionRevision", "triggerDetail": ctx.principal_arn},
                source_revisions=overrides,
            )
            return {"newRevision": True, "pipelineExecutionId": execution.id}

    def rollback_stage(
        self, ctx: RequestContext, params: shapes.RollbackStageInput
    ) -> shapes.RollbackStageOutput:
        stage = params["stageName"]
        with session_scope() as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"], for_update=True)
            _require_stage(pipeline, stage)
            target = require_execution(session, pipeline, params["targetPipelineExecutionId"])
            if target.pipeline_version != pipeline.version:
                raise errors.PipelineExecutionOutdatedException(
                    f"Pipeline execution {target.id} ran version {target.pipeline_version} "
                    f"of pipeline {pipeline.name}, which is now at version {pipeline.version}."
                )
            running = _running_in(session, pipeline, stage)
            if running is not None:
                raise errors.UnableToRollbackStageException(
                    f"Stage {stage} is running pipeline execution {running}; roll it back "
                    "once that ends."
                )
            execution = start_rollback(
                session,
                pipeline,
                target,
                stage,
                {"triggerType": "ManualRollback", "triggerDetail": ctx.principal_arn},
            )
        return {"pipelineExecutionId": execution.id}

    def get_pipeline_execution(
        self, ctx: RequestContext, params: shapes.GetPipelineExecutionInput
    ) -> shapes.GetPipelineExecutionOutput:
        with session_scope(readonly=True) as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"])
            execution = require_execution(session, pipeline, params["pipelineExecutionId"])
            return {"pipelineExecution": views.pipeline_execution(execution, pipeline)}

    def list_pipeline_executions(
        self, ctx: RequestContext, params: shapes.ListPipelineExecutionsInput
    ) -> shapes.ListPipelineExecutionsOutput:
        limit = page_size(
            params.get("maxResults"),
            default=LIST_EXECUTIONS_DEFAULT,
            maximum=LIST_EXECUTIONS_MAX,
            member="maxResults",
            invalid=errors.ValidationException,
        )
        with session_scope(readonly=True) as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"])
            executions = _executions(session, pipeline)
            wanted = ((params.get("filter") or {}).get("succeededInStage") or {}).get("stageName")
            if wanted:
                executions = [e for e in executions if _succeeded_in(e, wanted)]
            page, next_token = request_page_tokens(ctx).page(
                executions,
                lambda e: [e.started_at.isoformat(), e.id],
                {"pipeline": pipeline.id, "stage": wanted},
                params.get("nextToken"),
                limit,
                descending=True,
            )
            output: shapes.ListPipelineExecutionsOutput = {
                "pipelineExecutionSummaries": [views.execution_summary(e, pipeline) for e in page]
            }
        if next_token:
            output["nextToken"] = next_token
        return output

    def get_pipeline_state(
        self, ctx: RequestContext, params: shapes.GetPipelineStateInput
    ) -> shapes.GetPipelineStateOutput:
        with session_scope(readonly=True) as session:
            pipeline = require_pipeline(session, ctx, params["name"])
            executions = [
                e for e in _executions(session, pipeline) if e.pipeline_version == pipeline.version
            ]
            tokens = {
                row_id: str(external_id)
                for row_id, external_id in session.execute(
                    select(ActionExecution.id, ActionExecution.external_id).where(
                        ActionExecution.pipeline_id == pipeline.id,
                        ActionExecution.status == "InProgress",
                        ActionExecution.external_id.is_not(None),
                    )
                )
            }
            return {
                "pipelineName": pipeline.name,
                "pipelineVersion": pipeline.version,
                "stageStates": views.stage_states(pipeline, executions, tokens),
                "created": pipeline.created_at,
                "updated": pipeline.updated_at,
            }

    def list_action_executions(
        self, ctx: RequestContext, params: shapes.ListActionExecutionsInput
    ) -> shapes.ListActionExecutionsOutput:
        limit = page_size(
            params.get("maxResults"),
            default=LIST_ACTIONS_DEFAULT,
            maximum=LIST_ACTIONS_MAX,
            member="maxResults",
            invalid=errors.ValidationException,
        )
        wanted = (params.get("filter") or {}).get("pipelineExecutionId")
        with session_scope(readonly=True) as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"])
            query = select(ActionExecution).where(ActionExecution.pipeline_id == pipeline.id)
            if wanted:
                require_execution(session, pipeline, wanted)
                query = query.where(ActionExecution.execution_id == wanted)
            rows = list(
                session.scalars(
                    query.order_by(ActionExecution.started_at.desc(), ActionExecution.id)
                )
            )
            page, next_token = request_page_tokens(ctx).page(
                rows,
                lambda r: [r.started_at.isoformat(), r.id],
                {"pipeline": pipeline.id, "execution": wanted},
                params.get("nextToken"),
                limit,
                descending=True,
            )
            executions = {
                e.id: e
                for e in session.scalars(
                    select(PipelineExecution).where(
                        PipelineExecution.id.in_({row.execution_id for row in page})
                    )
                )
            }
            output: shapes.ListActionExecutionsOutput = {
                "actionExecutionDetails": [
                    views.action_execution_detail(row, executions[row.execution_id]) for row in page
                ]
            }
        if next_token:
            output["nextToken"] = next_token
        return output

    def stop_pipeline_execution(
        self, ctx: RequestContext, params: shapes.StopPipelineExecutionInput
    ) -> shapes.StopPipelineExecutionOutput:
        abandon = bool(params.get("abandon"))
        with session_scope() as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"])
            found = require_execution(session, pipeline, params["pipelineExecutionId"])
            execution = driver.lock(session, found.id)
            assert execution is not None
            state = driver.state_of(execution)
            if is_duplicate_stop(state, abandon):
                raise errors.DuplicatedStopRequestException(
                    f"Pipeline execution {execution.id} is already stopping; to stop it at "
                    "once, stop and abandon it."
                )
            if not can_stop(state):
                raise errors.PipelineExecutionNotStoppableException(
                    f"Pipeline execution {execution.id} is {execution.status} and cannot be "
                    "stopped."
                )
            driver.apply(session, execution, StopRequested(abandon, params.get("reason")))
        return {"pipelineExecutionId": execution.id}

    def retry_stage_execution(
        self, ctx: RequestContext, params: shapes.RetryStageExecutionInput
    ) -> shapes.RetryStageExecutionOutput:
        stage = params["stageName"]
        with session_scope() as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"])
            _require_stage(pipeline, stage)
            found = require_execution(session, pipeline, params["pipelineExecutionId"])
            latest = _latest_in_stage(session, pipeline, stage)
            if latest is not None and latest.id != found.id:
                raise errors.NotLatestPipelineExecutionException(
                    f"Pipeline execution {found.id} is not the latest to run stage {stage} "
                    f"({latest.id} is)."
                )
            execution = driver.lock(session, found.id)
            assert execution is not None
            reason = can_retry(driver.state_of(execution), stage)
            if reason is not None:
                raise errors.StageNotRetryableException(reason)
            driver.apply(session, execution, RetryRequested(stage, params["retryMode"]))
        return {"pipelineExecutionId": execution.id}

    def put_approval_result(
        self, ctx: RequestContext, params: shapes.PutApprovalResultInput
    ) -> shapes.PutApprovalResultOutput:
        stage, action = params["stageName"], params["actionName"]
        result = params["result"]
        if result["status"] not in (APPROVED, REJECTED):
            raise errors.ValidationException("An approval's status is Approved or Rejected.")
        with session_scope() as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"])
            _require_stage(pipeline, stage)
            declared = next(s for s in pipeline.declaration["stages"] if s["name"] == stage)
            if action not in {a["name"] for a in declared["actions"]}:
                raise errors.ActionNotFoundException(
                    f"Stage {stage} of pipeline {pipeline.name} has no action named {action}."
                )
            row = session.scalars(
                select(ActionExecution)
                .where(
                    ActionExecution.pipeline_id == pipeline.id,
                    ActionExecution.stage == stage,
                    ActionExecution.action == action,
                )
                .order_by(ActionExecution.started_at.desc())
            ).first()
            if row is None or row.external_id != params["token"]:
                raise errors.InvalidApprovalTokenException(
                    f"The token does not match an approval waiting in {stage}/{action}."
                )
            if row.status != "InProgress":
                raise errors.ApprovalAlreadyCompletedException(
                    f"The approval {stage}/{action} has already ended ({row.status})."
                )
            execution = driver.lock(session, row.execution_id)
            assert execution is not None
            approved_at = utcnow()
            summary = result.get("summary") or ""
            if result["status"] == APPROVED:
                event: ActionSucceeded | ActionFailed = ActionSucceeded(
                    row.id, summary=summary or "Approved", external_execution_id=row.external_id
                )
            else:
                event = ActionFailed(
                    row.id,
                    f"Rejected: {summary}" if summary else "Rejected",
                    code="JobFailed",
                    external_execution_id=row.external_id,
                )
            driver.apply(session, execution, event, now=approved_at)
        return {"approvedAt": approved_at}

    def disable_stage_transition(
        self, ctx: RequestContext, params: shapes.DisableStageTransitionInput
    ) -> None:
        self._set_transition(ctx, params, enabled=False)

    def enable_stage_transition(
        self, ctx: RequestContext, params: shapes.EnableStageTransitionInput
    ) -> None:
        self._set_transition(ctx, params, enabled=True)

    @staticmethod
    def _set_transition(
        ctx: RequestContext,
        params: shapes.DisableStageTransitionInput | shapes.EnableStageTransitionInput,
        *,
        enabled: bool,
    ) -> None:
        with session_scope() as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"], for_update=True)
            _require_stage(pipeline, params["stageName"])
            stage = _inbound_stage(pipeline, params["stageName"], params["transitionType"])
            transitions = dict(pipeline.disabled_transitions or {})
            request: lanes.StageRequest
            if enabled:
                transitions.pop(stage, None)
                request = lanes.EnableTransition(stage)
            else:
                transitions[stage] = {
                    "reason": cast(shapes.DisableStageTransitionInput, params)["reason"],
                    "lastChangedBy": ctx.principal_arn,
                    "lastChangedAt": utcnow().isoformat(),
                }
                request = lanes.DisableTransition(stage)
            pipeline.disabled_transitions = transitions
            decision = driver.decide(pipeline, request)
            for granted in decision.granted:
                driver.queue_event(session, granted.execution_id, {"granted": granted.stage})


def _inbound_stage(pipeline: Pipeline, stage: str, transition_type: str) -> str:
    """The stage whose inbound transition is meant: Outbound of a stage is the next one's
    Inbound. The first stage has no inbound transition, the last no outbound one."""
    names = _stage_names(pipeline)
    index = names.index(stage)
    if transition_type == "Outbound":
        if index + 1 >= len(names):
            raise errors.ValidationException(
                f"Stage {stage} is the last: it has no outbound transition."
            )
        return names[index + 1]
    if index == 0:
        raise errors.ValidationException(
            f"Stage {stage} is the first: it has no inbound transition."
        )
    return stage


def _latest_in_stage(session: Session, pipeline: Pipeline, stage: str) -> PipelineExecution | None:
    for execution in _executions(session, pipeline):
        state = driver.state_of(execution)
        reached = state.stage(stage)
        if reached is not None and reached.status is not None:
            return execution
    return None


def _last_revision(session: Session, pipeline: Pipeline, stage: str, action: str) -> str | None:
    """The revision the newest execution that ran the source action ran it with."""
    for execution in _executions(session, pipeline):
        reached = driver.state_of(execution).stage(stage)
        ran = next((a for a in reached.actions if a.name == action), None) if reached else None
        if ran is not None and ran.revision:
            return ran.revision.get("revisionId")
    return None


def _running_in(session: Session, pipeline: Pipeline, stage: str) -> str | None:
    for execution in _executions(session, pipeline):
        if execution.status not in ("InProgress", "Stopping"):
            continue
        current = driver.state_of(execution).current_stage
        if current is not None and current.name == stage:
            return execution.id
    return None


def _succeeded_in(execution: PipelineExecution, stage: str) -> bool:
    reached = driver.state_of(execution).stage(stage)
    return reached is not None and reached.status == "Succeeded"


def _start_variables(pipeline: Pipeline, given: list[shapes.PipelineVariable]) -> dict[str, str]:
    declared = {v["name"] for v in pipeline.declaration.get("variables") or []}
    values: dict[str, str] = {}
    for variable in given:
        if variable["name"] not in declared:
            raise errors.ValidationException(
                f"Variable {variable['name']} is not declared by pipeline {pipeline.name}."
            )
        values[variable["name"]] = variable["value"]
    return values


def _source_revisions(
    pipeline: Pipeline, given: list[shapes.SourceRevisionOverride]
) -> dict[str, dict[str, str]]:
    sources = {
        action["name"]
        for action in (pipeline.declaration.get("stages") or [{}])[0].get("actions", [])
    }
    revisions: dict[str, dict[str, str]] = {}
    for override in given:
        if override["actionName"] not in sources:
            raise errors.ValidationException(
                f"Source revision override names {override['actionName']}, which is not a "
                f"source action of pipeline {pipeline.name}."
            )
        revisions[override["actionName"]] = {
            "revisionType": override["revisionType"],
            "revisionValue": override["revisionValue"],
        }
    return revisions
