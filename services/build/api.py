"""The CodeBuild API and its supporting APIs (CloudWatch Logs, SSM Parameter Store,
Secrets Manager) as Forgeline implements them.

Each group of operations lives in its own module as a mixin; whatever no mixin overrides
is the generated stub and answers 501 naming the operation.
"""

from __future__ import annotations

from services.build.generated.api import CodeBuildApi
from services.build.ops_batches import BatchOperations
from services.build.ops_builds import BuildOperations
from services.build.ops_logs import LogsProvider
from services.build.ops_projects import ProjectOperations
from services.build.ops_reports import ReportOperations
from services.build.ops_secretsmanager import SecretsManagerProvider
from services.build.ops_ssm import SsmProvider
from services.build.ops_webhooks import WebhookOperations


class CodeBuildProvider(
    ProjectOperations,
    BuildOperations,
    BatchOperations,
    ReportOperations,
    WebhookOperations,
    CodeBuildApi,
):
    pass


PROVIDERS = {
    "codebuild": CodeBuildProvider,
    "logs": LogsProvider,
    "ssm": SsmProvider,
    "secretsmanager": SecretsManagerProvider,
}
