"""Webhooks: PutWebhook (create or replace by name), ListWebhooks, DeleteWebhook, and
Register/DeregisterWebhookWithThirdParty.

Forgeline serves each webhook at the URL PutWebhook answers (http.py). On AWS, registering
with the third party configures GitHub to call that URL; there is no third party to reach
here, so registering checks the webhook exists and the caller points its sender at the
URL itself.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codepipeline import webhook_rules
from forgeline.codepipeline.generated import errors, shapes
from forgeline.codepipeline.ops.pipelines import find_pipeline
from forgeline.codepipeline.ops.tags import TAG_ERRORS, tags_from_list
from forgeline.codepipeline.tables.webhooks import PipelineWebhook
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import page_size, request_page_tokens
from forgeline.core.settings import get_settings

ROUTE = "/webhooks/codepipeline/trigger"
MAX_WEBHOOKS = 300  # AWS's quota per account and region
LIST_PAGE_SIZE = 100


def webhook_url(token: str) -> str:
    settings = get_settings()
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    if "0.0.0.0" in base:
        base = base.replace("0.0.0.0", "127.0.0.1")
    return f"{base}{ROUTE}?t={token}&v=1"


def webhook_arn(ctx: RequestContext, webhook_id: str) -> str:
    return ctx.arn("codepipeline", f"webhook:{webhook_id}")


def list_item(
    ctx: RequestContext, session: Session, row: PipelineWebhook
) -> shapes.ListWebhookItem:
    arn = webhook_arn(ctx, row.id)
    item: shapes.ListWebhookItem = {
        "definition": cast(shapes.WebhookDefinition, row.definition),
        "url": webhook_url(row.token),
        "arn": arn,
    }
    if row.last_triggered is not None:
        item["lastTriggered"] = row.last_triggered
    tags = tagging.get_tags(session, arn)
    if tags:
        item["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    return item


class WebhookOperations:
    def put_webhook(
        self, ctx: RequestContext, params: shapes.PutWebhookInput
    ) -> shapes.PutWebhookOutput:
        definition = params["webhook"]
        problem = webhook_rules.check_definition(
            definition["authentication"],
            {str(k): str(v) for k, v in definition["authenticationConfiguration"].items()},
        )
        if problem:
            raise errors.InvalidWebhookAuthenticationParametersException(problem)
        for rule in definition["filters"]:
            try:
                webhook_rules.parse_path(rule["jsonPath"])
            except webhook_rules.FilterPatternError as exc:
                raise errors.InvalidWebhookFilterPatternException(str(exc)) from None
        with session_scope() as session:
            pipeline = find_pipeline(session, ctx, definition["targetPipeline"])
            if pipeline is None:
                raise errors.PipelineNotFoundException(
                    f"Pipeline {definition['targetPipeline']} does not exist."
                )
            sources = [
                action["name"]
                for action in (pipeline.declaration.get("stages") or [{}])[0].get("actions", [])
            ]
            if definition["targetAction"] not in sources:
                raise errors.ValidationException(
                    f"{definition['targetAction']} is not a source action of pipeline "
                    f"{pipeline.name} (its source actions: {', '.join(sources)})."
                )
            row = _find(session, ctx, definition["name"])
            if row is None:
                if _count(session, ctx) >= MAX_WEBHOOKS:
                    raise errors.LimitExceededException(
                        f"An account can have at most {MAX_WEBHOOKS} webhooks in a region."
                    )
                row = PipelineWebhook(
                    id=str(uuid.uuid4()),
                    account_id=ctx.account_id,
                    region=ctx.region,
                    name=definition["name"],
                    token=secrets.token_hex(24),
                    created_at=utcnow(),
                )
                session.add(row)
            row.definition = dict(definition)
            session.flush()
            tags = tags_from_list(params.get("tags") or [])
            if tags:
                tagging.put_tags(
                    session, ctx.account_id, webhook_arn(ctx, row.id), tags, TAG_ERRORS
                )
            return {"webhook": list_item(ctx, session, row)}

    def list_webhooks(
        self, ctx: RequestContext, params: shapes.ListWebhooksInput
    ) -> shapes.ListWebhooksOutput:
        limit = page_size(
            params.get("MaxResults"),
            default=LIST_PAGE_SIZE,
            maximum=LIST_PAGE_SIZE,
            member="MaxResults",
            invalid=errors.ValidationException,
        )
        with session_scope(readonly=True) as session:
            rows = list(
                session.scalars(
                    select(PipelineWebhook)
                    .where(
                        PipelineWebhook.account_id == ctx.account_id,
                        PipelineWebhook.region == ctx.region,
                    )
                    .order_by(PipelineWebhook.name)
                )
            )
            page, token = request_page_tokens(ctx).page(
                rows, lambda r: r.name, {}, params.get("NextToken"), limit
            )
            output: shapes.ListWebhooksOutput = {
                "webhooks": [list_item(ctx, session, row) for row in page]
            }
        if token:
            output["NextToken"] = token
        return output

    def delete_webhook(
        self, ctx: RequestContext, params: shapes.DeleteWebhookInput
    ) -> shapes.DeleteWebhookOutput:
        with session_scope() as session:
            row = _find(session, ctx, params["name"])
            if row is not None:
                tagging.delete_all_tags(session, webhook_arn(ctx, row.id))
                session.delete(row)
        return {}

    def register_webhook_with_third_party(
        self, ctx: RequestContext, params: shapes.RegisterWebhookWithThirdPartyInput
    ) -> shapes.RegisterWebhookWithThirdPartyOutput:
        _require(ctx, params.get("webhookName"))
        return {}

    def deregister_webhook_with_third_party(
        self, ctx: RequestContext, params: shapes.DeregisterWebhookWithThirdPartyInput
    ) -> shapes.DeregisterWebhookWithThirdPartyOutput:
        _require(ctx, params.get("webhookName"))
        return {}


def _find(session: Session, ctx: RequestContext, name: str) -> PipelineWebhook | None:
    return session.scalars(
        select(PipelineWebhook).where(
            PipelineWebhook.account_id == ctx.account_id,
            PipelineWebhook.region == ctx.region,
            PipelineWebhook.name == name,
        )
    ).first()


def _count(session: Session, ctx: RequestContext) -> int:
    return len(
        session.scalars(
            select(PipelineWebhook.id).where(
                PipelineWebhook.account_id == ctx.account_id, PipelineWebhook.region == ctx.region
            )
        ).all()
    )


def _require(ctx: RequestContext, name: str | None) -> Any:
    with session_scope(readonly=True) as session:
        if not name or _find(session, ctx, name) is None:
            raise errors.WebhookNotFoundException(f"The webhook {name} does not exist.")
