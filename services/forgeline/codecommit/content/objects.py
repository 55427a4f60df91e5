"""Reading git objects into CodeCommit's shapes: file modes, commits, blobs, tree entries."""

from __future__ import annotations

from typing import NamedTuple

import pygit2

from forgeline.codecommit.content import paths as content_paths
from forgeline.codecommit.content.refs import is_hex_id
from forgeline.codecommit.generated import errors, shapes

MODE_NORMAL = 0o100644
MODE_EXECUTABLE = 0o100755
MODE_SYMLINK = 0o120000
MODE_SUBMODULE = 0o160000
MODE_TREE = 0o040000
# Old git versions wrote group-writable files; they are ordinary files.
MODE_GROUP_WRITABLE = 0o100664

MODE_BY_NAME = {"NORMAL": MODE_NORMAL, "EXECUTABLE": MODE_EXECUTABLE, "SYMLINK": MODE_SYMLINK}
NAME_BY_MODE = {
    MODE_NORMAL: "NORMAL",
    MODE_GROUP_WRITABLE: "NORMAL",
    MODE_EXECUTABLE: "EXECUTABLE",
    MODE_SYMLINK: "SYMLINK",
}
BLOB_MODES = frozenset(NAME_BY_MODE)

# GetFile's fileContent is at most 6 MB in the model; GetBlob shares the quota.
MAX_READ_BYTES = 6 * 1024 * 1024


def mode_name(mode: int) -> str:
    return NAME_BY_MODE.get(mode, "NORMAL")


def octal_mode(mode: int) -> str:
    return f"{mode:06o}"


def _signature(signature: pygit2.Signature) -> shapes.UserInfo:
    offset = signature.offset
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset), 60)
    return {
        "name": signature.raw_name.decode("utf-8", "replace"),
        "email": signature.raw_email.decode("utf-8", "replace"),
        # CodeCommit's UserInfo.date: git's raw form, "1508280564 -0800".
        "date": f"{signature.time} {sign}{hours:02d}{minutes:02d}",
    }


def commit_info(commit: pygit2.Commit) -> shapes.Commit:
    return {
        "commitId": str(commit.id),
        "treeId": str(commit.tree_id),
        "parents": [str(parent) for parent in commit.parent_ids],
        "message": commit.raw_message.decode("utf-8", "replace"),
        "author": _signature(commit.author),
        "committer": _signature(commit.committer),
        "additionalData": "",
    }


def lookup_commit(git: pygit2.Repository, commit_id: str) -> pygit2.Commit | None:
    """A commit by its full id, or None when there is no commit with that id."""
    try:
        obj = git.get(commit_id)
    except (ValueError, pygit2.GitError):
        return None
    return obj if isinstance(obj, pygit2.Commit) else None


def read_blob(git: pygit2.Repository, blob_id: str) -> bytes:
    if not blob_id:
        raise errors.BlobIdRequiredException("A blob ID is required.")
    if not is_hex_id(blob_id, full=True):
        raise errors.InvalidBlobIdException(f"{blob_id!r} is not a valid blob ID.")
    try:
        kind, size = git.odb.read_header(blob_id)
    except (KeyError, ValueError, pygit2.GitError):
        kind, size = None, 0
    if kind != pygit2.enums.ObjectType.BLOB:
        raise errors.BlobIdDoesNotExistException(f"Blob {blob_id} does not exist.")
    check_readable_size(size, blob_id)
    blob = git[blob_id]
    assert isinstance(blob, pygit2.Blob)
    return blob.data


def check_readable_size(size: int, what: str) -> None:
    if size > MAX_READ_BYTES:
        raise errors.FileTooLargeException(
            f"{what} is {size} bytes; the API returns files of at most {MAX_READ_BYTES} bytes. "
            "Use a git client for larger files."
        )


def entry_at(tree: pygit2.Tree, path: str) -> pygit2.Object | None:
    """The tree entry at a normalized path ("" is the tree itself), or None."""
    if path == "":
        return tree
    try:
        return tree[path]
    except KeyError:
        return None


def tree_entries(tree: pygit2.Tree) -> list[tuple[bytes, str, int]]:
    """(raw name, object id, mode) of each entry, in git's order."""
    return [(entry.raw_name or b"", str(entry.id), int(entry.filemode)) for entry in tree]


class FolderListing(NamedTuple):
    """What a folder holds, by kind, as GetFolder lists it."""

    sub_folders: list[shapes.Folder]
    files: list[shapes.File]
    symbolic_links: list[shapes.SymbolicLink]
    sub_modules: list[shapes.SubModule]


def folder_listing(tree: pygit2.Tree, folder: str) -> FolderListing:
    listing = FolderListing([], [], [], [])
    for raw_name, oid, mode in tree_entries(tree):
        name = content_paths.display(raw_name)
        path = content_paths.join(folder, name)
        if mode == MODE_TREE:
            listing.sub_folders.append({"absolutePath": path, "relativePath": name, "treeId": oid})
        elif mode == MODE_SUBMODULE:
            listing.sub_modules.append(
                {"absolutePath": path, "relativePath": name, "commitId": oid}
            )
        elif mode == MODE_SYMLINK:
            listing.symbolic_links.append(
                {"absolutePath": path, "relativePath": name, "blobId": oid, "fileMode": "SYMLINK"}
            )
        else:
            listing.files.append(
                {
                    "absolutePath": path,
                    "relativePath": name,
                    "blobId": oid,
                    "fileMode": mode_name(mode),
                }
            )
    return listing
