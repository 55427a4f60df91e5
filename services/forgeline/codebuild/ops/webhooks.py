"""CodeBuild webhook operations: CreateWebhook, UpdateWebhook, DeleteWebhook.

A project has at most one webhook, kept in `build_webhooks` and mirrored (without its
secret) into the project document so BatchGetProjects shows it. The matching and the
builds it starts live in services/forgeline/codebuild/webhooks.py.
"""

from __future__ import annotations

from typing import Any

from forgeline.codebuild import projects, webhooks
from forgeline.codebuild.generated import errors
from forgeline.codebuild.tables.batches import BuildWebhook
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow


class WebhookOperations:
    def create_webhook(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            project = projects.get_project(
                session, ctx.account_id, ctx.region, params["projectName"], for_update=True
            )
            webhooks.repository_of_project(session, project)
            if session.get(BuildWebhook, project.id) is not None:
                raise errors.ResourceAlreadyExistsException(
                    f"Webhook already exists for project {project.name}."
                )
            settings = webhooks.check_settings(params, None)
            secret, encrypted = webhooks.new_secret()
            now = utcnow()
            webhook = BuildWebhook(
                project_id=project.id,
                account_id=ctx.account_id,
                region=ctx.region,
                settings=settings,
                payload_url=project.arn,
                secret_encrypted=encrypted,
                secret_modified_at=now,
                created_at=now,
            )
            session.add(webhook)
            shown = webhooks.webhook_output(webhook, project, secret=secret)
            webhooks.mirror_into_project(project, shown)
            return {"webhook": shown}

    def update_webhook(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            project = projects.get_project(
                session, ctx.account_id, ctx.region, params["projectName"], for_update=True
            )
            webhook = session.get(BuildWebhook, project.id)
            if webhook is None:
                raise errors.ResourceNotFoundException(
                    f"Project {project.name} has no webhook; create one with CreateWebhook."
                )
            webhook.settings = webhooks.check_settings(params, webhook.settings)
            secret = None
            if params.get("rotateSecret"):
                secret, webhook.secret_encrypted = webhooks.new_secret()
                webhook.secret_modified_at = utcnow()
            shown = webhooks.webhook_output(webhook, project, secret=secret)
            webhooks.mirror_into_project(project, shown)
            return {"webhook": shown}

    def delete_webhook(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            project = projects.get_project(
                session, ctx.account_id, ctx.region, params["projectName"], for_update=True
            )
            webhook = session.get(BuildWebhook, project.id)
            if webhook is None:
                raise errors.ResourceNotFoundException(f"Project {project.name} has no webhook.")
            session.delete(webhook)
            webhooks.mirror_into_project(project, None)
            return {}
