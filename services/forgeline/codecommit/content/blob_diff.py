"""GetBlobDifferences: a line-level diff of two blobs, as pages of hunks.

libgit2 computes the patch (the same algorithm as `git diff`); this module only turns
its hunks into CodeCommit's DiffHunk shape and pages them by hunk index.
"""

from __future__ import annotations

import pygit2

from forgeline.codecommit import gitstore
from forgeline.codecommit.content import objects as content_objects
from forgeline.codecommit.content import refs as content_refs
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.paging import max_results
from forgeline.core.context import RequestContext
from forgeline.core.pagination import request_page_tokens

DEFAULT_CONTEXT_LINES = 3
MAX_CONTEXT_LINES = 20
DEFAULT_PAGE = 100
MAX_PAGE = 1000

_ORIGINS = {" ": "CONTEXT", "+": "ADD", "-": "DELETE"}


def _context_lines(value: int | None) -> int:
    if value is None:
        return DEFAULT_CONTEXT_LINES
    if not 0 <= value <= MAX_CONTEXT_LINES:
        raise errors.ValidationException(
            f"contextLines must be between 0 and {MAX_CONTEXT_LINES}; got {value}."
        )
    return value


def _hunk(hunk: pygit2.DiffHunk) -> shapes.DiffHunk:
    changes: list[shapes.DiffChange] = []
    for line in hunk.lines:
        kind = _ORIGINS.get(line.origin)
        if kind is None:  # "\ No newline at end of file" markers
            continue
        change: shapes.DiffChange = {"type": kind, "content": line.content.rstrip("\r\n")}
        if kind != "ADD":
            change["beforeLineNumber"] = line.old_lineno
        if kind != "DELETE":
            change["afterLineNumber"] = line.new_lineno
        changes.append(change)
    return {
        "beforeStartLine": hunk.old_start,
        "beforeLineCount": hunk.old_lines,
        "afterStartLine": hunk.new_start,
        "afterLineCount": hunk.new_lines,
        "changes": changes,
    }


def get_blob_differences(
    ctx: RequestContext, params: shapes.GetBlobDifferencesInput
) -> shapes.GetBlobDifferencesOutput:
    repository = content_refs.load(ctx, params["repositoryName"])
    limit = max_results(
        params.get("MaxResults"), default=DEFAULT_PAGE, maximum=MAX_PAGE, member="MaxResults"
    )
    context = _context_lines(params.get("contextLines"))
    ignore_whitespace = bool(params.get("ignoreWhitespace"))
    git = gitstore.open_git(repository)
    after = content_objects.read_blob(git, params["afterBlobId"])
    before_id = params.get("beforeBlobId")
    before = content_objects.read_blob(git, before_id) if before_id else b""
    flags = pygit2.enums.DiffOption.NORMAL
    if ignore_whitespace:
        flags |= pygit2.enums.DiffOption.IGNORE_WHITESPACE
    patch = pygit2.Patch.create_from(before, after, flag=flags, context_lines=context)
    binary = bool(patch.delta.is_binary)  # None (not known) never happens once a patch is made
    hunks = [] if binary else list(patch.hunks)
    scope = {
        "repository": repository.id,
        "before": before_id,
        "after": params["afterBlobId"],
        "context": context,
        "ignoreWhitespace": ignore_whitespace,
    }
    indexes, token = request_page_tokens(ctx).page(
        list(range(len(hunks))), lambda i: i, scope, params.get("NextToken"), limit
    )
    output: shapes.GetBlobDifferencesOutput = {
        "hunks": [_hunk(hunks[i]) for i in indexes],
        "isBinary": binary,
        "beforeBlobSize": len(before),
        "afterBlobSize": len(after),
    }
    if token:
        output["NextToken"] = token
    return output
