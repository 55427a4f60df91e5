"""Application revisions: RegisterApplicationRevision, GetApplicationRevision,
BatchGetApplicationRevisions and ListApplicationRevisions (sorted and filtered as AWS does)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from forgeline.codedeploy import revision_rules, revisions
from forgeline.codedeploy.generated import errors, shapes
from forgeline.codedeploy.ops.lookups import require_application
from forgeline.codedeploy.tables.applications import ApplicationRevision
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import request_page_tokens

# AWS's limit on a description's length.
MAX_DESCRIPTION = 256
MAX_BATCH = 100
LIST_PAGE_SIZE = 100
# S3's limits on bucket names and keys, for the list filters.
_MAX_KEY_PREFIX_BYTES = 1024
_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)

SORT_TIMES: dict[str, Callable[[ApplicationRevision], dt.datetime | None]] = {
    "registerTime": lambda row: row.registered_at,
    "firstUsedTime": lambda row: row.first_used_at,
    "lastUsedTime": lambda row: row.last_used_at,
}


class RevisionOperations:
    def register_application_revision(
        self, ctx: RequestContext, params: shapes.RegisterApplicationRevisionInput
    ) -> None:
        description = params.get("description")
        if description is not None and len(description) > MAX_DESCRIPTION:
            raise errors.DescriptionTooLongException(
                f"A revision description can be at most {MAX_DESCRIPTION} characters long."
            )
        revision = revision_rules.normalize(params["revision"])
        for attempt in (1, 2):
            try:
                with session_scope() as session:
                    application = require_application(
                        session, ctx.account_id, ctx.region, params["applicationName"]
                    )
                    revision_rules.check_platform(revision, application.compute_platform)
                    revisions.register(session, application, revision, description)
                return
            except IntegrityError:
                # The same location registered at the same moment: the second writer
                # finds the first one's row on its retry.
                if attempt == 2:
                    raise

    def get_application_revision(
        self, ctx: RequestContext, params: shapes.GetApplicationRevisionInput
    ) -> shapes.GetApplicationRevisionOutput:
        revision = revision_rules.normalize(params["revision"])
        with session_scope(readonly=True) as session:
            application = require_application(
                session, ctx.account_id, ctx.region, params["applicationName"]
            )
            row = revisions.find_revision(session, application, revision)
            if row is None:
                raise errors.RevisionDoesNotExistException(
                    f"The revision {revision_rules.describe(revision)} is not registered "
                    f"for application {application.name}."
                )
            return {
                "applicationName": application.name,
                "revision": revisions.stored_location(row),
                "revisionInfo": revisions.revision_info(row),
            }

    def batch_get_application_revisions(
        self, ctx: RequestContext, params: shapes.BatchGetApplicationRevisionsInput
    ) -> shapes.BatchGetApplicationRevisionsOutput:
        wanted = params["revisions"]
        if not wanted:
            raise errors.RevisionRequiredException("Name at least one revision.")
        if len(wanted) > MAX_BATCH:
            raise errors.BatchLimitExceededException(
                f"BatchGetApplicationRevisions takes at most {MAX_BATCH} revisions."
            )
        locations = [revision_rules.normalize(revision) for revision in wanted]
        found: list[shapes.RevisionInfo] = []
        missing: list[str] = []
        with session_scope(readonly=True) as session:
            application = require_application(
                session, ctx.account_id, ctx.region, params["applicationName"]
            )
            for location in locations:
                row = revisions.find_revision(session, application, location)
                if row is None:
                    missing.append(revision_rules.describe(location))
                    continue
                found.append(
                    {
                        "revisionLocation": revisions.stored_location(row),
                        "genericRevisionInfo": revisions.revision_info(row),
                    }
                )
            output: shapes.BatchGetApplicationRevisionsOutput = {
                "applicationName": application.name,
                "revisions": found,
            }
        if missing:
            output["errorMessage"] = "Revisions not registered: " + ", ".join(missing)
        return output

    def list_application_revisions(
        self, ctx: RequestContext, params: shapes.ListApplicationRevisionsInput
    ) -> shapes.ListApplicationRevisionsOutput:
        bucket, prefix = params.get("s3Bucket"), params.get("s3KeyPrefix")
        _check_s3_filters(bucket, prefix)
        sort_by = params.get("sortBy", "registerTime")
        descending = params.get("sortOrder", "ascending") == "descending"
        deployed = params.get("deployed", "ignore")
        sort_time = SORT_TIMES[sort_by]
        with session_scope(readonly=True) as session:
            application = require_application(
                session, ctx.account_id, ctx.region, params["applicationName"]
            )
            rows = [
                row
                for row in session.scalars(
                    select(ApplicationRevision).where(
                        ApplicationRevision.application_id == application.id
                    )
                )
                if _wanted(row, bucket, prefix, deployed)
            ]

        def sort_key(row: ApplicationRevision) -> tuple[float, str]:
            # Never-used revisions sort as the oldest; the id breaks ties stably.
            return ((sort_time(row) or _NEVER).timestamp(), row.id)

        rows.sort(key=sort_key, reverse=descending)
        scope: dict[str, Any] = {
            "application": application.id,
            "sortBy": sort_by,
            "descending": descending,
            "bucket": bucket,
            "prefix": prefix,
            "deployed": deployed,
        }
        page, token = request_page_tokens(ctx).page(
            rows, sort_key, scope, params.get("nextToken"), LIST_PAGE_SIZE, descending=descending
        )
        output: shapes.ListApplicationRevisionsOutput = {
            "revisions": [revisions.stored_location(row) for row in page]
        }
        if token:
            output["nextToken"] = token
        return output


def _check_s3_filters(bucket: str | None, prefix: str | None) -> None:
    if prefix is not None and not bucket:
        raise errors.BucketNameFilterRequiredException(
            "An s3KeyPrefix filter needs the s3Bucket it applies to."
        )
    if bucket is not None and not 3 <= len(bucket) <= 63:
        raise errors.InvalidBucketNameFilterException(
            f"{bucket!r} is not a valid S3 bucket name (3 to 63 characters)."
        )
    if prefix is not None and len(prefix.encode()) > _MAX_KEY_PREFIX_BYTES:
        raise errors.InvalidKeyPrefixFilterException(
            f"An S3 key prefix can be at most {_MAX_KEY_PREFIX_BYTES} bytes long."
        )


def _wanted(
    row: ApplicationRevision, bucket: str | None, prefix: str | None, deployed: str
) -> bool:
    if deployed == "include" and row.first_used_at is None:
        return False
    if deployed == "exclude" and row.first_used_at is not None:
        return False
    if bucket is None:
        return True
    s3 = row.revision.get("s3Location") or {}
    if row.revision.get("revisionType") != "S3" or s3.get("bucket") != bucket:
        return False
    return prefix is None or str(s3.get("key", "")).startswith(prefix)
