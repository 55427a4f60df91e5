"""Fetching S3 revisions: boto3's S3 client at the configured endpoint, path-style, signed
with the agent's own key (what AWS's agent does with :s3_endpoint_override:)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from forgeline.codedeploy.agent.bundle import BundleError
from forgeline.codedeploy.agent.spec import S3Revision

_CHUNK = 1024 * 1024


class BundleDownloadError(BundleError):
    """The bundle could not be fetched, or is not the one the deployment names."""


class S3BundleFetcher:
    def __init__(
        self,
        endpoint: str,
        region: str,
        credentials: tuple[str, str],
        ca_file: Path | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=credentials[0],
            aws_secret_access_key=credentials[1],
            verify=str(ca_file) if ca_file else True,
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def __call__(self, revision: S3Revision, target: Path) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        request = {"Bucket": revision.bucket, "Key": revision.key}
        if revision.version:
            request["VersionId"] = revision.version
        where = f"s3://{revision.bucket}/{revision.key}"
        try:
            answer = self._client.get_object(**request)
            with open(target, "wb") as out:
                shutil.copyfileobj(answer["Body"], out, _CHUNK)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise BundleDownloadError(
                f"cannot fetch the bundle {where}: {error.get('Code')}: {error.get('Message', '')}"
            ) from None
        except BotoCoreError as exc:
            raise BundleDownloadError(f"cannot fetch the bundle {where}: {exc}") from None
        expected = (revision.etag or "").strip('"')
        found = str(answer.get("ETag") or "").strip('"')
        if expected and expected != found:
            raise BundleDownloadError(
                f"the bundle {where} has ETag {found}, but the deployment names {expected}"
            )
