"""What other services may use of CodeBuild, and nothing more.

CodePipeline's Build and Test actions start builds of a project with the pipeline's input
artifacts as sources and its output artifacts as the build's artifacts, and read a build's
outcome when it finishes (BUILD_FINISHED_LISTENERS, through the manifest's hook).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codebuild import builds
from forgeline.codebuild.generated import shapes
from forgeline.codebuild.tables.builds import Build
from forgeline.core.context import RequestContext

__all__ = ["Build", "PipelineBuildRequest", "build_view", "find_build", "start_pipeline_build"]


@dataclass(frozen=True)
class ArtifactPlace:
    name: str  # the pipeline artifact's name (a secondary source's identifier)
    bucket: str
    key: str


@dataclass(frozen=True)
class PipelineBuildRequest:
    account_id: str
    region: str
    project_name: str
    initiator: str  # codepipeline/<pipeline name>, as AWS shows it
    sources: Sequence[ArtifactPlace]  # the primary first
    outputs: Sequence[ArtifactPlace]  # the primary first; secondaries by name
    environment_variables: Sequence[Mapping[str, str]] = ()  # {name, value, type}
    # The primary source as a git clone instead of the first artifact: (repository clone
    # URL, commit id), for a CodeCommit source's CODEBUILD_CLONE_REF output.
    git_clone: tuple[str, str] | None = None


def start_pipeline_build(session: Session, request: PipelineBuildRequest) -> str:
    """Queue the build (it starts once the caller commits); returns its id. Raises
    CodeBuild's own errors (a missing project: ResourceNotFoundException)."""
    ctx = RequestContext(
        account_id=request.account_id,
        region=request.region,
        principal_arn=f"arn:aws:iam::{request.account_id}:role/codepipeline",
        access_key_id=None,
        service="codebuild",
        operation="StartBuild",
    )
    params: dict[str, Any] = {
        "projectName": request.project_name,
        "sourceTypeOverride": "CODEPIPELINE",
        "sourceLocationOverride": _location(request.sources[0]),
    }
    if request.git_clone is not None:
        params["sourceTypeOverride"] = "CODECOMMIT"
        params["sourceLocationOverride"], params["sourceVersion"] = request.git_clone
    if len(request.sources) > 1:
        params["secondarySourcesOverride"] = [
            {"type": "CODEPIPELINE", "location": _location(s), "sourceIdentifier": s.name}
            for s in request.sources[1:]
        ]
    if request.outputs:
        params["artifactsOverride"] = _artifact(request.outputs[0])
        if len(request.outputs) > 1:
            params["secondaryArtifactsOverride"] = [
                _artifact(output) | {"artifactIdentifier": output.name}
                for output in request.outputs[1:]
            ]
    else:
        params["artifactsOverride"] = {"type": "NO_ARTIFACTS"}
    if request.environment_variables:
        params["environmentVariablesOverride"] = list(request.environment_variables)
    build = builds.queue_build(
        session, ctx, cast(shapes.StartBuildInput, params), initiator=request.initiator
    )
    return build.id


def find_build(session: Session, build_id: str) -> Build | None:
    return session.scalars(select(Build).where(Build.id == build_id)).first()


def build_view(build: Build) -> shapes.Build:
    """The build as BatchGetBuilds shows it (status, phases, exported variables, logs)."""
    return builds.build_output(build)


def _location(place: ArtifactPlace) -> str:
    return f"{place.bucket}/{place.key}"


def _artifact(place: ArtifactPlace) -> dict[str, Any]:
    path, _, name = place.key.rpartition("/")
    return {
        "type": "S3",
        "location": place.bucket,
        "path": path,
        "name": name,
        "packaging": "ZIP",
        "namespaceType": "NONE",
    }
