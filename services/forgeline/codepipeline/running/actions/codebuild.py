"""Build and Test / CodeBuild: a build of ProjectName with the input artifacts as sources
(PrimarySource first, the rest as secondary sources named after their artifacts) and the
output artifacts as its artifacts. The build's end (CodeBuild's build_finished hook,
listeners.py) ends the action; its exported variables become the action's output
variables."""

from __future__ import annotations

import json

from forgeline.codebuild import interface as codebuild
from forgeline.codepipeline.engine.state import ArtifactRef
from forgeline.codepipeline.running.actions import clone_refs
from forgeline.codepipeline.running.actions.context import (
    ActionContext,
    Failed,
    Outcome,
    Waiting,
    split_location,
)
from forgeline.core.protocol.errors import AwsError
from forgeline.s3 import interface as s3


def run(context: ActionContext) -> Outcome:
    project = context.configuration.get("ProjectName", "")
    inputs = list(context.input_artifacts)
    primary = context.configuration.get("PrimarySource")
    inputs.sort(key=lambda ref: ref.name != primary)  # the primary source first
    sources = [codebuild.ArtifactPlace(ref.name, *split_location(ref.location)) for ref in inputs]
    outputs = [
        codebuild.ArtifactPlace(name, context.artifact_bucket, context.artifact_key(name))
        for name in context.output_artifact_names
    ]
    clone = _clone_of(context, inputs[0]) if inputs else None
    try:
        variables = _environment_variables(context.configuration.get("EnvironmentVariables"))
        build_id = codebuild.start_pipeline_build(
            context.session,
            codebuild.PipelineBuildRequest(
                account_id=context.account_id,
                region=context.region,
                project_name=project,
                initiator=f"codepipeline/{context.pipeline_name}",
                sources=sources,
                outputs=outputs,
                environment_variables=variables,
                git_clone=clone,
            ),
        )
    except (AwsError, ValueError) as exc:
        return Failed(f"The build of project {project} could not start: {exc}")
    # Where each output artifact will be, known now, kept until the build ends.
    places = {place.name: f"{place.bucket}/{place.key}" for place in outputs}
    return Waiting(external_id=build_id, summary=json.dumps({"outputs": places}))


def _environment_variables(text: str | None) -> list[dict[str, str]]:
    """The action's EnvironmentVariables: a JSON list of {name, value, type}."""
    if not text:
        return []
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"EnvironmentVariables is not valid JSON: {exc.msg}") from None
    if not isinstance(loaded, list) or not all(
        isinstance(item, dict) and "name" in item and "value" in item for item in loaded
    ):
        raise ValueError("EnvironmentVariables must be a JSON list of {name, value, type}")
    return [
        {"name": str(i["name"]), "value": str(i["value"]), "type": str(i.get("type", "PLAINTEXT"))}
        for i in loaded
    ]


def _clone_of(context: ActionContext, primary: ArtifactRef) -> tuple[str, str] | None:
    """(clone URL, commit) when the primary input is a CODEBUILD_CLONE_REF artifact."""
    data = s3.read_object(context.settings, *split_location(primary.location))
    reference = clone_refs.CloneRef.parse(data) if data is not None else None
    if reference is None:
        return None
    url = f"https://git-codecommit.{context.region}.amazonaws.com/v1/repos/{reference.repository}"
    return url, reference.commit_id
