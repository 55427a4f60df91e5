"""CodeCommit operations: branches, file content, commits, differences and file history.

Each handler only routes to the module of forgeline.codecommit.content that does the work.
"""

from __future__ import annotations

from forgeline.codecommit.content import blob_diff as content_blob_diff
from forgeline.codecommit.content import branches as content_branches
from forgeline.codecommit.content import diff as content_diff
from forgeline.codecommit.content import history as content_history
from forgeline.codecommit.content import read as content_read
from forgeline.codecommit.content import refs as content_refs
from forgeline.codecommit.content import write as content_write
from forgeline.codecommit.generated import shapes
from forgeline.core.context import RequestContext


class BranchContentOperations:
    # -- branches ----------------------------------------------------------------------------
    def create_branch(self, ctx: RequestContext, params: shapes.CreateBranchInput) -> None:
        content_branches.create_branch(ctx, params)

    def delete_branch(
        self, ctx: RequestContext, params: shapes.DeleteBranchInput
    ) -> shapes.DeleteBranchOutput:
        return content_branches.delete_branch(ctx, params)

    def get_branch(
        self, ctx: RequestContext, params: shapes.GetBranchInput
    ) -> shapes.GetBranchOutput:
        return content_branches.get_branch(ctx, params)

    def list_branches(
        self, ctx: RequestContext, params: shapes.ListBranchesInput
    ) -> shapes.ListBranchesOutput:
        return content_branches.list_branches(ctx, params)

    def update_default_branch(
        self, ctx: RequestContext, params: shapes.UpdateDefaultBranchInput
    ) -> None:
        content_branches.update_default_branch(ctx, params)

    def get_blob_differences(
        self, ctx: RequestContext, params: shapes.GetBlobDifferencesInput
    ) -> shapes.GetBlobDifferencesOutput:
        return content_blob_diff.get_blob_differences(ctx, params)

    # -- reading content ---------------------------------------------------------------------
    def get_file(self, ctx: RequestContext, params: shapes.GetFileInput) -> shapes.GetFileOutput:
        return content_read.get_file(ctx, params)

    def get_folder(
        self, ctx: RequestContext, params: shapes.GetFolderInput
    ) -> shapes.GetFolderOutput:
        return content_read.get_folder(ctx, params)

    def get_blob(self, ctx: RequestContext, params: shapes.GetBlobInput) -> shapes.GetBlobOutput:
        return content_read.get_blob(ctx, params)

    def get_commit(
        self, ctx: RequestContext, params: shapes.GetCommitInput
    ) -> shapes.GetCommitOutput:
        return content_read.get_commit(ctx, params)

    def batch_get_commits(
        self, ctx: RequestContext, params: shapes.BatchGetCommitsInput
    ) -> shapes.BatchGetCommitsOutput:
        return content_read.batch_get_commits(ctx, params)

    def get_differences(
        self, ctx: RequestContext, params: shapes.GetDifferencesInput
    ) -> shapes.GetDifferencesOutput:
        repository = content_refs.load(ctx, params.get("repositoryName"))
        return content_diff.get_differences(ctx, repository, params)

    def list_file_commit_history(
        self, ctx: RequestContext, params: shapes.ListFileCommitHistoryRequest
    ) -> shapes.ListFileCommitHistoryResponse:
        repository = content_refs.load(ctx, params.get("repositoryName"))
        return content_history.list_file_commit_history(ctx, repository, params)

    # -- writing content ---------------------------------------------------------------------
    def put_file(self, ctx: RequestContext, params: shapes.PutFileInput) -> shapes.PutFileOutput:
        return content_write.put_file(ctx, params)

    def delete_file(
        self, ctx: RequestContext, params: shapes.DeleteFileInput
    ) -> shapes.DeleteFileOutput:
        return content_write.delete_file(ctx, params)

    def create_commit(
        self, ctx: RequestContext, params: shapes.CreateCommitInput
    ) -> shapes.CreateCommitOutput:
        return content_write.create_commit(ctx, params)
