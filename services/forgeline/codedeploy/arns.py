"""CodeDeploy's resource ARNs, built from a row's account and region, and read back.

AWS's forms: `arn:aws:codedeploy:<region>:<account>:application:<name>`,
`…:deploymentgroup:<application>/<group>`, `…:deploymentconfig:<name>` and, for on-premises
instances, `…:instance/<name>` (a slash, not a colon, as AWS writes it).
"""

from __future__ import annotations

import dataclasses
import re

SERVICE = "codedeploy"

# arn:partition:codedeploy:region:account:rest
_ARN = re.compile(r"arn:(aws[a-z-]*):codedeploy:([a-z0-9-]+):(\d{12}):(.+)")


def _arn(region: str, account_id: str, resource: str) -> str:
    return f"arn:aws:{SERVICE}:{region}:{account_id}:{resource}"


def application_arn(region: str, account_id: str, name: str) -> str:
    return _arn(region, account_id, f"application:{name}")


def deployment_group_arn(region: str, account_id: str, application: str, group: str) -> str:
    return _arn(region, account_id, f"deploymentgroup:{application}/{group}")


def deployment_config_arn(region: str, account_id: str, name: str) -> str:
    return _arn(region, account_id, f"deploymentconfig:{name}")


def instance_arn(region: str, account_id: str, name: str) -> str:
    return _arn(region, account_id, f"instance/{name}")


@dataclasses.dataclass(frozen=True)
class ResourceArn:
    """A parsed CodeDeploy ARN. `kind` is what the ARN names: application,
    deploymentgroup, deploymentconfig, instance, or another word AWS uses
    (deployment…) that Forgeline's tagging does not support."""

    kind: str
    region: str
    account_id: str
    name: str
    # The deployment group of a `deploymentgroup` ARN (`name` is then its application).
    group: str | None = None


class MalformedArn(ValueError):
    pass


def parse(arn: str) -> ResourceArn:
    """Read a CodeDeploy ARN; raise MalformedArn when it is not one."""
    match = _ARN.fullmatch(arn)
    if match is None:
        raise MalformedArn(
            f"{arn!r} is not a CodeDeploy ARN (arn:aws:codedeploy:<region>:<account>:<resource>)."
        )
    _, region, account_id, resource = match.groups()
    if resource.startswith("instance/"):
        return ResourceArn("instance", region, account_id, resource.removeprefix("instance/"))
    kind, sep, rest = resource.partition(":")
    if not sep or not rest:
        raise MalformedArn(f"{arn!r} names no resource after its resource type.")
    if kind == "deploymentgroup":
        application, slash, group = rest.partition("/")
        if not slash or not application or not group:
            raise MalformedArn(
                f"{arn!r}: a deployment group ARN ends in deploymentgroup:<application>/<group>."
            )
        return ResourceArn(kind, region, account_id, application, group)
    return ResourceArn(kind, region, account_id, rest)
