"""Deploy / CodeDeploy: a deployment of the input artifact (a zip in the artifact store)
to ApplicationName's DeploymentGroupName. The deployment's end (CodeDeploy's
deployment_finished hook, listeners.py) ends the action."""

from __future__ import annotations

from forgeline.codedeploy import interface as codedeploy
from forgeline.codepipeline.running.actions.context import (
    ActionContext,
    Failed,
    Outcome,
    Waiting,
    split_location,
)
from forgeline.core.protocol.errors import AwsError


def run(context: ActionContext) -> Outcome:
    application = context.configuration.get("ApplicationName", "")
    group = context.configuration.get("DeploymentGroupName", "")
    bucket, key = split_location(context.input_artifacts[0].location)
    try:
        deployment_id = codedeploy.create_pipeline_deployment(
            context.session,
            context.account_id,
            context.region,
            application,
            group,
            bucket,
            key,
            description=f"Deployed by pipeline {context.pipeline_name} "
            f"(execution {context.execution_id})",
        )
    except AwsError as exc:
        return Failed(f"The deployment to {application}/{group} could not start: {exc}")
    return Waiting(external_id=deployment_id)
