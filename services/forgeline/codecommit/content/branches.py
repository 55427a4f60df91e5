"""Branches through the API: create, delete, read, list, and the default branch."""

from __future__ import annotations

import pygit2

from forgeline.codecommit import gitstore
from forgeline.codecommit.content import refs as content_refs
from forgeline.codecommit.content.refs import is_hex_id
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow
from forgeline.core.pagination import request_page_tokens

LIST_PAGE_SIZE = 100
# A branch that keeps moving while DeleteBranch runs is retried this often (DeleteBranch
# declares no error for it, so giving up is a last resort).
DELETE_ATTEMPTS = 10


def create_branch(ctx: RequestContext, params: shapes.CreateBranchInput) -> None:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    branch = content_refs.check_branch_name(params.get("branchName"))
    commit_id = params.get("commitId")
    if not commit_id:
        raise errors.CommitIdRequiredException("A commit ID is required.")
    git = gitstore.open_git(repository)
    if gitstore.branch_head(git, branch) is not None:
        raise errors.BranchNameExistsException(f"Branch {branch} already exists.")
    if not is_hex_id(commit_id):
        raise errors.InvalidCommitIdException(f"{commit_id!r} is not a valid commit ID.")
    try:
        commit = git[commit_id]
    except (KeyError, ValueError, pygit2.GitError):
        commit = None
    if not isinstance(commit, pygit2.Commit):
        raise errors.CommitDoesNotExistException(f"Commit {commit_id} does not exist.")

    def exists() -> errors.BranchNameExistsException:
        return errors.BranchNameExistsException(f"Branch {branch} already exists.")

    gitstore.move_ref(
        ctx, repository, content_refs.branch_ref(branch), str(commit.id), None, exists
    )


def delete_branch(
    ctx: RequestContext, params: shapes.DeleteBranchInput
) -> shapes.DeleteBranchOutput:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    branch = content_refs.check_branch_name(params.get("branchName"))
    if repository.default_branch == branch:
        raise errors.DefaultBranchCannotBeDeletedException(
            f"{branch} is the default branch of {repository.name}; make another branch the "
            "default before deleting it."
        )
    git = gitstore.open_git(repository)
    for _ in range(DELETE_ATTEMPTS):
        head = gitstore.branch_head(git, branch)
        if head is None:
            return {}  # CodeCommit answers an empty result for a branch that is not there
        try:
            gitstore.move_ref(
                ctx,
                repository,
                content_refs.branch_ref(branch),
                gitstore.ZERO_OID,
                head,
                lambda: _moved(branch),
            )
        except errors.ConcurrentReferenceUpdateException:
            continue
        return {"deletedBranch": {"branchName": branch, "commitId": head}}
    raise _moved(branch)


def _moved(branch: str) -> errors.ConcurrentReferenceUpdateException:
    return errors.ConcurrentReferenceUpdateException(
        f"Branch {branch} kept changing while it was being deleted; try again."
    )


def get_branch(ctx: RequestContext, params: shapes.GetBranchInput) -> shapes.GetBranchOutput:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    branch = content_refs.check_branch_name(params.get("branchName"))
    head = gitstore.branch_head(gitstore.open_git(repository), branch)
    if head is None:
        raise errors.BranchDoesNotExistException(f"Branch {branch} does not exist.")
    return {"branch": {"branchName": branch, "commitId": head}}


def list_branches(
    ctx: RequestContext, params: shapes.ListBranchesInput
) -> shapes.ListBranchesOutput:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    names = gitstore.list_branches(gitstore.open_git(repository))
    scope = {"repository": repository.id}
    page, token = request_page_tokens(ctx).page(
        names, lambda name: name, scope, params.get("nextToken"), LIST_PAGE_SIZE
    )
    output: shapes.ListBranchesOutput = {"branches": page}
    if token:
        output["nextToken"] = token
    return output


def update_default_branch(ctx: RequestContext, params: shapes.UpdateDefaultBranchInput) -> None:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    branch = content_refs.check_branch_name(params.get("defaultBranchName"))
    git = gitstore.open_git(repository)
    if gitstore.branch_head(git, branch) is None:
        raise errors.BranchDoesNotExistException(f"Branch {branch} does not exist.")
    with session_scope() as session:
        fresh = session.get(Repository, repository.id)
        if fresh is None:
            raise errors.RepositoryDoesNotExistException(f"{repository.name} does not exist")
        if fresh.default_branch != branch:
            fresh.default_branch = branch
            fresh.updated_at = utcnow()
    gitstore.sync_head(git, branch)
