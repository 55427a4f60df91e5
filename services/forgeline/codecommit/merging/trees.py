"""Trees in a merge: the entry at a path, the paths either side changed, and writing the
merged tree on top of the destination's.

Only the paths the merge settled differently from the destination are written; every
other subtree is reused as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pygit2

from forgeline.codecommit.generated import errors
from forgeline.codecommit.merging.entries import FILE_MODES, TREE_MODE, Entry, Settled

MAX_ITEMS_TO_COMPARE = 100_000  # paths changed on either side: our own safety limit
GITKEEP = ".gitkeep"


def entry_at(tree: pygit2.Tree, path: str) -> Entry | None:
    try:
        obj = tree[path]
    except KeyError:
        return None
    mode = int(obj.filemode)
    if mode & 0o170000 == 0o100000:
        # Old repositories carry 100664 and the like; git reads those as 100644/100755.
        mode = FILE_MODES["EXECUTABLE"] if mode & 0o111 else FILE_MODES["NORMAL"]
    return Entry(str(obj.id), mode)


def changed_paths(base: pygit2.Tree, *sides: pygit2.Tree) -> list[str]:
    """Every path a side changed against the base, sorted."""
    paths: set[str] = set()
    for side in sides:
        for delta in base.diff_to_tree(side).deltas:
            paths.add(delta.old_file.path)
            paths.add(delta.new_file.path)
            if len(paths) > MAX_ITEMS_TO_COMPARE:
                raise errors.MaximumItemsToCompareExceededException(
                    f"More than {MAX_ITEMS_TO_COMPARE} paths differ from the merge base."
                )
    return sorted(paths)


def write_tree(
    git: pygit2.Repository,
    destination: pygit2.Tree,
    results: Mapping[str, Settled],
    keep_empty_folders: bool,
) -> str:
    """The destination's tree with every settled path applied; returns the tree id."""
    root = _Node()
    for path, settled in results.items():
        if settled == Settled.of(entry_at(destination, path)):
            continue  # already so in the destination
        node = root
        for part in path.split("/"):
            node = node.children.setdefault(part, _Node())
        node.leaf = settled
    tree_id = _build_tree(git, destination, root, keep_empty_folders)
    if tree_id is None:
        tree_id = git.TreeBuilder().write()
    return str(tree_id)


@dataclasses.dataclass
class _Node:
    leaf: Settled | None = None
    children: dict[str, _Node] = dataclasses.field(default_factory=dict)


def _tree(git: pygit2.Repository, oid: Any) -> pygit2.Tree:
    tree = git[oid]
    assert isinstance(tree, pygit2.Tree)
    return tree


def _build_tree(
    git: pygit2.Repository, tree: pygit2.Tree | None, node: _Node, keep_empty: bool
) -> pygit2.Oid | None:
    builder = git.TreeBuilder(tree) if tree is not None else git.TreeBuilder()
    for name, child in node.children.items():
        existing = builder.get(name)
        leaf = child.leaf
        if leaf is not None and not leaf.deleted:
            oid = leaf.oid if leaf.oid is not None else git.create_blob(leaf.data or b"")
            builder.insert(name, oid, int(leaf.mode or FILE_MODES["NORMAL"]))
            continue
        existing_is_tree = existing is not None and existing.filemode == TREE_MODE
        if child.children:
            subtree = _tree(git, existing.id) if existing_is_tree else None
            sub_id = _build_tree(git, subtree, child, keep_empty)
            if sub_id is not None:
                builder.insert(name, sub_id, TREE_MODE)
            elif existing is not None:
                builder.remove(name)
        elif existing is not None and not existing_is_tree:
            builder.remove(name)
    if len(builder) == 0:
        if not (keep_empty and tree is not None):
            return None
        builder.insert(GITKEEP, git.create_blob(b""), FILE_MODES["NORMAL"])
    return builder.write()
