"""CodeBuild projects: lookup by name or ARN, and the API view of a stored project.

Other parts of CodeBuild (StartBuild, webhooks, batches, reports) find projects through
`find_project`/`get_project` and show them through `project_output`. The document rules
(defaults, semantic checks) live in forgeline.codebuild.project_document.
"""

from __future__ import annotations

import copy
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.project_document import normalize_project
from forgeline.codebuild.tables.projects import BuildProject
from forgeline.core.settings import get_settings

__all__ = [
    "find_project",
    "get_project",
    "name_from_identifier",
    "normalize_project",
    "project_arn",
    "project_output",
    "stored_project",
]

PROJECT_ARN_PREFIX = "arn:aws:codebuild:"


def project_arn(account_id: str, region: str, name: str) -> str:
    return f"arn:aws:codebuild:{region}:{account_id}:project/{name}"


def name_from_identifier(account_id: str, region: str, name_or_arn: str) -> str | None:
    """The project name `name_or_arn` designates in this account and region.

    None for an ARN of another account, region or resource type: such a project is
    never visible here.
    """
    if not name_or_arn.startswith("arn:"):
        return name_or_arn
    parts = name_or_arn.split(":", 5)
    if len(parts) != 6 or not name_or_arn.startswith(PROJECT_ARN_PREFIX):
        return None
    _, _, _, arn_region, arn_account, resource = parts
    if arn_region != region or arn_account != account_id:
        return None
    kind, _, name = resource.partition("/")
    if kind != "project" or not name:
        return None
    return name


def find_project(
    session: Session,
    account_id: str,
    region: str,
    name_or_arn: str,
    *,
    for_update: bool = False,
) -> BuildProject | None:
    """The project named (or with the ARN) `name_or_arn` in this account/region, if any.

    `for_update` locks the row (Postgres) for a read-modify-write of its document.
    """
    name = name_from_identifier(account_id, region, name_or_arn)
    if name is None:
        return None
    query = select(BuildProject).where(
        BuildProject.account_id == account_id,
        BuildProject.region == region,
        BuildProject.name == name,
    )
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).first()


def not_found(account_id: str, region: str, name_or_arn: str) -> errors.ResourceNotFoundException:
    name = name_from_identifier(account_id, region, name_or_arn)
    arn = project_arn(account_id, region, name) if name is not None else name_or_arn
    return errors.ResourceNotFoundException(f"Project cannot be found: {arn}")


def get_project(
    session: Session,
    account_id: str,
    region: str,
    name_or_arn: str,
    *,
    for_update: bool = False,
) -> BuildProject:
    """Like `find_project`, but a missing project is AWS's ResourceNotFoundException."""
    project = find_project(session, account_id, region, name_or_arn, for_update=for_update)
    if project is None:
        raise not_found(account_id, region, name_or_arn)
    return project


def stored_project(row: BuildProject) -> shapes.Project:
    """The stored document, read as the `Project` shape it is kept in."""
    # The JSON column holds what normalize_project and complete_document made: the model's
    # Project shape (tables/projects.py), with the webhook's time as epoch seconds.
    return cast(shapes.Project, row.document)


def project_output(row: BuildProject) -> shapes.Project:
    """The project as botocore's `Project` shape (BatchGetProjects, CreateProject, ...)."""
    output = copy.deepcopy(stored_project(row))
    output["name"] = row.name
    output["arn"] = row.arn
    output["created"] = row.created_at
    output["lastModified"] = row.updated_at
    return output


def default_encryption_key(account_id: str, region: str) -> str:
    """The key AWS names when a project gives none: the account's managed S3 key."""
    return f"arn:aws:kms:{region}:{account_id}:alias/aws/s3"


def badge_url(project_id: str) -> str:
    settings = get_settings()
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return f"{base.rstrip('/')}/badges?uuid={project_id}&branch=main"


def complete_document(document: dict[str, Any], row: BuildProject) -> dict[str, Any]:
    """Fill in what depends on the stored project: name, ARN, default key, badge URL."""
    document["name"] = row.name
    document["arn"] = row.arn
    document.setdefault("encryptionKey", default_encryption_key(row.account_id, row.region))
    artifacts = document["artifacts"]
    if artifacts["type"] == "S3":
        # The console's default; builds need a name to store the output under.
        artifacts.setdefault("name", row.name)
    badge = document["badge"]
    if badge.get("badgeEnabled"):
        badge.setdefault("badgeRequestUrl", badge_url(row.id))
    return document
