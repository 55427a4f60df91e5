"""Revision locations: what makes one valid, which compute platform takes which kind, and
the identity two registrations of the same location share. Pure: no database.

Kinds (RevisionLocation.revisionType):
- S3: a bundle in a bucket (zip, tar or tgz for Server; for Lambda and ECS also a bare
  YAML or JSON AppSpec file);
- GitHub: a repository and commit (Server only; stored and accepted, Forgeline fetches
  nothing from GitHub);
- AppSpecContent: an AppSpec given inline (Lambda and ECS);
- String: the older inline form (Lambda only).
Inline content carries a SHA-256; when a request leaves it out it is computed.
"""

from __future__ import annotations

import hashlib
import json
import re

from forgeline.codedeploy.generated import errors, shapes

SERVER_BUNDLE_TYPES = frozenset({"zip", "tar", "tgz"})
APPSPEC_BUNDLE_TYPES = frozenset({"zip", "tar", "tgz", "YAML", "JSON"})
KINDS_BY_PLATFORM = {
    "Server": frozenset({"S3", "GitHub"}),
    "Lambda": frozenset({"S3", "AppSpecContent", "String"}),
    "ECS": frozenset({"S3", "AppSpecContent"}),
}
_GITHUB_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_COMMIT = re.compile(r"[0-9a-fA-F]{40}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _invalid(message: str) -> errors.InvalidRevisionException:
    return errors.InvalidRevisionException(message)


def normalize(revision: shapes.RevisionLocation) -> shapes.RevisionLocation:
    """The revision checked and reduced to the location its type names (other locations
    a request carries are dropped), inline content with its SHA-256."""
    kind = revision.get("revisionType")
    if kind is None:
        raise _invalid("The revision needs a revisionType: S3, GitHub, String or AppSpecContent.")
    if kind == "S3":
        return {"revisionType": kind, "s3Location": _s3(revision.get("s3Location"))}
    if kind == "GitHub":
        return {"revisionType": kind, "gitHubLocation": _github(revision.get("gitHubLocation"))}
    if kind == "String":
        content = _inline(revision.get("string"), "string")
        return {"revisionType": kind, "string": {"content": content[0], "sha256": content[1]}}
    content = _inline(revision.get("appSpecContent"), "appSpecContent")
    return {"revisionType": kind, "appSpecContent": {"content": content[0], "sha256": content[1]}}


def check_platform(revision: shapes.RevisionLocation, compute_platform: str) -> None:
    """Refuse a (normalized) revision the application's compute platform cannot deploy."""
    kind = revision.get("revisionType", "")
    if kind not in KINDS_BY_PLATFORM.get(compute_platform, frozenset()):
        allowed = ", ".join(sorted(KINDS_BY_PLATFORM.get(compute_platform, ())))
        raise _invalid(
            f"A {compute_platform} application takes revisions of type {allowed}, not {kind}."
        )
    bundle_type = revision.get("s3Location", {}).get("bundleType")
    if kind == "S3" and compute_platform == "Server" and bundle_type not in SERVER_BUNDLE_TYPES:
        raise _invalid(
            f"A Server application's S3 revision must be a zip, tar or tgz bundle, not {bundle_type}."
        )


def revision_key(revision: shapes.RevisionLocation) -> str:
    """The identity of a (normalized) revision: the same location registered twice is one
    revision. An S3 revision is its bucket, key, version and ETag (its bundle type is an
    attribute, the last one registered wins); inline content is its SHA-256."""
    kind = revision.get("revisionType")
    identity: list[object]
    if kind == "S3":
        s3 = revision["s3Location"]
        identity = [kind, s3["bucket"], s3["key"], s3.get("version"), s3.get("eTag")]
    elif kind == "GitHub":
        github = revision["gitHubLocation"]
        identity = [kind, github["repository"], github["commitId"].lower()]
    elif kind == "String":
        identity = [kind, revision["string"]["sha256"]]
    else:
        identity = [kind, revision["appSpecContent"]["sha256"]]
    canonical = json.dumps(identity, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe(revision: shapes.RevisionLocation) -> str:
    """A short human name of a revision for messages."""
    kind = revision.get("revisionType")
    if kind == "S3":
        s3 = revision.get("s3Location", {})
        return f"s3://{s3.get('bucket')}/{s3.get('key')}"
    if kind == "GitHub":
        github = revision.get("gitHubLocation", {})
        return f"{github.get('repository')}@{github.get('commitId')}"
    inline = revision.get("string") or revision.get("appSpecContent") or {}
    return f"{kind} sha256:{inline.get('sha256', '')[:12]}"


def _s3(location: shapes.S3Location | None) -> shapes.S3Location:
    if location is None:
        raise _invalid("An S3 revision needs an s3Location (bucket, key and bundleType).")
    bucket, key = location.get("bucket"), location.get("key")
    if not bucket:
        raise _invalid("The S3 revision's bucket is missing.")
    if not key:
        raise _invalid("The S3 revision's key is missing.")
    bundle_type = location.get("bundleType")
    if bundle_type is None:
        raise _invalid("The S3 revision's bundleType is missing (zip, tar, tgz, YAML or JSON).")
    normalized: shapes.S3Location = {"bucket": bucket, "key": key, "bundleType": bundle_type}
    if location.get("version"):
        normalized["version"] = location["version"]
    if location.get("eTag"):
        # The CLI and consoles sometimes keep S3's quotes around an ETag.
        normalized["eTag"] = location["eTag"].strip('"')
    return normalized


def _github(location: shapes.GitHubLocation | None) -> shapes.GitHubLocation:
    if location is None:
        raise _invalid("A GitHub revision needs a gitHubLocation (repository and commitId).")
    repository, commit = location.get("repository", ""), location.get("commitId", "")
    if not _GITHUB_REPOSITORY.fullmatch(repository):
        raise _invalid(
            f"The GitHub repository must be written owner/repository; got {repository!r}."
        )
    if not _COMMIT.fullmatch(commit):
        raise _invalid(f"The GitHub commitId must be a full 40-digit SHA-1; got {commit!r}.")
    return {"repository": repository, "commitId": commit}


def _inline(
    content: shapes.RawString | shapes.AppSpecContent | None, member: str
) -> tuple[str, str]:
    if content is None or not content.get("content"):
        raise _invalid(f"A revision of type {member} needs its {member}.content.")
    text = content["content"]
    digest = hashlib.sha256(text.encode()).hexdigest()
    given = content.get("sha256")
    if given is not None:
        if not _SHA256.fullmatch(given):
            raise _invalid(f"{member}.sha256 must be 64 hexadecimal digits.")
        if given.lower() != digest:
            raise _invalid(f"{member}.sha256 does not match the SHA-256 of {member}.content.")
    return text, digest
