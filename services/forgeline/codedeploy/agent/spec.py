"""The deployment specification: its envelope (signed PKCS7/JSON, or TEXT/JSON for local
runs) and the JSON inside, which names the deployment, its group and its revision."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from cryptography import x509

from forgeline.codedeploy.agent import pkcs7
from forgeline.codedeploy.agent.appspec import (
    AppSpecError,
    bundle_path,
    parse_file_exists_behavior,
)
from forgeline.codedeploy.agent.bundle import BUNDLE_TYPES

FORMAT_SIGNED = "PKCS7/JSON"
FORMAT_TEXT = "TEXT/JSON"
# Ids name directories under the agent's root: nothing that could climb out of it.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class SpecError(ValueError):
    """The deployment specification cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class S3Revision:
    bucket: str
    key: str
    bundle_type: str
    version: str | None = None
    etag: str | None = None


@dataclasses.dataclass(frozen=True)
class LocalRevision:
    """`Local File` (an archive) or `Local Directory` on this host (deploy-local)."""

    location: str
    bundle_type: str  # tar | tgz | zip | directory


@dataclasses.dataclass(frozen=True)
class GitHubRevision:
    account: str
    repository: str
    commit_id: str
    bundle_type: str = "tar"


Revision = S3Revision | LocalRevision | GitHubRevision


@dataclasses.dataclass(frozen=True)
class DeploymentSpec:
    deployment_id: str
    deployment_group_id: str
    deployment_group_name: str
    application_name: str
    revision: Revision
    deployment_creator: str = "user"
    deployment_type: str = "IN_PLACE"
    file_exists_behavior: str | None = None  # the deployment's override of the appspec's
    appspec_filename: str | None = None

    def hook_environment(self, event: str) -> dict[str, str]:
        """What AWS's agent adds to a hook script's environment."""
        env = {
            "LIFECYCLE_EVENT": event,
            "DEPLOYMENT_ID": self.deployment_id,
            "APPLICATION_NAME": self.application_name,
            "DEPLOYMENT_GROUP_NAME": self.deployment_group_name,
            "DEPLOYMENT_GROUP_ID": self.deployment_group_id,
        }
        revision = self.revision
        if isinstance(revision, S3Revision):
            env.update(BUNDLE_BUCKET=revision.bucket, BUNDLE_KEY=revision.key)
            if revision.version:
                env["BUNDLE_VERSION"] = revision.version
            if revision.etag:
                env["BUNDLE_ETAG"] = revision.etag.strip('"')
        elif isinstance(revision, GitHubRevision):
            env["BUNDLE_COMMIT"] = revision.commit_id
        return env


def open_envelope(
    envelope_format: str,
    payload: str,
    *,
    signer_certificate: x509.Certificate | None = None,
    allow_text: bool = False,
) -> DeploymentSpec:
    """The specification inside a GenericEnvelope.

    PKCS7/JSON is verified against `signer_certificate` when the agent has one configured;
    without one its content is only read. TEXT/JSON is for local runs only, as with AWS."""
    if envelope_format == FORMAT_SIGNED:
        try:
            message = pkcs7.read_pem(payload)
            content = (
                message.content
                if signer_certificate is None
                else pkcs7.verify(message, signer_certificate)
            )
        except pkcs7.SignedDataError as exc:
            raise SpecError(f"the deployment specification's signature: {exc}") from None
        return parse_spec(content)
    if envelope_format == FORMAT_TEXT:
        if not allow_text:
            raise SpecError("a TEXT/JSON deployment specification is accepted only locally")
        return parse_spec(payload)
    raise SpecError(f"unsupported deployment specification format {envelope_format!r}")


def parse_spec(text: str | bytes) -> DeploymentSpec:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SpecError(f"the deployment specification is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError("the deployment specification must be a JSON object")
    deployment_id = _required(data, "DeploymentId")
    if deployment_id.startswith("arn:"):
        # arn:aws:codedeploy:<region>:<account>:deployment/<id>
        deployment_id = deployment_id.split(":", 5)[-1].split("/", 1)[-1]
    return DeploymentSpec(
        deployment_id=_safe_id(deployment_id, "DeploymentId"),
        deployment_group_id=_safe_id(_required(data, "DeploymentGroupId"), "DeploymentGroupId"),
        deployment_group_name=_required(data, "DeploymentGroupName"),
        application_name=_required(data, "ApplicationName"),
        revision=_revision(data.get("Revision")),
        deployment_creator=_optional(data, "DeploymentCreator") or "user",
        deployment_type=_optional(data, "DeploymentType") or "IN_PLACE",
        file_exists_behavior=_file_exists_override(data.get("AgentActionOverrides")),
        appspec_filename=_appspec_filename(_optional(data, "AppSpecFilename")),
    )


def _revision(revision: object) -> Revision:
    if not isinstance(revision, dict):
        raise SpecError("the deployment specification has no Revision")
    kind = revision.get("RevisionType")
    if kind == "S3":
        s3 = _object(revision, "S3Revision")
        bundle_type = _required(s3, "BundleType", "S3Revision")
        if bundle_type not in BUNDLE_TYPES:
            raise SpecError(f"S3Revision BundleType must be tar, tgz or zip, not {bundle_type!r}")
        return S3Revision(
            bucket=_required(s3, "Bucket", "S3Revision"),
            key=_required(s3, "Key", "S3Revision"),
            bundle_type=bundle_type,
            version=_optional(s3, "Version"),
            etag=_optional(s3, "ETag"),
        )
    if kind in ("Local File", "Local Directory"):
        local = _object(revision, "LocalRevision")
        bundle_type = _required(local, "BundleType", "LocalRevision")
        if bundle_type not in (*BUNDLE_TYPES, "directory"):
            raise SpecError(
                f"LocalRevision BundleType {bundle_type!r} is not tar, tgz, zip or directory"
            )
        return LocalRevision(
            location=_required(local, "Location", "LocalRevision"), bundle_type=bundle_type
        )
    if kind == "GitHub":
        github = _object(revision, "GitHubRevision")
        return GitHubRevision(
            account=_required(github, "Account", "GitHubRevision"),
            repository=_required(github, "Repository", "GitHubRevision"),
            commit_id=_required(github, "CommitId", "GitHubRevision"),
            bundle_type=_optional(github, "BundleType") or "tar",
        )
    raise SpecError(
        f"unsupported RevisionType {kind!r}: expected S3, Local File or Local Directory"
    )


def _file_exists_override(overrides: object) -> str | None:
    if not isinstance(overrides, dict):
        return None
    agent = overrides.get("AgentOverrides")
    if not isinstance(agent, dict) or not agent.get("FileExistsBehavior"):
        return None
    try:
        return parse_file_exists_behavior(agent["FileExistsBehavior"], "FileExistsBehavior")
    except AppSpecError as exc:
        raise SpecError(str(exc)) from None


def _appspec_filename(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        relative = bundle_path(name, "AppSpecFilename")
    except AppSpecError as exc:
        raise SpecError(str(exc)) from None
    if not relative:
        raise SpecError(f"AppSpecFilename {name!r} names no file")
    return relative


def _object(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise SpecError(f"the revision has no {name}")
    return value


def _required(data: dict[str, Any], name: str, where: str = "the deployment specification") -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where} has no {name}")
    return value


def _optional(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) and value else None


def _safe_id(value: str, name: str) -> str:
    if not _SAFE_ID.fullmatch(value):
        raise SpecError(f"{name} {value!r} is not a plain identifier")
    return value
