"""The CodeCommit API as Forgeline implements it.

Each group of operations lives in its own module as a mixin; whatever no mixin
overrides is the generated stub and answers 501 naming the operation.
"""

from __future__ import annotations

from services.repo.generated.api import CodeCommitApi
from services.repo.ops_branches_content import BranchContentOperations
from services.repo.ops_comments import CommentOperations
from services.repo.ops_merges import MergeOperations
from services.repo.ops_pull_requests import PullRequestOperations
from services.repo.ops_repositories import RepositoryOperations
from services.repo.ops_triggers import TriggerOperations


class CodeCommitProvider(
    RepositoryOperations,
    BranchContentOperations,
    MergeOperations,
    PullRequestOperations,
    CommentOperations,
    TriggerOperations,
    CodeCommitApi,
):
    pass


PROVIDERS = {"codecommit": CodeCommitProvider}
