"""The CodeBuild API as Forgeline implements it.

Each group of operations lives in its own module as a mixin; whatever no mixin overrides
is the generated stub and answers 501 naming the operation.
"""

from __future__ import annotations

from forgeline.codebuild.generated.api import CodeBuildApi
from forgeline.codebuild.ops.batches import BatchOperations
from forgeline.codebuild.ops.builds import BuildOperations
from forgeline.codebuild.ops.projects import ProjectOperations
from forgeline.codebuild.ops.reports import ReportOperations
from forgeline.codebuild.ops.webhooks import WebhookOperations


class CodeBuildProvider(
    ProjectOperations,
    BuildOperations,
    BatchOperations,
    ReportOperations,
    WebhookOperations,
    CodeBuildApi,
):
    pass


PROVIDERS = {"codebuild": CodeBuildProvider}
