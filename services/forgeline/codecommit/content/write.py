"""PutFile, DeleteFile and CreateCommit: check the request, edit the tree, commit, move the branch.

Everything that can be refused is refused before the branch moves; objects are written
only once the request is known to be good, and the branch moves last (compare-and-swap).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import NamedTuple

import pygit2

from forgeline.codecommit import gitstore
from forgeline.codecommit.content import commits as content_commits
from forgeline.codecommit.content import paths as content_paths
from forgeline.codecommit.content import refs as content_refs
from forgeline.codecommit.content.objects import (
    MODE_BY_NAME,
    MODE_NORMAL,
    mode_name,
)
from forgeline.codecommit.content.tree import KEEP_FILE, TreeEditor
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext

MAX_FILE_BYTES = 6 * 1024 * 1024
MAX_FOLDER_CHANGE_BYTES = 6 * 1024 * 1024
MAX_COMMIT_CHANGE_BYTES = 7 * 1024 * 1024
MAX_FILE_ENTRIES = 100


def _check_file_size(path: str, content: bytes) -> None:
    if len(content) > MAX_FILE_BYTES:
        raise errors.FileContentSizeLimitExceededException(
            f"{path} is {len(content)} bytes; files added through the API are limited to "
            f"{MAX_FILE_BYTES} bytes."
        )


def _check_change_sizes(contents: dict[str, int]) -> None:
    """The commit-wide and per-folder limits on new content (bytes by path)."""
    by_folder: dict[str, int] = defaultdict(int)
    for path, size in contents.items():
        by_folder[content_paths.parent_of(path)] += size
    for folder, size in sorted(by_folder.items()):
        if size > MAX_FOLDER_CHANGE_BYTES:
            raise errors.FolderContentSizeLimitExceededException(
                f"The changes to folder {folder or '/'} add up to {size} bytes; the limit is "
                f"{MAX_FOLDER_CHANGE_BYTES} bytes."
            )
    total = sum(contents.values())
    if total > MAX_COMMIT_CHANGE_BYTES:
        raise errors.FileContentSizeLimitExceededException(
            f"The file changes add up to {total} bytes; a commit made through the API is "
            f"limited to {MAX_COMMIT_CHANGE_BYTES} bytes."
        )


def _commit_and_move(
    ctx: RequestContext,
    repository: Repository,
    git: pygit2.Repository,
    branch: str,
    tip: content_commits.BranchTip,
    tree_id: str,
    who: content_commits.Identity,
) -> str:
    parents = [tip.old_id] if tip.old_id else []
    commit_id = content_commits.write_commit(git, tree_id, parents, who)
    gitstore.move_ref(
        ctx, repository, tip.ref, commit_id, tip.old_id, content_commits.outdated(branch)
    )
    return commit_id


# -- PutFile ------------------------------------------------------------------------------
def put_file(ctx: RequestContext, params: shapes.PutFileInput) -> shapes.PutFileOutput:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    branch = content_refs.check_branch_name(params.get("branchName"))
    path = content_paths.file_path(params.get("filePath"))
    content = params.get("fileContent")
    if not content:
        raise errors.FileContentRequiredException(
            "The file content is empty; empty files cannot be added with PutFile."
        )
    _check_file_size(path, content)
    _check_change_sizes({path: len(content)})
    who = content_commits.identity(
        ctx, params.get("name"), params.get("email"), params.get("commitMessage")
    )
    git = gitstore.open_git(repository)
    tip = content_commits.branch_tip(git, branch, params.get("parentCommitId"), may_create=True)
    editor = TreeEditor(git, tip.tree)
    existing = editor.file(path)
    requested_mode = params.get("fileMode")
    if requested_mode is not None:
        mode = MODE_BY_NAME[requested_mode]
    else:
        mode = existing.mode if existing is not None else MODE_NORMAL
    blob_id = str(git.create_blob(content))
    if existing is not None and existing.oid == blob_id and existing.mode == mode:
        raise errors.SameFileContentException(
            f"{path} already has this content on branch {branch}."
        )
    editor.put(path, blob_id, mode)
    tree_id = editor.write()
    commit_id = _commit_and_move(ctx, repository, git, branch, tip, tree_id, who)
    return {"commitId": commit_id, "blobId": blob_id, "treeId": tree_id}


# -- DeleteFile ---------------------------------------------------------------------------
def delete_file(ctx: RequestContext, params: shapes.DeleteFileInput) -> shapes.DeleteFileOutput:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    branch = content_refs.check_branch_name(params.get("branchName"))
    path = content_paths.file_path(params.get("filePath"))
    who = content_commits.identity(
        ctx, params.get("name"), params.get("email"), params.get("commitMessage")
    )
    git = gitstore.open_git(repository)
    tip = content_commits.branch_tip(git, branch, params.get("parentCommitId"), may_create=False)
    editor = TreeEditor(git, tip.tree)
    removed = editor.delete(path)
    tree_id = editor.write(keep_empty_folders=bool(params.get("keepEmptyFolders")))
    commit_id = _commit_and_move(ctx, repository, git, branch, tip, tree_id, who)
    return {"commitId": commit_id, "blobId": removed.oid, "treeId": tree_id, "filePath": path}


# -- CreateCommit -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Put:
    path: str
    mode: int | None
    content: bytes | None
    source: str | None
    is_move: bool


def _parse_puts(entries: list[shapes.PutFileEntry]) -> list[_Put]:
    puts = []
    for entry in entries:
        path = content_paths.file_path(entry.get("filePath"))
        content = entry.get("fileContent")
        source = entry.get("sourceFile")
        if content is not None and source is not None:
            raise errors.FileContentAndSourceFileSpecifiedException(
                f"{path}: give either fileContent or sourceFile, not both."
            )
        if content is None and source is None:
            raise errors.SourceFileOrContentRequiredException(
                f"{path}: fileContent or sourceFile is required."
            )
        source_path = None
        if source is not None:
            source_path = content_paths.file_path(source.get("filePath"))
            if source_path.rpartition("/")[2] == KEEP_FILE:
                raise errors.RestrictedSourceFileException(
                    f"{source_path}: a {KEEP_FILE} file cannot be copied or moved."
                )
        else:
            assert content is not None
            _check_file_size(path, content)
        mode = entry.get("fileMode")
        puts.append(
            _Put(
                path=path,
                mode=MODE_BY_NAME[mode] if mode is not None else None,
                content=content,
                source=source_path,
                is_move=bool(source and source.get("isMove")),
            )
        )
    return puts


def _check_distinct_paths(
    puts: list[_Put], deletes: list[str], modes: list[tuple[str, int]]
) -> None:
    seen: set[str] = set()
    touched = [p.path for p in puts] + [p.source for p in puts if p.is_move and p.source]
    touched += deletes + [path for path, _ in modes]
    for put in puts:
        if put.source == put.path:
            raise errors.SamePathRequestException(f"{put.path} is both source and destination.")
    for path in touched:
        if path in seen:
            raise errors.SamePathRequestException(
                f"{path} is named by more than one change in this commit."
            )
        seen.add(path)
    put_paths = {p.path for p in puts}
    for path in put_paths:
        folder = content_paths.parent_of(path)
        while folder:
            if folder in put_paths:
                raise errors.PutFileEntryConflictException(
                    f"{folder} is added as a file and as a folder of {path}."
                )
            folder = content_paths.parent_of(folder)


def create_commit(
    ctx: RequestContext, params: shapes.CreateCommitInput
) -> shapes.CreateCommitOutput:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    branch = content_refs.check_branch_name(params.get("branchName"))
    put_entries = params.get("putFiles") or []
    delete_entries = params.get("deleteFiles") or []
    mode_entries = params.get("setFileModes") or []
    count = len(put_entries) + len(delete_entries) + len(mode_entries)
    if count == 0:
        raise errors.FileEntryRequiredException(
            "A commit needs at least one file to put, delete or change the mode of."
        )
    if count > MAX_FILE_ENTRIES:
        raise errors.MaximumFileEntriesExceededException(
            f"{count} file changes were given; a commit takes at most {MAX_FILE_ENTRIES}."
        )
    puts = _parse_puts(put_entries)
    deletes = [content_paths.file_path(entry.get("filePath")) for entry in delete_entries]
    modes = [
        (content_paths.file_path(entry.get("filePath")), MODE_BY_NAME[entry["fileMode"]])
        for entry in mode_entries
    ]
    _check_distinct_paths(puts, deletes, modes)
    _check_change_sizes({p.path: len(p.content) for p in puts if p.content is not None})
    who = content_commits.identity(
        ctx, params.get("authorName"), params.get("email"), params.get("commitMessage")
    )
    git = gitstore.open_git(repository)
    tip = content_commits.branch_tip(git, branch, params.get("parentCommitId"), may_create=True)
    editor = TreeEditor(git, tip.tree)
    base = TreeEditor(git, tip.tree)  # sources are read as they are in the parent

    sources = {}
    for put in puts:
        if put.source is not None:
            found = base.file(put.source)
            if found is None:
                raise errors.FileDoesNotExistException(
                    f"The source file {put.source} does not exist."
                )
            sources[put.path] = found
    for put in puts:
        if put.is_move and put.source is not None:
            editor.delete(put.source)
    for path in deletes:
        editor.delete(path)
    for put in puts:
        existing = editor.file(put.path)
        if put.content is not None:
            oid = str(git.create_blob(put.content))
            # New content keeps the mode of the file it replaces unless told otherwise.
            mode = existing.mode if existing is not None else MODE_NORMAL
        else:
            oid, mode = sources[put.path]  # a copy or move keeps its source's mode
        if put.mode is not None:
            mode = put.mode
        editor.put(put.path, oid, mode)
    for path, mode in modes:
        editor.set_mode(path, mode)

    tree_id = editor.write(keep_empty_folders=bool(params.get("keepEmptyFolders")))
    if tip.commit is not None and tree_id == str(tip.commit.tree_id):
        raise errors.NoChangeException("The commit would not change any file.")
    changes = _changed_files(git, tip.tree, tree_id)
    commit_id = _commit_and_move(ctx, repository, git, branch, tip, tree_id, who)
    return {
        "commitId": commit_id,
        "treeId": tree_id,
        "filesAdded": changes.added,
        "filesUpdated": changes.updated,
        "filesDeleted": changes.deleted,
    }


class _ChangedFiles(NamedTuple):
    added: list[shapes.FileMetadata]
    updated: list[shapes.FileMetadata]
    deleted: list[shapes.FileMetadata]


def _changed_files(
    git: pygit2.Repository, before: pygit2.Tree | None, after_id: str
) -> _ChangedFiles:
    after = git[after_id]
    assert isinstance(after, pygit2.Tree)
    flags = pygit2.enums.DiffOption.INCLUDE_TYPECHANGE
    if before is None:
        diff = after.diff_to_tree(flags=flags, swap=True)
    else:
        diff = before.diff_to_tree(after, flags=flags)
    result = _ChangedFiles([], [], [])
    status = pygit2.enums.DeltaStatus
    for delta in diff.deltas:
        if delta.status == status.DELETED:
            side, bucket = delta.old_file, result.deleted
        elif delta.status == status.ADDED:
            side, bucket = delta.new_file, result.added
        else:
            side, bucket = delta.new_file, result.updated
        bucket.append(
            {
                "absolutePath": content_paths.display(side.raw_path),
                "blobId": str(side.id),
                "fileMode": mode_name(int(side.mode)),
            }
        )
    return result
