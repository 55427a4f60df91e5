"""Stage condition rules: ListRuleTypes, ListRuleExecutions and OverrideStageCondition.

This server evaluates no condition rules (structure.py refuses a declaration that has
any, by name), so no rule type is offered, no rule ever executes, and no condition is
ever in progress to override: each answers as AWS does for a pipeline in that state.
"""

from __future__ import annotations

from forgeline.codepipeline.generated import errors, shapes
from forgeline.codepipeline.ops.executions import require_execution
from forgeline.codepipeline.ops.pipelines import require_pipeline
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope


class ConditionOperations:
    def list_rule_types(
        self, ctx: RequestContext, params: shapes.ListRuleTypesInput
    ) -> shapes.ListRuleTypesOutput:
        return {"ruleTypes": []}

    def list_rule_executions(
        self, ctx: RequestContext, params: shapes.ListRuleExecutionsInput
    ) -> shapes.ListRuleExecutionsOutput:
        wanted = (params.get("filter") or {}).get("pipelineExecutionId")
        with session_scope(readonly=True) as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"])
            if wanted:
                require_execution(session, pipeline, wanted)
        return {"ruleExecutionDetails": []}

    def override_stage_condition(
        self, ctx: RequestContext, params: shapes.OverrideStageConditionInput
    ) -> None:
        with session_scope(readonly=True) as session:
            pipeline = require_pipeline(session, ctx, params["pipelineName"])
            stages = [stage["name"] for stage in pipeline.declaration.get("stages", [])]
            if params["stageName"] not in stages:
                raise errors.StageNotFoundException(
                    f"Pipeline {pipeline.name} has no stage named {params['stageName']}."
                )
            require_execution(session, pipeline, params["pipelineExecutionId"])
        raise errors.ConditionNotOverridableException(
            f"No {params['conditionType']} condition of stage {params['stageName']} is in "
            "progress for that execution: this server evaluates no condition rules."
        )
