"""CodeCommit repositories: create, get, list, rename, describe, delete, tag."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from forgeline.codecommit import repositories
from forgeline.codecommit.generated import errors
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import quick_read, session_scope, utcnow
from forgeline.core.pagination import request_page_tokens


class RepositoryOperations:
    # -- repositories --------------------------------------------------------------
    def create_repository(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            repository = repositories.create(session, ctx, params)
            return {"repositoryMetadata": repositories.metadata(repository)}

    @quick_read
    def get_repository(self, ctx: RequestContext, params: Any) -> Any:
        repository = repositories.read(ctx, params["repositoryName"])
        return {"repositoryMetadata": repositories.metadata(repository)}

    def batch_get_repositories(self, ctx: RequestContext, params: Any) -> Any:
        names = params["repositoryNames"]
        if len(names) > 25:
            raise errors.MaximumRepositoryNamesExceededException(
                "The maximum number of allowed repository names was exceeded. Currently, this number is 25."
            )
        found, missing, problems = [], [], []
        with session_scope(readonly=True) as session:
            for name in names:
                repositories.check_name(name)
                repository = repositories.find(session, ctx, name)
                if repository is None:
                    missing.append(name)
                    problems.append(
                        {
                            "repositoryName": name,
                            "errorCode": "RepositoryDoesNotExistException",
                            "errorMessage": f"{name} does not exist",
                        }
                    )
                else:
                    found.append(repositories.metadata(repository))
        return {"repositories": found, "repositoriesNotFound": missing, "errors": problems}

    def list_repositories(self, ctx: RequestContext, params: Any) -> Any:
        sort_by = params.get("sortBy", "repositoryName")
        descending = params.get("order", "ascending") == "descending"
        with session_scope(readonly=True) as session:
            rows = session.scalars(
                select(Repository).where(
                    Repository.account_id == ctx.account_id, Repository.region == ctx.region
                )
            ).all()

        def key(repository: Repository) -> tuple[Any, ...]:
            primary = (
                repository.name
                if sort_by == "repositoryName"
                else repository.updated_at.timestamp()
            )
            return (primary, repository.id)

        rows = sorted(rows, key=key, reverse=descending)
        scope = {
            "sortBy": sort_by,
            "descending": descending,
        }
        page, token = request_page_tokens(ctx).page(
            rows, key, scope, params.get("nextToken"), repositories.LIST_PAGE_SIZE, descending
        )
        return {
            "repositories": [{"repositoryName": r.name, "repositoryId": r.id} for r in page],
            "nextToken": token,
        }

    def delete_repository(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            return {"repositoryId": repositories.delete(session, ctx, params["repositoryName"])}

    def update_repository_name(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            repositories.rename(session, ctx, params["oldName"], params["newName"])
        return {}

    def update_repository_description(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            repository.description = params.get("repositoryDescription")
            repository.updated_at = utcnow()
        return {}

    def update_repository_encryption_key(self, ctx: RequestContext, params: Any) -> Any:
        key_id = params["kmsKeyId"]
        repositories.check_kms_key_id(key_id)
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            original = repository.kms_key_id
            repository.kms_key_id = key_id
            repository.updated_at = utcnow()
            return {"repositoryId": repository.id, "kmsKeyId": key_id, "originalKmsKeyId": original}

    # -- tags ----------------------------------------------------------------------------
    def tag_resource(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            repository = repositories.by_arn(session, ctx, params["resourceArn"])
            tagging.put_tags(
                session, ctx.account_id, repository.arn(), params["tags"], repositories.TAG_ERRORS
            )
        return {}

    def untag_resource(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            repository = repositories.by_arn(session, ctx, params["resourceArn"])
            tagging.remove_tags(
                session, repository.arn(), params["tagKeys"], repositories.TAG_ERRORS
            )
        return {}

    def list_tags_for_resource(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope(readonly=True) as session:
            repository = repositories.by_arn(session, ctx, params["resourceArn"])
            return {"tags": tagging.get_tags(session, repository.arn())}
