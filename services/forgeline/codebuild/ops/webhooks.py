"""CodeBuild webhook operations: CreateWebhook, UpdateWebhook, DeleteWebhook.

A project has at most one webhook, kept in `build_webhooks` and mirrored (without its
secret) into the project document so BatchGetProjects shows it. Which events a webhook
matches is services/forgeline/codebuild/webhook_filters.py's; the builds it starts,
services/forgeline/codebuild/webhooks.py's.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.orm import Session

from forgeline.codebuild import projects
from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.sources import repository_name_from_url
from forgeline.codebuild.tables.batches import BuildWebhook
from forgeline.codebuild.tables.projects import BuildProject
from forgeline.codebuild.webhook_filters import check_settings
from forgeline.codecommit import interface as codecommit
from forgeline.codecommit.interface import Repository
from forgeline.core.auth.crypto import encrypt
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.lifecycle import server_key
from forgeline.core.settings import get_settings

OAUTH_SOURCE_TYPES = ("GITHUB", "GITHUB_ENTERPRISE", "BITBUCKET", "GITLAB", "GITLAB_SELF_MANAGED")


def repository_of_project(session: Session, project: BuildProject) -> Repository:
    """The Forgeline repository a project builds, or the error CreateWebhook answers."""
    source = projects.stored_project(project).get("source")
    kind = source.get("type") if source else None
    if kind in OAUTH_SOURCE_TYPES:
        raise errors.OAuthProviderException(
            f"Forgeline cannot connect to {kind}: webhooks work for projects whose source is "
            "a CodeCommit repository on this server."
        )
    if not source or kind != "CODECOMMIT":
        raise errors.InvalidInputException(
            f"Webhooks are not supported for source type {kind}; the project's source must "
            "be a CodeCommit repository."
        )
    name = repository_name_from_url(source.get("location") or "")
    repository = None
    if name is not None:
        repository = codecommit.find_repository(session, project.account_id, project.region, name)
    if repository is None:
        raise errors.InvalidInputException(
            f"The project's source location {source.get('location')!r} does not name a "
            "CodeCommit repository of this account and region."
        )
    return repository


def new_secret() -> tuple[str, str]:
    """(secret, secret encrypted with the server key)."""
    secret = secrets.token_hex(20)
    return secret, encrypt(server_key(get_settings()), secret)


def webhook_output(
    webhook: BuildWebhook, project: BuildProject, *, secret: str | None = None
) -> shapes.Webhook:
    """botocore's Webhook shape. The secret is shown only when made (create, rotate).

    `url` is the clone URL of the repository the webhook watches; `payloadUrl` is the
    project's ARN, where events are delivered (inside Forgeline, not over HTTP).
    """
    settings = webhook.settings
    source = projects.stored_project(project).get("source")
    output: shapes.Webhook = {
        "url": (source.get("location") if source else None) or project.arn,
        "payloadUrl": webhook.payload_url,
        "filterGroups": settings.get("filterGroups") or [],
        "buildType": settings.get("buildType", "BUILD"),
        "manualCreation": False,
        "lastModifiedSecret": webhook.secret_modified_at,
        "status": "ACTIVE",
    }
    if settings.get("branchFilter"):
        output["branchFilter"] = settings["branchFilter"]
    if settings.get("pullRequestBuildPolicy"):
        output["pullRequestBuildPolicy"] = settings["pullRequestBuildPolicy"]
    if secret is not None:
        output["secret"] = secret
    return output


def mirror_into_project(project: BuildProject, shown: shapes.Webhook | None) -> None:
    """Show the webhook (never its secret) in the project, as BatchGetProjects does."""
    document = dict(project.document)
    if shown is None:
        document.pop("webhook", None)
    else:
        public: dict[str, Any] = {k: v for k, v in shown.items() if k != "secret"}
        # The document is JSON: keep the time as the epoch seconds the wire carries.
        public["lastModifiedSecret"] = round(shown["lastModifiedSecret"].timestamp(), 3)
        document["webhook"] = public
    project.document = document


class WebhookOperations:
    def create_webhook(
        self, ctx: RequestContext, params: shapes.CreateWebhookInput
    ) -> shapes.CreateWebhookOutput:
        with session_scope() as session:
            project = projects.get_project(
                session, ctx.account_id, ctx.region, params["projectName"], for_update=True
            )
            repository_of_project(session, project)
            if session.get(BuildWebhook, project.id) is not None:
                raise errors.ResourceAlreadyExistsException(
                    f"Webhook already exists for project {project.name}."
                )
            settings = check_settings(params, None)
            secret, encrypted = new_secret()
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
            shown = webhook_output(webhook, project, secret=secret)
            mirror_into_project(project, shown)
            return {"webhook": shown}

    def update_webhook(
        self, ctx: RequestContext, params: shapes.UpdateWebhookInput
    ) -> shapes.UpdateWebhookOutput:
        with session_scope() as session:
            project = projects.get_project(
                session, ctx.account_id, ctx.region, params["projectName"], for_update=True
            )
            webhook = session.get(BuildWebhook, project.id)
            if webhook is None:
                raise errors.ResourceNotFoundException(
                    f"Project {project.name} has no webhook; create one with CreateWebhook."
                )
            webhook.settings = check_settings(params, webhook.settings)
            secret = None
            if params.get("rotateSecret"):
                secret, webhook.secret_encrypted = new_secret()
                webhook.secret_modified_at = utcnow()
            shown = webhook_output(webhook, project, secret=secret)
            mirror_into_project(project, shown)
            return {"webhook": shown}

    def delete_webhook(
        self, ctx: RequestContext, params: shapes.DeleteWebhookInput
    ) -> shapes.DeleteWebhookOutput:
        with session_scope() as session:
            project = projects.get_project(
                session, ctx.account_id, ctx.region, params["projectName"], for_update=True
            )
            webhook = session.get(BuildWebhook, project.id)
            if webhook is None:
                raise errors.ResourceNotFoundException(f"Project {project.name} has no webhook.")
            session.delete(webhook)
            mirror_into_project(project, None)
            return {}
