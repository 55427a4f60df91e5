#!/usr/bin/env bash
# Approves the pipeline's newest execution when it reaches its Approval stage, then waits
# for the execution to end and prints how it ended (exit 1 unless it Succeeded).
#   examples/pipeline-app/approve.sh
# NAME (default pipeline-app) is the pipeline; it must have an Approval stage whose action
# is named Release, as setup.sh makes it.
set -euo pipefail
name="${NAME:-pipeline-app}"

execution=$(aws codepipeline list-pipeline-executions --pipeline-name "$name" \
  --query 'pipelineExecutionSummaries[0].pipelineExecutionId' --output text)
status() {
  aws codepipeline get-pipeline-execution --pipeline-name "$name" \
    --pipeline-execution-id "$execution" --query pipelineExecution.status --output text
}
approval() {
  aws codepipeline get-pipeline-state --name "$name" --output text \
    --query "stageStates[?stageName=='Approval'].[latestExecution.pipelineExecutionId, actionStates[0].latestExecution.token] | [0]"
}

echo "execution $execution: waiting for its approval"
while [ "$(status)" = InProgress ]; do
  read -r at token <<<"$(approval)"
  if [ "$at" = "$execution" ] && [ "$token" != None ]; then
    aws codepipeline put-approval-result --pipeline-name "$name" --stage-name Approval \
      --action-name Release --token "$token" \
      --result "summary=approved from approve.sh,status=Approved" >/dev/null
    echo "approved; waiting for the deployment"
    break
  fi
  sleep 1
done
while [ "$(status)" = InProgress ]; do sleep 1; done
final="$(status)"
echo "execution $execution: $final"
[ "$final" = Succeeded ]
