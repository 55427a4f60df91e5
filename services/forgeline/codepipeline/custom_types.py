"""Custom action types of an account and region: looked up by id, shown in the model's
ActionType shape, and offered to structure.py so pipelines that use them are checked."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codepipeline.generated import shapes
from forgeline.codepipeline.structure import CustomActionTypeInfo, CustomActionTypes
from forgeline.codepipeline.tables.jobs import CustomActionType

CUSTOM = "Custom"


def type_key(kind: shapes.ActionTypeId | dict[str, Any]) -> str:
    return f"{kind['category']}/{kind['owner']}/{kind['provider']}/{kind['version']}"


def find(
    session: Session,
    account_id: str,
    region: str,
    kind: shapes.ActionTypeId,
    *,
    include_deleted: bool = False,
) -> CustomActionType | None:
    query = select(CustomActionType).where(
        CustomActionType.account_id == account_id,
        CustomActionType.region == region,
        CustomActionType.category == kind["category"],
        CustomActionType.provider == kind["provider"],
        CustomActionType.version == kind["version"],
    )
    if not include_deleted:
        query = query.where(CustomActionType.deleted.is_(False))
    return session.scalars(query).first()


def listed(session: Session, account_id: str, region: str) -> list[CustomActionType]:
    return list(
        session.scalars(
            select(CustomActionType).where(
                CustomActionType.account_id == account_id,
                CustomActionType.region == region,
                CustomActionType.deleted.is_(False),
            )
        )
    )


def action_type(row: CustomActionType) -> shapes.ActionType:
    document = row.document
    shape: dict[str, Any] = {
        "id": {
            "category": row.category,
            "owner": CUSTOM,
            "provider": row.provider,
            "version": row.version,
        },
        "inputArtifactDetails": document["inputArtifactDetails"],
        "outputArtifactDetails": document["outputArtifactDetails"],
        "settings": document.get("settings") or {},
        "actionConfigurationProperties": document.get("configurationProperties") or [],
    }
    return cast(shapes.ActionType, shape)


def lookup(session: Session, account_id: str, region: str) -> CustomActionTypes:
    """What structure.validate_pipeline asks about owner Custom action ids."""

    def info(kind: shapes.ActionTypeId) -> CustomActionTypeInfo | None:
        row = find(session, account_id, region, kind)
        return None if row is None else CustomActionTypeInfo.from_action_type(action_type(row))

    return info
