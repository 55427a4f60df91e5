"""The CodeCommit API as Forgeline implements it.

Each group of operations lives in its own module as a mixin; whatever no mixin
overrides is the generated stub and answers 501 naming the operation.
"""

from __future__ import annotations

from forgeline.codecommit.generated.api import CodeCommitApi
from forgeline.codecommit.ops.approval_templates import ApprovalTemplateOperations
from forgeline.codecommit.ops.branches_content import BranchContentOperations
from forgeline.codecommit.ops.comments import CommentOperations
from forgeline.codecommit.ops.merges import MergeOperations
from forgeline.codecommit.ops.pull_requests import PullRequestOperations
from forgeline.codecommit.ops.repositories import RepositoryOperations
from forgeline.codecommit.ops.triggers import TriggerOperations


class CodeCommitProvider(
    RepositoryOperations,
    BranchContentOperations,
    MergeOperations,
    PullRequestOperations,
    ApprovalTemplateOperations,
    CommentOperations,
    TriggerOperations,
    CodeCommitApi,
):
    pass


PROVIDERS = {"codecommit": CodeCommitProvider}
