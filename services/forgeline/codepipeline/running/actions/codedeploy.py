"""Deploy / CodeDeploy: a deployment of the input artifact (a zip in the artifact store)
to ApplicationName's DeploymentGroupName. For a Lambda or ECS application the artifact
holds the AppSpec (appspec.yaml, .yml or .json at its root), deployed as the revision's
content, as CodePipeline does. The deployment's end (CodeDeploy's deployment_finished
hook, listeners.py) ends the action."""

from __future__ import annotations

import io
import zipfile

from forgeline.codedeploy import interface as codedeploy
from forgeline.codepipeline.running.actions.context import (
    ActionContext,
    Failed,
    Outcome,
    Waiting,
    split_location,
)
from forgeline.core.protocol.errors import AwsError
from forgeline.s3 import interface as s3

APPSPEC_NAMES = ("appspec.yaml", "appspec.yml", "appspec.json")


def run(context: ActionContext) -> Outcome:
    application = context.configuration.get("ApplicationName", "")
    group = context.configuration.get("DeploymentGroupName", "")
    bucket, key = split_location(context.input_artifacts[0].location)
    appspec = None
    platform = codedeploy.compute_platform(
        context.session, context.account_id, context.region, application
    )
    if platform != "Server":
        appspec = _appspec_of(context, bucket, key)
        if appspec is None:
            return Failed(
                f"The input artifact {context.input_artifacts[0].name} holds no appspec.yaml, "
                f"appspec.yml or appspec.json for the {platform} application {application}."
            )
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
            appspec=appspec,
        )
    except AwsError as exc:
        return Failed(f"The deployment to {application}/{group} could not start: {exc}")
    return Waiting(external_id=deployment_id)


def _appspec_of(context: ActionContext, bucket: str, key: str) -> str | None:
    data = s3.read_object(context.settings, bucket, key)
    if data is None:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            for name in APPSPEC_NAMES:
                if name in names:
                    return archive.read(name).decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError):
        return None
    return None
