"""CodePipeline: pipelines and their versions, executions, tags and action types, each a
mixin of forgeline/codepipeline/ops/. Executions run in codepipeline/running/ (the driver
around the pure engine in codepipeline/engine/)."""

from __future__ import annotations

from forgeline.codepipeline.generated.api import CodePipelineApi
from forgeline.codepipeline.ops.action_types import ActionTypeOperations
from forgeline.codepipeline.ops.conditions import ConditionOperations
from forgeline.codepipeline.ops.deploy_targets import DeployTargetOperations
from forgeline.codepipeline.ops.executions import ExecutionOperations
from forgeline.codepipeline.ops.jobs import JobOperations
from forgeline.codepipeline.ops.pipelines import PipelineOperations
from forgeline.codepipeline.ops.tags import TagOperations
from forgeline.codepipeline.ops.third_party import ThirdPartyJobOperations
from forgeline.codepipeline.ops.webhooks import WebhookOperations


class CodePipelineProvider(
    PipelineOperations,
    ExecutionOperations,
    DeployTargetOperations,
    ConditionOperations,
    JobOperations,
    ThirdPartyJobOperations,
    TagOperations,
    WebhookOperations,
    ActionTypeOperations,
    CodePipelineApi,
):
    pass


PROVIDERS = {"codepipeline": CodePipelineProvider}
