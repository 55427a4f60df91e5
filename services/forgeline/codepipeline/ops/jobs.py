"""Custom action types and their job workers: CreateCustomActionType,
DeleteCustomActionType, PollForJobs, AcknowledgeJob, GetJobDetails, PutJobSuccessResult
and PutJobFailureResult.

A job goes Queued -> Dispatched (PollForJobs hands it out with a nonce) -> InProgress
(AcknowledgeJob with that nonce) -> Succeeded or Failed, which ends the action waiting on
it. A success with a continuation token ends this job and queues the next one for the same
action, carrying the token, as AWS does for long-running custom actions.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codepipeline import custom_types
from forgeline.codepipeline.engine.state import ArtifactRef
from forgeline.codepipeline.generated import errors, shapes
from forgeline.codepipeline.ops.tags import TAG_ERRORS, tags_from_list
from forgeline.codepipeline.running.actions.context import Failed, Succeeded
from forgeline.codepipeline.running.job_results import end_action
from forgeline.codepipeline.tables.executions import ActionExecution
from forgeline.codepipeline.tables.jobs import CustomActionType, PipelineJob
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow

QUEUED, DISPATCHED, IN_PROGRESS = "Queued", "Dispatched", "InProgress"
SUCCEEDED, FAILED = "Succeeded", "Failed"
# AWS's quota of custom action types per account and region.
MAX_CUSTOM_TYPES = 50


def custom_type_arn(ctx: RequestContext, kind: shapes.ActionTypeId | dict[str, Any]) -> str:
    return ctx.arn(
        "codepipeline", f"actiontype:Custom/{kind['category']}/{kind['provider']}/{kind['version']}"
    )


class JobOperations:
    def create_custom_action_type(
        self, ctx: RequestContext, params: shapes.CreateCustomActionTypeInput
    ) -> shapes.CreateCustomActionTypeOutput:
        kind = {
            "category": params["category"],
            "owner": custom_types.CUSTOM,
            "provider": params["provider"],
            "version": params["version"],
        }
        properties = params.get("configurationProperties") or []
        names = [prop["name"] for prop in properties]
        if len(set(names)) != len(names):
            raise errors.ValidationException("Configuration property names must be unique.")
        for details in ("inputArtifactDetails", "outputArtifactDetails"):
            counts = params[details]  # type: ignore[literal-required]
            if counts["minimumCount"] > counts["maximumCount"]:
                raise errors.ValidationException(f"{details}: minimumCount is above maximumCount.")
        tags = tags_from_list(params.get("tags") or [])
        with session_scope() as session:
            existing = custom_types.find(
                session, ctx.account_id, ctx.region, cast(shapes.ActionTypeId, kind),
                include_deleted=True,
            )  # fmt: skip
            if existing is not None and not existing.deleted:
                raise errors.ValidationException(
                    f"Action type {custom_types.type_key(kind)} already exists."
                )
            if len(custom_types.listed(session, ctx.account_id, ctx.region)) >= MAX_CUSTOM_TYPES:
                raise errors.LimitExceededException(
                    f"An account can have at most {MAX_CUSTOM_TYPES} custom action types."
                )
            document = {
                "settings": params.get("settings") or {},
                "configurationProperties": properties,
                "inputArtifactDetails": params["inputArtifactDetails"],
                "outputArtifactDetails": params["outputArtifactDetails"],
            }
            if existing is not None:  # a deleted type comes back with its new declaration
                existing.document, existing.deleted, row = document, False, existing
            else:
                row = CustomActionType(
                    id=str(uuid.uuid4()),
                    account_id=ctx.account_id,
                    region=ctx.region,
                    category=params["category"],
                    provider=params["provider"],
                    version=params["version"],
                    document=document,
                    deleted=False,
                    created_at=utcnow(),
                )
                session.add(row)
            session.flush()
            if tags:
                tagging.put_tags(
                    session, ctx.account_id, custom_type_arn(ctx, kind), tags, TAG_ERRORS
                )
            output: shapes.CreateCustomActionTypeOutput = {
                "actionType": custom_types.action_type(row)
            }
        if params.get("tags"):
            output["tags"] = params["tags"]
        return output

    def delete_custom_action_type(
        self, ctx: RequestContext, params: shapes.DeleteCustomActionTypeInput
    ) -> None:
        kind = cast(shapes.ActionTypeId, {**params, "owner": custom_types.CUSTOM})
        with session_scope() as session:
            row = custom_types.find(session, ctx.account_id, ctx.region, kind)
            if row is None:
                raise errors.ActionTypeNotFoundException(
                    f"Action type {custom_types.type_key(kind)} does not exist."
                )
            row.deleted = True

    def poll_for_jobs(
        self, ctx: RequestContext, params: shapes.PollForJobsInput
    ) -> shapes.PollForJobsOutput:
        kind = params["actionTypeId"]
        wanted = params.get("queryParam") or {}
        limit = params.get("maxBatchSize") or 1
        with session_scope() as session:
            if kind["owner"] == custom_types.CUSTOM and (
                custom_types.find(session, ctx.account_id, ctx.region, kind) is None
            ):
                raise errors.ActionTypeNotFoundException(
                    f"Action type {custom_types.type_key(kind)} does not exist."
                )
            queued = session.scalars(
                select(PipelineJob)
                .where(
                    PipelineJob.account_id == ctx.account_id,
                    PipelineJob.region == ctx.region,
                    PipelineJob.type_key == custom_types.type_key(kind),
                    PipelineJob.status == QUEUED,
                )
                .order_by(PipelineJob.created_at)
                .with_for_update(skip_locked=True)
            ).all()
            jobs: list[shapes.Job] = []
            for job in queued:
                configuration = job.data.get("actionConfiguration", {}).get("configuration", {})
                if any(configuration.get(k) != v for k, v in wanted.items()):
                    continue
                job.status, job.nonce, job.updated_at = DISPATCHED, secrets.token_hex(8), utcnow()
                jobs.append(
                    {
                        "id": job.id,
                        "data": cast(shapes.JobData, job.data),
                        "nonce": job.nonce,
                        "accountId": job.account_id,
                    }
                )
                if len(jobs) >= limit:
                    break
        return {"jobs": jobs}

    def acknowledge_job(
        self, ctx: RequestContext, params: shapes.AcknowledgeJobInput
    ) -> shapes.AcknowledgeJobOutput:
        with session_scope() as session:
            job = _job(session, ctx, params["jobId"])
            if job.nonce != params["nonce"]:
                raise errors.InvalidNonceException(
                    f"The nonce does not match the one job {job.id} was handed out with."
                )
            if job.status == DISPATCHED:
                job.status, job.updated_at = IN_PROGRESS, utcnow()
            return {"status": job.status}

    def get_job_details(
        self, ctx: RequestContext, params: shapes.GetJobDetailsInput
    ) -> shapes.GetJobDetailsOutput:
        with session_scope(readonly=True) as session:
            job = _job(session, ctx, params["jobId"])
            return {
                "jobDetails": {
                    "id": job.id,
                    "data": cast(shapes.JobData, job.data),
                    "accountId": job.account_id,
                }
            }

    def put_job_success_result(
        self, ctx: RequestContext, params: shapes.PutJobSuccessResultInput
    ) -> None:
        variables = dict(params.get("outputVariables") or {})
        with session_scope() as session:
            job, row = _running(session, ctx, params["jobId"])
            job.status, job.updated_at = SUCCEEDED, utcnow()
            details = params.get("executionDetails") or {}
            if params.get("continuationToken"):
                _queue_continuation(session, job, params["continuationToken"])
                return
            revision = params.get("currentRevision")
            outcome = Succeeded(
                output_artifacts={
                    artifact["name"]: ArtifactRef(
                        artifact["name"],
                        f"{artifact['location']['s3Location']['bucketName']}/"
                        f"{artifact['location']['s3Location']['objectKey']}",
                        revision["revision"] if revision else None,
                    )
                    for artifact in job.data.get("outputArtifacts", [])
                },
                output_variables=variables,
                summary=details.get("summary"),
                external_id=details.get("externalExecutionId"),
                revision={"revisionId": revision["revision"]} if revision else None,
            )
            end_action(session, row, outcome)

    def put_job_failure_result(
        self, ctx: RequestContext, params: shapes.PutJobFailureResultInput
    ) -> None:
        failure = params["failureDetails"]
        with session_scope() as session:
            job, row = _running(session, ctx, params["jobId"])
            job.status, job.updated_at = FAILED, utcnow()
            end_action(
                session,
                row,
                Failed(
                    f"{failure['type']}: {failure['message']}",
                    external_id=failure.get("externalExecutionId"),
                ),
            )


def _job(session: Session, ctx: RequestContext, job_id: str) -> PipelineJob:
    job = session.get(PipelineJob, job_id)
    if job is None or job.account_id != ctx.account_id or job.region != ctx.region:
        raise errors.JobNotFoundException(f"Job {job_id} does not exist.")
    return job


def _running(
    session: Session, ctx: RequestContext, job_id: str
) -> tuple[PipelineJob, ActionExecution]:
    job = _job(session, ctx, job_id)
    if job.status not in (DISPATCHED, IN_PROGRESS):
        raise errors.InvalidJobStateException(
            f"Job {job.id} is {job.status}: only a job handed out by PollForJobs takes a result."
        )
    row = session.get(ActionExecution, job.action_execution_id)
    if row is None:
        raise errors.JobNotFoundException(f"The action of job {job.id} no longer exists.")
    return job, row


def _queue_continuation(session: Session, job: PipelineJob, token: str) -> None:
    """The action goes on as a new job carrying the worker's continuation token."""
    follow_up = PipelineJob(
        id=str(uuid.uuid4()),
        account_id=job.account_id,
        region=job.region,
        type_key=job.type_key,
        action_execution_id=job.action_execution_id,
        status=QUEUED,
        data={**job.data, "continuationToken": token},
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(follow_up)
    row = session.get(ActionExecution, job.action_execution_id)
    if row is not None:
        row.external_id = follow_up.id
