"""Invoking a Lambda or ECS deployment's hook functions, as a job.

A job (the work layer's leased row) because the call goes over the network and must not
hold the deployment's row lock; a worker lost mid-call hands it to another, and a function
invoked twice sees the same execution id (its verdict counts once). The function's verdict
comes back later through PutLifecycleEventHookExecutionStatus; only a failure to hand it
the payload is reported from here (HookInvocationFailed).
"""

from __future__ import annotations

from typing import Any, TypedDict

from sqlalchemy.orm import Session

from forgeline.codedeploy.orchestrator.effects import InvokeHook
from forgeline.codedeploy.orchestrator.events import HookInvocationFailed
from forgeline.codedeploy.tables.deployments import Deployment
from forgeline.core.db import session_scope
from forgeline.core.functions import (
    FunctionInvocationError,
    FunctionRoutes,
    FunctionRoutesError,
    HttpFunctionInvoker,
)
from forgeline.core.settings import get_settings
from forgeline.core.work.jobs import Heartbeat, enqueue, job_kind

INVOKE_HOOK_JOB = "codedeploy.invoke_hook"


class HookPayload(TypedDict):
    DeploymentId: str
    LifecycleEventHookExecutionId: str


def hook_payload(deployment_id: str, lifecycle_event_hook_execution_id: str) -> HookPayload:
    """What AWS passes a hook function: the two ids its verdict has to quote."""
    return {
        "DeploymentId": deployment_id,
        "LifecycleEventHookExecutionId": lifecycle_event_hook_execution_id,
    }


def enqueue_invocation(session: Session, deployment: Deployment, hook: InvokeHook) -> None:
    """Queue the call; it starts once the transition that asked for it commits."""
    enqueue(
        session,
        INVOKE_HOOK_JOB,
        {
            "deploymentId": deployment.id,
            "lifecycleEvent": hook.lifecycle_event,
            "functionName": hook.function_name,
            "hookExecutionId": hook.hook_execution_id,
        },
    )


@job_kind(INVOKE_HOOK_JOB)
def invoke_hook(payload: dict[str, Any], heartbeat: Heartbeat) -> dict[str, Any]:
    from forgeline.codedeploy.deploying import driver

    function = str(payload["functionName"])
    event = str(payload["lifecycleEvent"])
    problem: str | None = None
    try:
        routes = FunctionRoutes.from_setting(get_settings().lambda_function_routes)
        with HttpFunctionInvoker(routes) as invoker:
            invoker.invoke(
                function,
                hook_payload(str(payload["deploymentId"]), str(payload["hookExecutionId"])),
            )
    except (FunctionInvocationError, FunctionRoutesError) as exc:
        problem = str(exc)
    if problem is None:
        return {"invoked": True}
    with session_scope() as session:
        locked = driver.lock(session, str(payload["deploymentId"]))
        if locked is not None:
            driver.apply(session, locked, HookInvocationFailed(event, problem))
    return {"invoked": False, "reason": problem}
