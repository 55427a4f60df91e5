"""Helpers of the CodeDeploy resource API tests: unique names and the resources most tests need."""

from __future__ import annotations

import uuid
from typing import Any

ROLE = "arn:aws:iam::123456789012:role/CodeDeployServiceRole"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_application(client: Any, platform: str = "Server", **kwargs: Any) -> str:
    name = unique("app")
    client.create_application(applicationName=name, computePlatform=platform, **kwargs)
    return name


def make_group(client: Any, application: str, **kwargs: Any) -> str:
    name = unique("group")
    client.create_deployment_group(
        applicationName=application, deploymentGroupName=name, serviceRoleArn=ROLE, **kwargs
    )
    return name


def s3_revision(key: str, bucket: str = "bundles", **extra: str) -> dict[str, Any]:
    return {
        "revisionType": "S3",
        "s3Location": {"bucket": bucket, "key": key, "bundleType": "zip", **extra},
    }
