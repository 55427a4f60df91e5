"""CodeCommit repositories: create, get, list, rename, describe, delete, tag."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from forgeline.codecommit import repositories
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import quick_read, session_scope, utcnow
from forgeline.core.pagination import request_page_tokens


class RepositoryOperations:
    # -- repositories --------------------------------------------------------------
    def create_repository(
        self, ctx: RequestContext, params: shapes.CreateRepositoryInput
    ) -> shapes.CreateRepositoryOutput:
        with session_scope() as session:
            repository = repositories.create(session, ctx, params)
            return {"repositoryMetadata": repositories.metadata(repository)}

    @quick_read
    def get_repository(
        self, ctx: RequestContext, params: shapes.GetRepositoryInput
    ) -> shapes.GetRepositoryOutput:
        repository = repositories.read(ctx, params["repositoryName"])
        return {"repositoryMetadata": repositories.metadata(repository)}

    def batch_get_repositories(
        self, ctx: RequestContext, params: shapes.BatchGetRepositoriesInput
    ) -> shapes.BatchGetRepositoriesOutput:
        names = params["repositoryNames"]
        if len(names) > 25:
            raise errors.MaximumRepositoryNamesExceededException(
                "The maximum number of allowed repository names was exceeded. Currently, this number is 25."
            )
        found: list[shapes.RepositoryMetadata] = []
        missing: list[str] = []
        problems: list[shapes.BatchGetRepositoriesError] = []
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

    def list_repositories(
        self, ctx: RequestContext, params: shapes.ListRepositoriesInput
    ) -> shapes.ListRepositoriesOutput:
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

        ordered = sorted(rows, key=key, reverse=descending)
        scope = {
            "sortBy": sort_by,
            "descending": descending,
        }
        page, token = request_page_tokens(ctx).page(
            ordered, key, scope, params.get("nextToken"), repositories.LIST_PAGE_SIZE, descending
        )
        output: shapes.ListRepositoriesOutput = {
            "repositories": [{"repositoryName": r.name, "repositoryId": r.id} for r in page]
        }
        if token:
            output["nextToken"] = token
        return output

    def delete_repository(
        self, ctx: RequestContext, params: shapes.DeleteRepositoryInput
    ) -> shapes.DeleteRepositoryOutput:
        with session_scope() as session:
            deleted = repositories.delete(session, ctx, params["repositoryName"])
        # AWS answers no id for a repository that was already gone.
        return {"repositoryId": deleted} if deleted is not None else {}

    def update_repository_name(
        self, ctx: RequestContext, params: shapes.UpdateRepositoryNameInput
    ) -> None:
        with session_scope() as session:
            repositories.rename(session, ctx, params["oldName"], params["newName"])

    def update_repository_description(
        self, ctx: RequestContext, params: shapes.UpdateRepositoryDescriptionInput
    ) -> None:
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            repository.description = params.get("repositoryDescription")
            repository.updated_at = utcnow()

    def update_repository_encryption_key(
        self, ctx: RequestContext, params: shapes.UpdateRepositoryEncryptionKeyInput
    ) -> shapes.UpdateRepositoryEncryptionKeyOutput:
        key_id = params["kmsKeyId"]
        repositories.check_kms_key_id(key_id)
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            original = repository.kms_key_id
            repository.kms_key_id = key_id
            repository.updated_at = utcnow()
            output: shapes.UpdateRepositoryEncryptionKeyOutput = {
                "repositoryId": repository.id,
                "kmsKeyId": key_id,
            }
            if original is not None:
                output["originalKmsKeyId"] = original
            return output

    # -- tags ----------------------------------------------------------------------------
    def tag_resource(self, ctx: RequestContext, params: shapes.TagResourceInput) -> None:
        with session_scope() as session:
            repository = repositories.by_arn(session, ctx, params["resourceArn"])
            tagging.put_tags(
                session, ctx.account_id, repository.arn(), params["tags"], repositories.TAG_ERRORS
            )

    def untag_resource(self, ctx: RequestContext, params: shapes.UntagResourceInput) -> None:
        with session_scope() as session:
            repository = repositories.by_arn(session, ctx, params["resourceArn"])
            tagging.remove_tags(
                session, repository.arn(), params["tagKeys"], repositories.TAG_ERRORS
            )

    def list_tags_for_resource(
        self, ctx: RequestContext, params: shapes.ListTagsForResourceInput
    ) -> shapes.ListTagsForResourceOutput:
        with session_scope(readonly=True) as session:
            repository = repositories.by_arn(session, ctx, params["resourceArn"])
            return {"tags": tagging.get_tags(session, repository.arn())}
