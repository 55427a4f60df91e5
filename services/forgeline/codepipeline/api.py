"""CodePipeline: pipelines and their versions, tags and action types, each a mixin of
forgeline/codepipeline/ops/."""

from __future__ import annotations

from forgeline.codepipeline.generated.api import CodePipelineApi
from forgeline.codepipeline.ops.action_types import ActionTypeOperations
from forgeline.codepipeline.ops.pipelines import PipelineOperations
from forgeline.codepipeline.ops.tags import TagOperations


class CodePipelineProvider(
    PipelineOperations, TagOperations, ActionTypeOperations, CodePipelineApi
):
    pass


PROVIDERS = {"codepipeline": CodePipelineProvider}
