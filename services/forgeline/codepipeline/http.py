"""Routes the pipeline service serves besides the CodePipeline API: its webhooks.

    POST /webhooks/codepipeline/trigger?t=<token>&v=1

A call that passes the webhook's authentication and filters starts its target pipeline
(trigger Webhook); one that passes authentication but not the filters is answered and
starts nothing, as AWS's webhooks do.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from forgeline.codepipeline import webhook_rules
from forgeline.codepipeline.ops.webhooks import ROUTE
from forgeline.codepipeline.running.starting import start_execution
from forgeline.codepipeline.tables.pipelines import Pipeline
from forgeline.codepipeline.tables.webhooks import PipelineWebhook
from forgeline.core.db import session_scope, utcnow
from forgeline.core.settings import Settings


def mount(app: FastAPI, settings: Settings) -> None:
    @app.post(ROUTE, include_in_schema=False)
    async def trigger(request: Request, t: str = Query(default="")) -> JSONResponse:
        body = await request.body()
        client = request.client.host if request.client else ""
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, answer = _trigger(t, body, headers, client)
        return JSONResponse(answer, status_code=status)


def _trigger(
    token: str, body: bytes, headers: dict[str, str], client_ip: str
) -> tuple[int, dict[str, object]]:
    with session_scope() as session:
        webhook = session.scalars(
            select(PipelineWebhook).where(PipelineWebhook.token == token)
        ).first()
        if webhook is None or not token:
            return 404, {"message": "No such webhook."}
        definition = webhook.definition
        try:
            webhook_rules.authenticate(
                definition["authentication"],
                definition.get("authenticationConfiguration") or {},
                body,
                headers,
                client_ip,
            )
        except (webhook_rules.AuthenticationError, ValueError) as exc:
            return 403, {"message": f"Webhook authentication failed: {exc}"}
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError:
            return 400, {"message": "The webhook's body is not JSON."}
        pipeline = session.scalars(
            select(Pipeline).where(
                Pipeline.account_id == webhook.account_id,
                Pipeline.region == webhook.region,
                Pipeline.name == definition["targetPipeline"],
            )
        ).first()
        if pipeline is None:
            return 404, {"message": f"Pipeline {definition['targetPipeline']} does not exist."}
        action = next(
            (
                a
                for a in (pipeline.declaration.get("stages") or [{}])[0].get("actions", [])
                if a["name"] == definition["targetAction"]
            ),
            None,
        )
        configuration = (action or {}).get("configuration") or {}
        if not webhook_rules.matches(payload, definition.get("filters") or [], configuration):
            return 200, {"message": "The call does not match the webhook's filters."}
        arn = f"arn:aws:codepipeline:{webhook.region}:{webhook.account_id}:webhook:{webhook.id}"
        execution = start_execution(
            session, pipeline, {"triggerType": "Webhook", "triggerDetail": arn}
        )
        webhook.last_triggered = utcnow()
        return 200, {"pipelineExecutionId": execution.id}
