"""The deployment specification an agent fetches: the JSON that tells it what to deploy.

Built from a deployment's own record (pure: no database, no signing). AWS's agent reads
DeploymentId, DeploymentGroupId, DeploymentGroupName, ApplicationName and Revision, and
optionally DeploymentCreator, DeploymentType, AppSpecFilename and
AgentActionOverrides.AgentOverrides.FileExistsBehavior. AllPossibleLifecycleEvents is left
out on purpose: with it, AWS's agent fails Install outside its local mode.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

# The bundle types an agent unpacks (YAML and JSON revisions are Lambda's and ECS's).
AGENT_BUNDLE_TYPES = ("tar", "tgz", "zip")
FILE_EXISTS_BEHAVIORS = ("DISALLOW", "OVERWRITE", "RETAIN")


class SpecError(ValueError):
    """The deployment cannot be described to an agent; the message says why."""


@dataclasses.dataclass(frozen=True)
class DeploymentFacts:
    """What the specification says about one deployment."""

    deployment_id: str
    deployment_group_id: str
    deployment_group_name: str
    application_name: str
    # The RevisionLocation as CodeDeploy's model names its members.
    revision: Mapping[str, Any]
    creator: str = "user"
    deployment_type: str = "IN_PLACE"
    file_exists_behavior: str | None = None
    appspec_filename: str | None = None


def build_spec(facts: DeploymentFacts) -> dict[str, Any]:
    """The specification document, members named as AWS's agent reads them."""
    spec: dict[str, Any] = {
        "DeploymentId": facts.deployment_id,
        "DeploymentGroupId": facts.deployment_group_id,
        "DeploymentGroupName": facts.deployment_group_name,
        "ApplicationName": facts.application_name,
        "DeploymentCreator": facts.creator,
        "DeploymentType": facts.deployment_type,
        "Revision": agent_revision(facts.revision),
    }
    if facts.appspec_filename:
        spec["AppSpecFilename"] = facts.appspec_filename
    if facts.file_exists_behavior is not None:
        if facts.file_exists_behavior not in FILE_EXISTS_BEHAVIORS:
            raise SpecError(
                f"fileExistsBehavior {facts.file_exists_behavior!r} is not one of "
                f"{', '.join(FILE_EXISTS_BEHAVIORS)}"
            )
        spec["AgentActionOverrides"] = {
            "AgentOverrides": {"FileExistsBehavior": facts.file_exists_behavior}
        }
    return spec


def spec_json(facts: DeploymentFacts) -> bytes:
    """The specification as the bytes that get signed."""
    return json.dumps(build_spec(facts), separators=(",", ":"), sort_keys=True).encode()


def agent_revision(revision: Mapping[str, Any]) -> dict[str, Any]:
    """A RevisionLocation (revisionType, s3Location, gitHubLocation) in the agent's terms."""
    kind = revision.get("revisionType")
    if kind == "S3":
        location = revision.get("s3Location") or {}
        bucket, key = location.get("bucket"), location.get("key")
        if not bucket or not key:
            raise SpecError("the S3 revision names no bucket and key")
        bundle_type = location.get("bundleType")
        if bundle_type not in AGENT_BUNDLE_TYPES:
            raise SpecError(
                f"an agent unpacks tar, tgz or zip bundles; this revision's bundleType is "
                f"{bundle_type!r}"
            )
        s3: dict[str, Any] = {"Bucket": bucket, "Key": key, "BundleType": bundle_type}
        if location.get("version"):
            s3["Version"] = location["version"]
        if location.get("eTag"):
            s3["ETag"] = location["eTag"]
        return {"RevisionType": "S3", "S3Revision": s3}
    if kind == "GitHub":
        location = revision.get("gitHubLocation") or {}
        account, _, repository = str(location.get("repository") or "").partition("/")
        commit = location.get("commitId")
        if not account or not repository or not commit:
            raise SpecError("the GitHub revision must name owner/repository and a commitId")
        return {
            "RevisionType": "GitHub",
            "GitHubRevision": {"Account": account, "Repository": repository, "CommitId": commit},
        }
    raise SpecError(
        f"revisions of type {kind!r} are not deployed by agents (S3 or GitHub bundles are)"
    )
