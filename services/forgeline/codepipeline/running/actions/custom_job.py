"""A custom action (owner Custom): a job for the type's workers (PollForJobs), whose
result (PutJobSuccessResult / PutJobFailureResult, ops/jobs.py) ends the action. The job
names where each output artifact goes, in the pipeline's artifact store. The Lambda invoke
action hands its function a job of the same kind."""

from __future__ import annotations

import uuid

from forgeline.codepipeline.running.actions.context import (
    ActionContext,
    Outcome,
    Waiting,
    split_location,
)
from forgeline.codepipeline.tables.jobs import PipelineJob
from forgeline.core.db import utcnow

CUSTOM = "Custom"


def _s3(bucket: str, key: str) -> dict[str, object]:
    return {"type": "S3", "s3Location": {"bucketName": bucket, "objectKey": key}}


def run(context: ActionContext) -> Outcome:
    return Waiting(external_id=queue_job(context, CUSTOM, "Queued").id)


def queue_job(context: ActionContext, owner: str, status: str) -> PipelineJob:
    """The action's job, with the JobData its worker (or function) is handed."""
    kind = {
        "category": context.category,
        "owner": owner,
        "provider": context.provider,
        "version": context.version,
    }
    data = {
        "actionTypeId": kind,
        "actionConfiguration": {"configuration": dict(context.configuration)},
        "pipelineContext": {
            "pipelineName": context.pipeline_name,
            "stage": {"name": context.stage},
            "action": {"name": context.action, "actionExecutionId": context.action_execution_id},
            "pipelineArn": f"arn:aws:codepipeline:{context.region}:{context.account_id}:"
            f"{context.pipeline_name}",
            "pipelineExecutionId": context.execution_id,
        },
        "inputArtifacts": [
            {
                "name": ref.name,
                "revision": ref.revision,
                "location": _s3(*split_location(ref.location)),
            }
            if ref.revision
            else {"name": ref.name, "location": _s3(*split_location(ref.location))}
            for ref in context.input_artifacts
        ],
        "outputArtifacts": [
            {"name": name, "location": _s3(context.artifact_bucket, context.artifact_key(name))}
            for name in context.output_artifact_names
        ],
    }
    job = PipelineJob(
        id=str(uuid.uuid4()),
        account_id=context.account_id,
        region=context.region,
        type_key="/".join((context.category, owner, context.provider, context.version)),
        action_execution_id=context.action_execution_id,
        status=status,
        data=data,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    context.session.add(job)
    return job
