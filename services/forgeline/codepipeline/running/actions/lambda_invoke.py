"""Invoke / Lambda: the function (FunctionName, found through the Lambda function routes,
core/functions.py) is handed AWS's event, `{"CodePipeline.job": {id, accountId, data}}`,
and ends the action by calling PutJobSuccessResult or PutJobFailureResult with the job's
id, as a Lambda function in a pipeline does.

The function is called once the transition that made the job commits: a function that
answers the job before its HTTP reply must find the job there, and must not wait on the
execution's row this transaction holds.
"""

from __future__ import annotations

import logging
from typing import Any

from forgeline.codepipeline.running.actions.context import ActionContext, Outcome, Waiting
from forgeline.codepipeline.running.actions.custom_job import queue_job
from forgeline.core.db import on_commit
from forgeline.core.functions import (
    FunctionInvocationError,
    FunctionRoutes,
    FunctionRoutesError,
    HttpFunctionInvoker,
)

logger = logging.getLogger(__name__)
AWS = "AWS"


def run(context: ActionContext) -> Outcome:
    job = queue_job(context, AWS, "InProgress")
    function = context.configuration.get("FunctionName", "")
    event: dict[str, Any] = {
        "CodePipeline.job": {"id": job.id, "accountId": job.account_id, "data": job.data}
    }
    routes = context.settings.lambda_function_routes
    job_id = job.id
    on_commit(context.session, lambda: _invoke(routes, function, event, job_id))
    return Waiting(external_id=job.id)


def _invoke(routes: str, function: str, event: dict[str, Any], job_id: str) -> None:
    try:
        with HttpFunctionInvoker(FunctionRoutes.from_setting(routes)) as invoker:
            invoker.invoke(function, event)
    except (FunctionInvocationError, FunctionRoutesError) as exc:
        from forgeline.codepipeline.running.job_results import fail_job

        fail_job(job_id, f"The function {function} could not be invoked: {exc}")
