"""CodeCommit operations: branches, file content, commits, differences and file history.

Each handler only routes to the module that does the work; see content_*.py.
"""

from __future__ import annotations

from typing import Any

from forgeline.codecommit.content import blob_diff as content_blob_diff
from forgeline.codecommit.content import branches as content_branches
from forgeline.codecommit.content import diff as content_diff
from forgeline.codecommit.content import history as content_history
from forgeline.codecommit.content import read as content_read
from forgeline.codecommit.content import refs as content_refs
from forgeline.codecommit.content import write as content_write
from forgeline.core.context import RequestContext


class BranchContentOperations:
    # -- branches ----------------------------------------------------------------------------
    def create_branch(self, ctx: RequestContext, params: Any) -> Any:
        content_branches.create_branch(ctx, params)
        return {}

    def delete_branch(self, ctx: RequestContext, params: Any) -> Any:
        return content_branches.delete_branch(ctx, params)

    def get_branch(self, ctx: RequestContext, params: Any) -> Any:
        return content_branches.get_branch(ctx, params)

    def list_branches(self, ctx: RequestContext, params: Any) -> Any:
        return content_branches.list_branches(ctx, params)

    def update_default_branch(self, ctx: RequestContext, params: Any) -> Any:
        content_branches.update_default_branch(ctx, params)
        return {}

    def get_blob_differences(self, ctx: RequestContext, params: Any) -> Any:
        return content_blob_diff.get_blob_differences(ctx, params)

    # -- reading content ---------------------------------------------------------------------
    def get_file(self, ctx: RequestContext, params: Any) -> Any:
        return content_read.get_file(ctx, params)

    def get_folder(self, ctx: RequestContext, params: Any) -> Any:
        return content_read.get_folder(ctx, params)

    def get_blob(self, ctx: RequestContext, params: Any) -> Any:
        return content_read.get_blob(ctx, params)

    def get_commit(self, ctx: RequestContext, params: Any) -> Any:
        return content_read.get_commit(ctx, params)

    def batch_get_commits(self, ctx: RequestContext, params: Any) -> Any:
        return content_read.batch_get_commits(ctx, params)

    def get_differences(self, ctx: RequestContext, params: Any) -> Any:
        repository = content_refs.load(ctx, params.get("repositoryName"))
        return content_diff.get_differences(ctx, repository, params)

    def list_file_commit_history(self, ctx: RequestContext, params: Any) -> Any:
        repository = content_refs.load(ctx, params.get("repositoryName"))
        return content_history.list_file_commit_history(ctx, repository, params)

    # -- writing content ---------------------------------------------------------------------
    def put_file(self, ctx: RequestContext, params: Any) -> Any:
        return content_write.put_file(ctx, params)

    def delete_file(self, ctx: RequestContext, params: Any) -> Any:
        return content_write.delete_file(ctx, params)

    def create_commit(self, ctx: RequestContext, params: Any) -> Any:
        return content_write.create_commit(ctx, params)
