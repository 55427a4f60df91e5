"""Approval rule templates: account-wide rules, associated with repositories.

A template lives in an account and region. Associated with a repository, it gives each
pull request opened there afterwards a rule (when its destination branch matches the
template's); the rule is a copy, so later changes to the template leave it as it was.
Every change is published as a "CodeCommit Approval Rule Template Change" event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from forgeline.codecommit import approvals, repositories
from forgeline.codecommit.event_format import EVENT_SOURCE, event_date
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.tables.pull_requests import (
    ApprovalRuleTemplate,
    ApprovalRuleTemplateAssociation,
)
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core import events
from forgeline.core.context import RequestContext
from forgeline.core.db import utcnow
from forgeline.core.protocol.errors import AwsError

TEMPLATE_DETAIL_TYPE = "CodeCommit Approval Rule Template Change"

# CodeCommit quotas (user guide, "Quotas").
MAX_TEMPLATES = 1000
MAX_TEMPLATES_PER_REPOSITORY = 25
MAX_BATCH_REPOSITORIES = 100

# The batch association and disassociation errors are the same shape in the model.
BatchError = shapes.BatchAssociateApprovalRuleTemplateWithRepositoriesError
RepositoryAction = Callable[[Session, ApprovalRuleTemplate, Repository], bool]


# -- checks and lookups ------------------------------------------------------------------
def check_name(name: str) -> None:
    if not approvals.is_valid_name(name):
        raise errors.InvalidApprovalRuleTemplateNameException(
            f"{name!r} is not a valid approval rule template name: use 1-100 letters, numbers, "
            "spaces, periods, underscores and dashes, not ending in .git."
        )


def check_content(content: str) -> None:
    try:
        approvals.parse_rule_content(content)
    except approvals.InvalidRuleContent as problem:
        raise errors.InvalidApprovalRuleTemplateContentException(str(problem)) from None


def find(session: Session, ctx: RequestContext, name: str) -> ApprovalRuleTemplate | None:
    check_name(name)
    return session.scalars(
        select(ApprovalRuleTemplate).where(
            ApprovalRuleTemplate.account_id == ctx.account_id,
            ApprovalRuleTemplate.region == ctx.region,
            ApprovalRuleTemplate.name == name,
        )
    ).first()


def get(session: Session, ctx: RequestContext, name: str) -> ApprovalRuleTemplate:
    template = find(session, ctx, name)
    if template is None:
        raise errors.ApprovalRuleTemplateDoesNotExistException(
            f"Approval rule template {name!r} does not exist in {ctx.region}."
        )
    return template


def list_names(session: Session, ctx: RequestContext) -> list[str]:
    return list(
        session.scalars(
            select(ApprovalRuleTemplate.name)
            .where(
                ApprovalRuleTemplate.account_id == ctx.account_id,
                ApprovalRuleTemplate.region == ctx.region,
            )
            .order_by(ApprovalRuleTemplate.name)
        )
    )


# -- create, change, delete ----------------------------------------------------------------
def create(
    session: Session, ctx: RequestContext, params: shapes.CreateApprovalRuleTemplateInput
) -> ApprovalRuleTemplate:
    name = params["approvalRuleTemplateName"]
    content = params["approvalRuleTemplateContent"]
    if find(session, ctx, name) is not None:
        raise _already_exists(name)
    check_content(content)
    count = session.scalar(
        select(func.count())
        .select_from(ApprovalRuleTemplate)
        .where(
            ApprovalRuleTemplate.account_id == ctx.account_id,
            ApprovalRuleTemplate.region == ctx.region,
        )
    )
    if (count or 0) >= MAX_TEMPLATES:
        raise errors.NumberOfRuleTemplatesExceededException(
            f"A region can have at most {MAX_TEMPLATES} approval rule templates."
        )
    now = utcnow()
    template = ApprovalRuleTemplate(
        id=str(uuid.uuid4()),
        account_id=ctx.account_id,
        region=ctx.region,
        name=name,
        description=params.get("approvalRuleTemplateDescription") or "",
        content=content,
        content_sha256=approvals.content_sha256(content),
        last_modified_user=ctx.principal_arn,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise _already_exists(name) from None
    return template


def _already_exists(name: str) -> AwsError:
    return errors.ApprovalRuleTemplateNameAlreadyExistsException(
        f"An approval rule template named {name!r} already exists."
    )


def rename(
    session: Session, ctx: RequestContext, params: shapes.UpdateApprovalRuleTemplateNameInput
) -> ApprovalRuleTemplate:
    old, new = params["oldApprovalRuleTemplateName"], params["newApprovalRuleTemplateName"]
    template = get(session, ctx, old)
    check_name(new)
    if new != old:
        if find(session, ctx, new) is not None:
            raise _already_exists(new)
        template.name = new
        _touch(ctx, template)
    return template


def set_description(
    session: Session,
    ctx: RequestContext,
    params: shapes.UpdateApprovalRuleTemplateDescriptionInput,
) -> ApprovalRuleTemplate:
    template = get(session, ctx, params["approvalRuleTemplateName"])
    template.description = params["approvalRuleTemplateDescription"]
    _touch(ctx, template)
    return template


def set_content(
    session: Session, ctx: RequestContext, params: shapes.UpdateApprovalRuleTemplateContentInput
) -> ApprovalRuleTemplate:
    template = get(session, ctx, params["approvalRuleTemplateName"])
    expected_sha256 = params.get("existingRuleContentSha256")
    if expected_sha256 is not None and expected_sha256 != template.content_sha256:
        raise errors.InvalidRuleContentSha256Exception(
            f"The rule content SHA-256 {expected_sha256!r} does not match the template's "
            "current content."
        )
    content = params["newRuleContent"]
    check_content(content)
    template.content = content
    template.content_sha256 = approvals.content_sha256(content)
    _touch(ctx, template)
    return template


def _touch(ctx: RequestContext, template: ApprovalRuleTemplate) -> None:
    template.last_modified_user = ctx.principal_arn
    template.updated_at = utcnow()


def delete(session: Session, ctx: RequestContext, name: str) -> ApprovalRuleTemplate | None:
    """The deleted template, or None if it was already gone (AWS answers success)."""
    template = find(session, ctx, name)
    if template is None:
        return None
    if repositories_of_template(session, template):
        raise errors.ApprovalRuleTemplateInUseException(
            f"Approval rule template {name!r} is associated with repositories; disassociate "
            "them first."
        )
    session.delete(template)
    return template


# -- associations ------------------------------------------------------------------------------
def templates_of_repository(session: Session, repository: Repository) -> list[ApprovalRuleTemplate]:
    return list(
        session.scalars(
            select(ApprovalRuleTemplate)
            .join(
                ApprovalRuleTemplateAssociation,
                ApprovalRuleTemplateAssociation.template_id == ApprovalRuleTemplate.id,
            )
            .where(ApprovalRuleTemplateAssociation.repository_id == repository.id)
            .order_by(ApprovalRuleTemplate.name)
        )
    )


def repositories_of_template(session: Session, template: ApprovalRuleTemplate) -> list[Repository]:
    return list(
        session.scalars(
            select(Repository)
            .join(
                ApprovalRuleTemplateAssociation,
                ApprovalRuleTemplateAssociation.repository_id == Repository.id,
            )
            .where(ApprovalRuleTemplateAssociation.template_id == template.id)
            .order_by(Repository.name)
        )
    )


def associate(session: Session, template: ApprovalRuleTemplate, repository: Repository) -> bool:
    """Associate; True if it is new (associating twice is a no-op)."""
    if session.get(ApprovalRuleTemplateAssociation, (template.id, repository.id)) is not None:
        return False
    count = session.scalar(
        select(func.count())
        .select_from(ApprovalRuleTemplateAssociation)
        .where(ApprovalRuleTemplateAssociation.repository_id == repository.id)
    )
    if (count or 0) >= MAX_TEMPLATES_PER_REPOSITORY:
        raise errors.MaximumRuleTemplatesAssociatedWithRepositoryException(
            f"Repository {repository.name} already has {MAX_TEMPLATES_PER_REPOSITORY} "
            "associated approval rule templates."
        )
    session.add(
        ApprovalRuleTemplateAssociation(
            template_id=template.id, repository_id=repository.id, created_at=utcnow()
        )
    )
    session.flush()
    return True


def disassociate(session: Session, template: ApprovalRuleTemplate, repository: Repository) -> bool:
    association = session.get(ApprovalRuleTemplateAssociation, (template.id, repository.id))
    if association is None:
        return False
    session.delete(association)
    session.flush()
    return True


def batch(
    session: Session,
    ctx: RequestContext,
    template: ApprovalRuleTemplate,
    names: list[str],
    action: RepositoryAction,
) -> tuple[list[Repository], list[BatchError]]:
    """Apply `action` per repository name; failures become error entries, not exceptions."""
    if not names:
        raise errors.RepositoryNamesRequiredException("At least one repository name is required.")
    if len(names) > MAX_BATCH_REPOSITORIES:
        raise errors.MaximumRepositoryNamesExceededException(
            f"At most {MAX_BATCH_REPOSITORIES} repository names are allowed."
        )
    done: list[Repository] = []
    problems: list[BatchError] = []
    for name in dict.fromkeys(names):
        try:
            with session.begin_nested():
                repository = repositories.get(session, ctx, name)
                action(session, template, repository)
            done.append(repository)
        except AwsError as error:
            problems.append(
                {"repositoryName": name, "errorCode": error.code, "errorMessage": error.message}
            )
    return done, problems


# -- rendering and events ----------------------------------------------------------------------
def render(template: ApprovalRuleTemplate) -> shapes.ApprovalRuleTemplate:
    return {
        "approvalRuleTemplateId": template.id,
        "approvalRuleTemplateName": template.name,
        "approvalRuleTemplateDescription": template.description,
        "approvalRuleTemplateContent": template.content,
        "ruleContentSha256": template.content_sha256,
        "lastModifiedDate": template.updated_at,
        "creationDate": template.created_at,
        "lastModifiedUser": template.last_modified_user,
    }


def publish_change(
    session: Session,
    ctx: RequestContext,
    template: ApprovalRuleTemplate,
    event: str,
    repositories_touched: list[Repository],
) -> None:
    """Publish a "CodeCommit Approval Rule Template Change"; call it as the last write."""
    events.publish(
        session,
        account_id=template.account_id,
        region=template.region,
        source=EVENT_SOURCE,
        detail_type=TEMPLATE_DETAIL_TYPE,
        detail={
            "event": event,
            "approvalRuleTemplateId": template.id,
            "approvalRuleTemplateName": template.name,
            "approvalRuleTemplateContentSha256": template.content_sha256,
            "callerUserArn": ctx.principal_arn,
            "creationDate": event_date(template.created_at),
            "lastModifiedDate": event_date(template.updated_at),
            "repositories": {r.name: r.id for r in repositories_touched},
        },
        resources=[r.arn() for r in repositories_touched],
    )
