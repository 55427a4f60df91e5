"""CodeBuild projects: create, update, delete, get, list, visibility, cache, images.

Source credentials and resource policies are their own mixins, composed here so the
provider (services/forgeline/codebuild/api.py) keeps one mixin per area.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.codebuild import privileges, projects
from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.ops.resource_policies import ResourcePolicyOperations, delete_policy
from forgeline.codebuild.ops.source_credentials import SourceCredentialOperations
from forgeline.codebuild.project_document import TAG_ERRORS
from forgeline.codebuild.tables.projects import BuildProject
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import Base, session_scope, utcnow
from forgeline.core.pagination import request_page_tokens

# AWS's default quota of build projects per account and region.
MAX_PROJECTS = 5000
LIST_PAGE_SIZE = 100
SORT_COLUMNS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "NAME": lambda row: (row.name,),
    "CREATED_TIME": lambda row: (row.created_at.timestamp(), row.name),
    "LAST_MODIFIED_TIME": lambda row: (row.updated_at.timestamp(), row.name),
}


def _mirror_tags(session: Session, row: BuildProject) -> None:
    """Keep the shared tag table in step with the project's own `tags` list, so
    services that read tags by ARN see CodeBuild projects too."""
    tagging.delete_all_tags(session, row.arn)
    tags = projects.stored_project(row).get("tags") or []
    pairs = {tag["key"]: tag.get("value") or "" for tag in tags}
    if pairs:
        tagging.put_tags(session, row.account_id, row.arn, pairs, TAG_ERRORS)


def _delete_webhook(session: Session, project_id: str) -> None:
    """A project's webhook goes with it (the webhook table belongs to the webhook code,
    keyed by project id; it is looked up by name to keep this module independent)."""
    table = Base.metadata.tables.get("build_webhooks")
    if table is not None and "project_id" in table.c:
        session.execute(table.delete().where(table.c.project_id == project_id))


class ProjectOperations(SourceCredentialOperations, ResourcePolicyOperations):
    # -- create / update / delete ---------------------------------------------------------
    def create_project(
        self, ctx: RequestContext, params: shapes.CreateProjectInput
    ) -> shapes.CreateProjectOutput:
        name = params["name"]
        document = projects.normalize_project(params)
        privileges.check_environment(ctx.account_id, document.get("environment"))
        arn = projects.project_arn(ctx.account_id, ctx.region, name)
        now = utcnow()
        try:
            with session_scope() as session:
                if projects.find_project(session, ctx.account_id, ctx.region, name) is not None:
                    raise errors.ResourceAlreadyExistsException(f"Project already exists: {arn}")
                count = session.scalar(
                    select(func.count())
                    .select_from(BuildProject)
                    .where(
                        BuildProject.account_id == ctx.account_id,
                        BuildProject.region == ctx.region,
                    )
                )
                if (count or 0) >= MAX_PROJECTS:
                    raise errors.AccountLimitExceededException(
                        f"Cannot have more than {MAX_PROJECTS} projects in account {ctx.account_id}"
                    )
                row = BuildProject(
                    id=str(uuid.uuid4()),
                    account_id=ctx.account_id,
                    region=ctx.region,
                    name=name,
                    arn=arn,
                    build_counter=0,
                    created_at=now,
                    updated_at=now,
                )
                row.document = projects.complete_document(document, row)
                session.add(row)
                session.flush()
                _mirror_tags(session, row)
                return {"project": projects.project_output(row)}
        except IntegrityError:
            # A concurrent CreateProject of the same name won the unique constraint.
            raise errors.ResourceAlreadyExistsException(f"Project already exists: {arn}") from None

    def update_project(
        self, ctx: RequestContext, params: shapes.UpdateProjectInput
    ) -> shapes.UpdateProjectOutput:
        with session_scope() as session:
            row = projects.get_project(
                session, ctx.account_id, ctx.region, params["name"], for_update=True
            )
            document = projects.normalize_project(params, row.document)
            if "environment" in params:
                # Only an environment given here is checked: a project made privileged
                # before the operator withdrew the permission can still be edited
                # otherwise (its builds are refused at StartBuild).
                privileges.check_environment(ctx.account_id, document.get("environment"))
            row.document = projects.complete_document(document, row)
            row.updated_at = utcnow()
            if "tags" in params:
                _mirror_tags(session, row)
            return {"project": projects.project_output(row)}

    def delete_project(
        self, ctx: RequestContext, params: shapes.DeleteProjectInput
    ) -> shapes.DeleteProjectOutput:
        # AWS answers success for a project that does not exist (the model declares no
        # ResourceNotFoundException for DeleteProject).
        with session_scope() as session:
            row = projects.find_project(session, ctx.account_id, ctx.region, params["name"])
            if row is not None:
                tagging.delete_all_tags(session, row.arn)
                delete_policy(session, row.arn)
                _delete_webhook(session, row.id)
                session.delete(row)
        return {}

    # -- read -----------------------------------------------------------------------------
    def batch_get_projects(
        self, ctx: RequestContext, params: shapes.BatchGetProjectsInput
    ) -> shapes.BatchGetProjectsOutput:
        identifiers = list(dict.fromkeys(params["names"]))  # each once, in request order
        wanted = {
            identifier: projects.name_from_identifier(ctx.account_id, ctx.region, identifier)
            for identifier in identifiers
        }
        names = {name for name in wanted.values() if name is not None}
        with session_scope(readonly=True) as session:
            rows = session.scalars(
                select(BuildProject).where(
                    BuildProject.account_id == ctx.account_id,
                    BuildProject.region == ctx.region,
                    BuildProject.name.in_(names),
                )
            ).all()
        by_name = {row.name: row for row in rows}
        found: list[shapes.Project] = []
        missing: list[str] = []
        for identifier in identifiers:
            row = by_name.get(wanted[identifier] or "")
            if row is None:
                missing.append(identifier)
            else:
                found.append(projects.project_output(row))
        return {"projects": found, "projectsNotFound": missing}

    def list_projects(
        self, ctx: RequestContext, params: shapes.ListProjectsInput
    ) -> shapes.ListProjectsOutput:
        sort_by = params.get("sortBy", "NAME")
        descending = params.get("sortOrder", "ASCENDING") == "DESCENDING"
        with session_scope(readonly=True) as session:
            # Only what sorting needs: the documents stay in the database.
            rows = session.execute(
                select(BuildProject.name, BuildProject.created_at, BuildProject.updated_at).where(
                    BuildProject.account_id == ctx.account_id,
                    BuildProject.region == ctx.region,
                )
            ).all()
        key = SORT_COLUMNS[sort_by]
        ordered = sorted(rows, key=key, reverse=descending)
        scope = {
            "sortBy": sort_by,
            "descending": descending,
        }
        page, token = request_page_tokens(ctx).page(
            ordered, key, scope, params.get("nextToken"), LIST_PAGE_SIZE, descending
        )
        output: shapes.ListProjectsOutput = {"projects": [row.name for row in page]}
        if token:
            output["nextToken"] = token
        return output

    def list_shared_projects(
        self, ctx: RequestContext, params: shapes.ListSharedProjectsInput
    ) -> shapes.ListSharedProjectsOutput:
        # Nothing is shared through AWS RAM here: every account sees only its own projects.
        return {"projects": []}

    # -- visibility -----------------------------------------------------------------------
    def update_project_visibility(
        self, ctx: RequestContext, params: shapes.UpdateProjectVisibilityInput
    ) -> shapes.UpdateProjectVisibilityOutput:
        visibility = params["projectVisibility"]
        with session_scope() as session:
            row = projects.get_project(
                session, ctx.account_id, ctx.region, params["projectArn"], for_update=True
            )
            document = dict(row.document)
            document["projectVisibility"] = visibility
            if visibility == "PUBLIC_READ":
                # The alias stays the same across unpublishing and publishing again.
                document.setdefault("publicProjectAlias", str(uuid.uuid4()))
            if "resourceAccessRole" in params:
                document["resourceAccessRole"] = params["resourceAccessRole"]
            row.document = document
            row.updated_at = utcnow()
            output: shapes.UpdateProjectVisibilityOutput = {
                "projectArn": row.arn,
                "projectVisibility": visibility,
            }
            if document.get("publicProjectAlias"):
                output["publicProjectAlias"] = document["publicProjectAlias"]
            return output

    # -- cache and images -----------------------------------------------------------------
    def invalidate_project_cache(
        self, ctx: RequestContext, params: shapes.InvalidateProjectCacheInput
    ) -> shapes.InvalidateProjectCacheOutput:
        from forgeline.codebuild.cache import invalidate_project_cache
        from forgeline.core.blobstore import get_blob_store
        from forgeline.core.settings import get_settings

        with session_scope(readonly=True) as session:
            row = projects.get_project(session, ctx.account_id, ctx.region, params["projectName"])
            name, cache = row.name, dict(projects.stored_project(row).get("cache") or {})
        settings = get_settings()
        invalidate_project_cache(
            settings, get_blob_store(settings), ctx.account_id, ctx.region, name, cache
        )
        return {}

    def list_curated_environment_images(
        self, ctx: RequestContext, params: shapes.ListCuratedEnvironmentImagesInput
    ) -> shapes.ListCuratedEnvironmentImagesOutput:
        from forgeline.codebuild.aws_images import parse_image_map
        from forgeline.codebuild.curated_images import curated_images
        from forgeline.core.settings import get_settings

        try:
            image_map = parse_image_map(get_settings().build_image_map)
        except ValueError:
            image_map = {}  # builds report the malformed setting; the listing still answers
        return {"platforms": curated_images(image_map)}
