"""Reading content: GetFile, GetFolder, GetBlob, GetCommit, BatchGetCommits."""

from __future__ import annotations

import pygit2

from forgeline.codecommit import gitstore
from forgeline.codecommit.content import paths as content_paths
from forgeline.codecommit.content import refs as content_refs
from forgeline.codecommit.content.objects import (
    BLOB_MODES,
    check_readable_size,
    commit_info,
    entry_at,
    folder_listing,
    lookup_commit,
    mode_name,
    read_blob,
)
from forgeline.codecommit.content.refs import is_hex_id
from forgeline.codecommit.generated import errors, shapes
from forgeline.core.context import RequestContext

MAX_BATCH_COMMITS = 100


def get_file(ctx: RequestContext, params: shapes.GetFileInput) -> shapes.GetFileOutput:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    path = content_paths.file_path(params.get("filePath"))
    git = gitstore.open_git(repository)
    commit = content_refs.resolve(git, repository, params.get("commitSpecifier"))
    obj = entry_at(commit.tree, path)
    if obj is None or obj.filemode not in BLOB_MODES:
        raise errors.FileDoesNotExistException(f"{path} does not exist in commit {commit.id}.")
    _, size = git.odb.read_header(obj.id)
    check_readable_size(size, path)
    assert isinstance(obj, pygit2.Blob)
    return {
        "commitId": str(commit.id),
        "blobId": str(obj.id),
        "filePath": path,
        "fileMode": mode_name(obj.filemode),
        "fileSize": size,
        "fileContent": obj.data,
    }


def get_folder(ctx: RequestContext, params: shapes.GetFolderInput) -> shapes.GetFolderOutput:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    folder = content_paths.folder_path(params.get("folderPath"))
    git = gitstore.open_git(repository)
    commit = content_refs.resolve(git, repository, params.get("commitSpecifier"))
    tree = entry_at(commit.tree, folder)
    if not isinstance(tree, pygit2.Tree):
        raise errors.FolderDoesNotExistException(
            f"{folder or '/'} is not a folder in commit {commit.id}."
        )
    listing = folder_listing(tree, folder)
    return {
        "commitId": str(commit.id),
        "folderPath": folder,
        "treeId": str(tree.id),
        "subFolders": listing.sub_folders,
        "files": listing.files,
        "symbolicLinks": listing.symbolic_links,
        "subModules": listing.sub_modules,
    }


def get_blob(ctx: RequestContext, params: shapes.GetBlobInput) -> shapes.GetBlobOutput:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    content = read_blob(gitstore.open_git(repository), params.get("blobId") or "")
    return {"content": content}


def _commit_by_id(git: pygit2.Repository, commit_id: str | None) -> pygit2.Commit:
    if not commit_id:
        raise errors.CommitIdRequiredException("A commit ID is required.")
    if not is_hex_id(commit_id, full=True):
        raise errors.InvalidCommitIdException(
            f"{commit_id!r} is not a full commit ID (40 hexadecimal characters)."
        )
    commit = lookup_commit(git, commit_id)
    if commit is None:
        raise errors.CommitIdDoesNotExistException(f"Commit {commit_id} does not exist.")
    return commit


def get_commit(ctx: RequestContext, params: shapes.GetCommitInput) -> shapes.GetCommitOutput:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    commit = _commit_by_id(gitstore.open_git(repository), params.get("commitId"))
    return {"commit": commit_info(commit)}


def batch_get_commits(
    ctx: RequestContext, params: shapes.BatchGetCommitsInput
) -> shapes.BatchGetCommitsOutput:
    commit_ids = params.get("commitIds") or []
    if not commit_ids:
        raise errors.CommitIdsListRequiredException("A list of commit IDs is required.")
    if len(commit_ids) > MAX_BATCH_COMMITS:
        raise errors.CommitIdsLimitExceededException(
            f"{len(commit_ids)} commit IDs were given; the limit is {MAX_BATCH_COMMITS}."
        )
    repository = content_refs.load(ctx, params.get("repositoryName"))
    git = gitstore.open_git(repository)
    found: list[shapes.Commit] = []
    problems: list[shapes.BatchGetCommitsError] = []
    for commit_id in commit_ids:
        try:
            found.append(commit_info(_commit_by_id(git, commit_id)))
        except (
            errors.CommitIdRequiredException,
            errors.InvalidCommitIdException,
            errors.CommitIdDoesNotExistException,
        ) as problem:
            problems.append(
                {"commitId": commit_id, "errorCode": problem.code, "errorMessage": problem.message}
            )
    return {"commits": found, "errors": problems}
