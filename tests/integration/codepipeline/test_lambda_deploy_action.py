"""The CodeDeploy action with a Lambda application: the input artifact holds the AppSpec,
deployed as the revision's content; the deployment shifts the alias and ends the action."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.codepipeline.support import kind, newest_when_ended, zip_of

APPSPEC = """version: 0.0
Resources:
  - fn:
      Type: AWS::Lambda::Function
      Properties: {Name: orders, Alias: live, CurrentVersion: "1", TargetVersion: "2"}
"""


def test_a_lambda_appspec_in_the_artifact_is_deployed(forgeline: Any) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, bucket, app = f"fn-{suffix}", f"fn-{suffix}", f"fn-app-{suffix}"
    s3, pipelines, deploy = (forgeline.client(n) for n in ("s3", "codepipeline", "codedeploy"))
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="release.zip", Body=zip_of(APPSPEC, name="appspec.yaml"))
    deploy.create_application(applicationName=app, computePlatform="Lambda")
    deploy.create_deployment_group(
        applicationName=app,
        deploymentGroupName="live",
        serviceRoleArn="arn:aws:iam::000000000000:role/deploy",
    )
    pipelines.create_pipeline(
        pipeline={
            "name": name,
            "roleArn": "arn:aws:iam::000000000000:role/pipeline",
            "artifactStore": {"type": "S3", "location": bucket},
            "stages": [
                {"name": "Source", "actions": [{
                    "name": "Get", "actionTypeId": kind("Source", "S3"),
                    "configuration": {"S3Bucket": bucket, "S3ObjectKey": "release.zip",
                                      "PollForSourceChanges": "false"},
                    "outputArtifacts": [{"name": "Release"}]}]},
                {"name": "Deploy", "actions": [{
                    "name": "Shift", "actionTypeId": kind("Deploy", "CodeDeploy"),
                    "configuration": {"ApplicationName": app, "DeploymentGroupName": "live"},
                    "inputArtifacts": [{"name": "Release"}]}]},
            ],
        }
    )  # fmt: skip
    summary = newest_when_ended(pipelines, name)
    assert summary["status"] == "Succeeded", summary
    details = pipelines.list_action_executions(pipelineName=name)["actionExecutionDetails"]
    deployment_id = next(d for d in details if d["actionName"] == "Shift")["output"][
        "executionResult"
    ]["externalExecutionId"]
    info = deploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
    assert info["computePlatform"] == "Lambda"
    assert info["revision"]["revisionType"] == "AppSpecContent"
    target = deploy.get_deployment_target(deploymentId=deployment_id, targetId="orders:live")
    assert (
        target["deploymentTarget"]["lambdaTarget"]["lambdaFunctionInfo"]["targetVersionWeight"]
        == 1.0
    )
