"""Report groups: ARNs, lookup, the export configuration rules and the API view."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.tables.reports import ReportGroup
from forgeline.core import tagging
from forgeline.core.db import utcnow

TAG_ERRORS = tagging.TagErrors(
    too_many="InvalidInputException",
    reserved_key="InvalidInputException",
    invalid="InvalidInputException",
)
REPORT_TYPES = ("TEST", "CODE_COVERAGE")

# "/" and ":" separate the parts of report group and report ARNs, so a name holding
# them could never be found again by its ARN.
_NAME = re.compile(r"^[^\s/:]{2,128}$")


def group_arn(account_id: str, region: str, name: str) -> str:
    return f"arn:aws:codebuild:{region}:{account_id}:report-group/{name}"


def name_from_arn(account_id: str, region: str, arn: str) -> str | None:
    """The report group name in `arn` when it designates this account and region."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "codebuild"]:
        return None
    _, _, _, arn_region, arn_account, resource = parts
    kind, _, name = resource.partition("/")
    if arn_region != region or arn_account != account_id or kind != "report-group" or not name:
        return None
    return name


def check_arn(arn: str) -> None:
    """InvalidInputException unless `arn` is shaped like a report group ARN."""
    parts = arn.split(":", 5)
    if (
        len(parts) != 6
        or parts[:3] != ["arn", "aws", "codebuild"]
        or not parts[5].startswith("report-group/")
        or len(parts[5]) <= len("report-group/")
    ):
        raise errors.InvalidInputException(f"Invalid report group ARN: {arn}")


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise errors.InvalidInputException(
            f"Invalid report group name {name!r}: it must be 2 to 128 characters long "
            "without whitespace, '/' or ':'"
        )


def find(session: Session, account_id: str, region: str, arn: str) -> ReportGroup | None:
    name = name_from_arn(account_id, region, arn)
    if name is None:
        return None
    return find_by_name(session, account_id, region, name)


def find_by_name(session: Session, account_id: str, region: str, name: str) -> ReportGroup | None:
    return session.scalars(
        select(ReportGroup).where(
            ReportGroup.account_id == account_id,
            ReportGroup.region == region,
            ReportGroup.name == name,
        )
    ).first()


def get(session: Session, account_id: str, region: str, arn: str) -> ReportGroup:
    check_arn(arn)
    group = find(session, account_id, region, arn)
    if group is None:
        raise errors.ResourceNotFoundException(f"Report group {arn} does not exist")
    return group


def new_group(
    account_id: str, region: str, name: str, report_type: str, export_config: Mapping[str, Any]
) -> ReportGroup:
    now = utcnow()
    return ReportGroup(
        id=str(uuid.uuid4()),
        account_id=account_id,
        region=region,
        name=name,
        arn=group_arn(account_id, region, name),
        type=report_type,
        export_config=dict(export_config),
        status="ACTIVE",
        created_at=now,
        updated_at=now,
    )


NO_EXPORT: dict[str, Any] = {"exportConfigType": "NO_EXPORT"}


def normalize_export_config(config: shapes.ReportExportConfig) -> dict[str, Any]:
    """The export configuration to store, or InvalidInputException saying what is wrong.

    S3 needs a destination bucket; NO_EXPORT keeps no destination.
    """
    kind = config.get("exportConfigType")
    if kind is None:
        raise errors.InvalidInputException("exportConfig.exportConfigType is required")
    if kind == "NO_EXPORT":
        return dict(NO_EXPORT)
    destination = dict(config.get("s3Destination") or {})
    if not destination.get("bucket"):
        raise errors.InvalidInputException(
            "exportConfig.s3Destination.bucket is required when exportConfigType is S3"
        )
    return {"exportConfigType": "S3", "s3Destination": destination}


def export_config_output(stored: Mapping[str, Any]) -> shapes.ReportExportConfig:
    """A stored export configuration (a group's, or a report's copy of it) as the API's."""
    # normalize_export_config made it: the ReportExportConfig shape, kept as JSON.
    return cast(shapes.ReportExportConfig, dict(stored))


def tags_from_list(tags: Sequence[shapes.Tag]) -> dict[str, str]:
    result: dict[str, str] = {}
    for tag in tags:
        key = tag.get("key")
        if not key:
            raise errors.InvalidInputException("Each tag needs a non-empty key")
        result[key] = tag.get("value") or ""
    return result


def output(session: Session, group: ReportGroup, *, empty_tags: bool = True) -> shapes.ReportGroup:
    """The botocore `ReportGroup` shape.

    AWS answers BatchGetReportGroups and UpdateReportGroup with `"tags": []` for an
    untagged group, but CreateReportGroup without tags leaves the member out.
    """
    result: shapes.ReportGroup = {
        "arn": group.arn,
        "name": group.name,
        "type": group.type,
        "exportConfig": export_config_output(group.export_config),
        "created": group.created_at,
        "lastModified": group.updated_at,
        "status": group.status,
    }
    tags = tagging.get_tags(session, group.arn)
    if tags or empty_tags:
        result["tags"] = [{"key": key, "value": value} for key, value in tags.items()]
    return result
