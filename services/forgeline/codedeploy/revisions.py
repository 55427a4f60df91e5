"""An application's revisions in the database: registering one, finding one by its
location, and recording that a deployment used one (`record_revision_use`, which the
deployment driver calls when a deployment starts)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codedeploy import revision_rules
from forgeline.codedeploy.generated import shapes
from forgeline.codedeploy.tables.applications import Application, ApplicationRevision
from forgeline.codedeploy.tables.deployment_groups import DeploymentGroup
from forgeline.core.db import utcnow


def find_revision(
    session: Session, application: Application, revision: shapes.RevisionLocation
) -> ApplicationRevision | None:
    """The registered revision at this location (`revision` as revision_rules.normalize
    returns it)."""
    return session.scalars(
        select(ApplicationRevision).where(
            ApplicationRevision.application_id == application.id,
            ApplicationRevision.revision_key == revision_rules.revision_key(revision),
        )
    ).first()


def register(
    session: Session,
    application: Application,
    revision: shapes.RevisionLocation,
    description: str | None,
    when: dt.datetime | None = None,
) -> ApplicationRevision:
    """Register a (normalized) revision; registering a known location again refreshes its
    description, details (an S3 bundle type) and registration time."""
    when = when or utcnow()
    row = find_revision(session, application, revision)
    if row is None:
        row = ApplicationRevision(
            id=str(uuid.uuid4()),
            application_id=application.id,
            account_id=application.account_id,
            region=application.region,
            revision_key=revision_rules.revision_key(revision),
            deployment_groups=[],
        )
        session.add(row)
    row.revision = dict(revision)
    if description is not None:
        row.description = description
    row.registered_at = when
    session.flush()
    return row


def record_revision_use(
    session: Session,
    application: Application,
    revision: shapes.RevisionLocation,
    deployment_group: DeploymentGroup,
    when: dt.datetime,
) -> ApplicationRevision:
    """Note that a deployment to `deployment_group` started with `revision` at `when`: the
    revision's first and last use and the groups it went to. A revision a deployment names
    without registering it first is registered here, as AWS does."""
    revision = revision_rules.normalize(revision)
    row = find_revision(session, application, revision)
    if row is None:
        row = register(session, application, revision, None, when)
    if row.first_used_at is None:
        row.first_used_at = when
    row.last_used_at = when
    if deployment_group.name not in row.deployment_groups:
        # A new list, so the JSON column sees the change.
        row.deployment_groups = [*row.deployment_groups, deployment_group.name]
    session.flush()
    return row


def rename_group_in_revisions(
    session: Session, application: Application, old_name: str, new_name: str
) -> None:
    """Revisions list the groups they went to by name: follow a group's rename."""
    rows = session.scalars(
        select(ApplicationRevision).where(ApplicationRevision.application_id == application.id)
    )
    for row in rows:
        if old_name in row.deployment_groups:
            row.deployment_groups = [
                new_name if name == old_name else name for name in row.deployment_groups
            ]


def revision_info(row: ApplicationRevision) -> shapes.GenericRevisionInfo:
    info: shapes.GenericRevisionInfo = {
        "deploymentGroups": list(row.deployment_groups),
        "registerTime": row.registered_at,
    }
    if row.description is not None:
        info["description"] = row.description
    if row.first_used_at is not None:
        info["firstUsedTime"] = row.first_used_at
    if row.last_used_at is not None:
        info["lastUsedTime"] = row.last_used_at
    return info


def stored_location(row: ApplicationRevision) -> shapes.RevisionLocation:
    # The JSON column holds what revision_rules.normalize returned.
    return cast(shapes.RevisionLocation, row.revision)
