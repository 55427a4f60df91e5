"""A commit as other services hand it on: its metadata, its tree as a zip file, and the
paths it changed.

CodePipeline's CodeCommit source action outputs the tree as a zip artifact (AWS's default
CODE_ZIP format: the files at the repository's root, no `.git`), with the commit's
metadata as output variables.
"""

from __future__ import annotations

import datetime as dt
import io
import stat
import zipfile
from dataclasses import dataclass

import pygit2

# Zip entries carry the Unix mode in the top 16 bits of external_attr.
_UNIX_MODE_SHIFT = 16


@dataclass(frozen=True)
class CommitInfo:
    commit_id: str
    message: str
    author_name: str
    author_email: str
    author_date: dt.datetime
    committer_date: dt.datetime


def commit_info(git: pygit2.Repository, commit_id: str) -> CommitInfo:
    commit = git.get(commit_id)
    if not isinstance(commit, pygit2.Commit):
        raise KeyError(commit_id)
    return CommitInfo(
        commit_id=str(commit.id),
        message=commit.message,
        author_name=commit.author.name,
        author_email=commit.author.email,
        author_date=_when(commit.author),
        committer_date=_when(commit.committer),
    )


def zip_tree(git: pygit2.Repository, commit_id: str) -> bytes:
    """The commit's files in a zip, with their executable bits and symbolic links kept."""
    commit = git.get(commit_id)
    if not isinstance(commit, pygit2.Commit):
        raise KeyError(commit_id)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        _add_tree(git, archive, commit.tree, "", commit.committer.time)
    return buffer.getvalue()


def _add_tree(
    git: pygit2.Repository,
    archive: zipfile.ZipFile,
    tree: pygit2.Tree,
    prefix: str,
    timestamp: int,
) -> None:
    for entry in tree:
        path = f"{prefix}{entry.name}"
        if entry.filemode == pygit2.GIT_FILEMODE_TREE:
            _add_tree(git, archive, git[entry.id], f"{path}/", timestamp)  # type: ignore[arg-type]
            continue
        if entry.filemode == pygit2.GIT_FILEMODE_COMMIT:
            continue  # a submodule: its commit lives in another repository
        blob = git[entry.id]
        info = zipfile.ZipInfo(path, date_time=_zip_time(timestamp))
        info.compress_type = zipfile.ZIP_DEFLATED
        if entry.filemode == pygit2.GIT_FILEMODE_LINK:
            mode = stat.S_IFLNK | 0o777
        elif entry.filemode == pygit2.GIT_FILEMODE_BLOB_EXECUTABLE:
            mode = stat.S_IFREG | 0o755
        else:
            mode = stat.S_IFREG | 0o644
        info.external_attr = mode << _UNIX_MODE_SHIFT
        archive.writestr(info, blob.data)  # type: ignore[attr-defined]


def _zip_time(timestamp: int) -> tuple[int, int, int, int, int, int]:
    moment = dt.datetime.fromtimestamp(max(timestamp, 315532800), dt.UTC)  # zip starts in 1980
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def _when(signature: pygit2.Signature) -> dt.datetime:
    offset = dt.timezone(dt.timedelta(minutes=signature.offset))
    return dt.datetime.fromtimestamp(signature.time, offset)


def changed_paths(git: pygit2.Repository, old: str | None, new: str) -> list[str]:
    """Paths that differ between `old` (None: the new commit's first parent) and `new`
    (both sides of a rename); [] when a commit cannot be read."""
    try:
        head = git[new].peel(pygit2.Commit)
        base: pygit2.Commit | None
        if old:
            base = git[old].peel(pygit2.Commit)
        else:
            base = head.parents[0] if head.parents else None
        diff = git.diff(base, head) if base is not None else head.tree.diff_to_tree(swap=True)
    except (KeyError, ValueError, pygit2.GitError):
        return []
    paths: list[str] = []
    for delta in diff.deltas:
        for path in (delta.old_file.path, delta.new_file.path):
            if path and path not in paths:
                paths.append(path)
    return paths
