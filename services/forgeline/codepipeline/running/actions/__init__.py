"""The actions this server runs, by (category, provider): each takes an ActionContext and
answers at once (Succeeded, Failed) or leaves the action waiting on another service
(Waiting: a build, a deployment, an approval), whose outcome arrives later."""

from __future__ import annotations

from collections.abc import Callable

from forgeline.codepipeline.running.actions import (
    approval,
    codebuild,
    codecommit_source,
    codedeploy,
    custom_job,
    lambda_invoke,
    s3_deploy,
    s3_source,
)
from forgeline.codepipeline.running.actions.context import ActionContext, Failed, Outcome

Runner = Callable[[ActionContext], Outcome]

RUNNERS: dict[tuple[str, str], Runner] = {
    ("Source", "CodeCommit"): codecommit_source.run,
    ("Source", "S3"): s3_source.run,
    ("Build", "CodeBuild"): codebuild.run,
    ("Test", "CodeBuild"): codebuild.run,
    ("Deploy", "CodeDeploy"): codedeploy.run,
    ("Deploy", "S3"): s3_deploy.run,
    ("Approval", "Manual"): approval.run,
    ("Invoke", "Lambda"): lambda_invoke.run,
}


def run(context: ActionContext) -> Outcome:
    if context.owner == custom_job.CUSTOM:
        return custom_job.run(context)
    runner = RUNNERS.get((context.category, context.provider))
    if runner is None:
        return Failed(f"Provider {context.provider} ({context.category}) is not run here.")
    return runner(context)
