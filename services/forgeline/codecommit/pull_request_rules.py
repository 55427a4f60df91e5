"""A pull request's approval rules, its approvals and overrides, and their evaluation.

Rules are written by hand or copied from the repository's approval rule templates when
the pull request is opened (those cannot be changed). Approvals and an override belong
to one revision, so a new commit on the source branch starts them over. What a rule
document means is `approvals`' job; this module keeps the rows and the history.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codecommit import approval_templates, approvals
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.pull_request_events import record
from forgeline.codecommit.pull_request_lookups import find_revision, require_open
from forgeline.codecommit.tables.pull_requests import (
    PullRequest,
    PullRequestApproval,
    PullRequestApprovalRule,
    PullRequestRevision,
)
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext
from forgeline.core.db import utcnow

# CodeCommit quotas (user guide, "Quotas").
MAX_RULES_PER_PULL_REQUEST = 30
MAX_TEMPLATE_RULES_PER_PULL_REQUEST = 25


# -- rules ----------------------------------------------------------------------------------
def rules_of(session: Session, pull_request: PullRequest) -> list[PullRequestApprovalRule]:
    return list(
        session.scalars(
            select(PullRequestApprovalRule)
            .where(PullRequestApprovalRule.pull_request_key == pull_request.key)
            .order_by(PullRequestApprovalRule.created_at, PullRequestApprovalRule.name)
        )
    )


def _rule_named(
    session: Session, pull_request: PullRequest, name: str
) -> PullRequestApprovalRule | None:
    return session.scalars(
        select(PullRequestApprovalRule).where(
            PullRequestApprovalRule.pull_request_key == pull_request.key,
            PullRequestApprovalRule.name == name,
        )
    ).first()


def check_rule_name(name: str) -> None:
    if not approvals.is_valid_name(name):
        raise errors.InvalidApprovalRuleNameException(
            f"{name!r} is not a valid approval rule name: use 1-100 letters, numbers, spaces, "
            "periods, underscores and dashes, not ending in .git."
        )


def check_rule_content(content: str) -> None:
    try:
        approvals.parse_rule_content(content)
    except approvals.InvalidRuleContent as problem:
        raise errors.InvalidApprovalRuleContentException(str(problem)) from None


def apply_templates(session: Session, pull_request: PullRequest, repository: Repository) -> None:
    """Copy the rules of the repository's templates whose branches match a new pull request."""
    applied = 0
    for template in approval_templates.templates_of_repository(session, repository):
        if applied >= MAX_TEMPLATE_RULES_PER_PULL_REQUEST:
            break
        content = approvals.parse_rule_content(template.content)
        if not content.applies_to(pull_request.destination_reference):
            continue
        now = utcnow()
        session.add(
            PullRequestApprovalRule(
                id=str(uuid.uuid4()),
                pull_request_key=pull_request.key,
                name=template.name,
                content=template.content,
                content_sha256=template.content_sha256,
                last_modified_user=template.last_modified_user,
                template_id=template.id,
                template_name=template.name,
                created_at=now,
                updated_at=now,
            )
        )
        applied += 1


def create_rule(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    params: shapes.CreatePullRequestApprovalRuleInput,
) -> PullRequestApprovalRule:
    name, content = params["approvalRuleName"], params["approvalRuleContent"]
    require_open(pull_request)
    check_rule_name(name)
    check_rule_content(content)
    existing = rules_of(session, pull_request)
    if any(rule.name == name for rule in existing):
        raise errors.ApprovalRuleNameAlreadyExistsException(
            f"Pull request {pull_request.pull_request_id} already has a rule named {name!r}."
        )
    if len(existing) >= MAX_RULES_PER_PULL_REQUEST:
        raise errors.NumberOfRulesExceededException(
            f"A pull request can have at most {MAX_RULES_PER_PULL_REQUEST} approval rules."
        )
    now = utcnow()
    rule = PullRequestApprovalRule(
        id=str(uuid.uuid4()),
        pull_request_key=pull_request.key,
        name=name,
        content=content,
        content_sha256=approvals.content_sha256(content),
        last_modified_user=ctx.principal_arn,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    _record_rule_event(session, ctx, pull_request, "PULL_REQUEST_APPROVAL_RULE_CREATED", rule)
    return rule


def update_rule_content(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    params: shapes.UpdatePullRequestApprovalRuleContentInput,
) -> PullRequestApprovalRule:
    name = params["approvalRuleName"]
    require_open(pull_request)
    check_rule_name(name)
    rule = _rule_named(session, pull_request, name)
    if rule is None:
        raise errors.ApprovalRuleDoesNotExistException(
            f"Pull request {pull_request.pull_request_id} has no approval rule named {name!r}."
        )
    if rule.template_id is not None:
        raise errors.CannotModifyApprovalRuleFromTemplateException(
            f"Approval rule {name!r} comes from an approval rule template and cannot be changed."
        )
    expected_sha256 = params.get("existingRuleContentSha256")
    if expected_sha256 is not None and expected_sha256 != rule.content_sha256:
        raise errors.InvalidRuleContentSha256Exception(
            f"The rule content SHA-256 {expected_sha256!r} does not match the rule's current "
            "content."
        )
    content = params["newRuleContent"]
    check_rule_content(content)
    rule.content = content
    rule.content_sha256 = approvals.content_sha256(content)
    rule.last_modified_user = ctx.principal_arn
    rule.updated_at = utcnow()
    _record_rule_event(session, ctx, pull_request, "PULL_REQUEST_APPROVAL_RULE_UPDATED", rule)
    return rule


def delete_rule(
    session: Session, ctx: RequestContext, pull_request: PullRequest, name: str
) -> PullRequestApprovalRule | None:
    """The deleted rule, or None if there was none by that name (AWS answers success)."""
    require_open(pull_request)
    check_rule_name(name)
    rule = _rule_named(session, pull_request, name)
    if rule is None:
        return None
    if rule.template_id is not None:
        raise errors.CannotDeleteApprovalRuleFromTemplateException(
            f"Approval rule {name!r} comes from an approval rule template and cannot be deleted."
        )
    session.delete(rule)
    _record_rule_event(session, ctx, pull_request, "PULL_REQUEST_APPROVAL_RULE_DELETED", rule)
    return rule


def _record_rule_event(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    event_type: str,
    rule: PullRequestApprovalRule,
) -> None:
    record(
        session,
        pull_request,
        event_type,
        ctx.principal_arn,
        {
            "approvalRuleEventMetadata": {
                "approvalRuleName": rule.name,
                "approvalRuleId": rule.id,
                "approvalRuleContent": rule.content,
            }
        },
    )


def render_rule(rule: PullRequestApprovalRule) -> shapes.ApprovalRule:
    rendered: shapes.ApprovalRule = {
        "approvalRuleId": rule.id,
        "approvalRuleName": rule.name,
        "approvalRuleContent": rule.content,
        "ruleContentSha256": rule.content_sha256,
        "lastModifiedDate": rule.updated_at,
        "creationDate": rule.created_at,
        "lastModifiedUser": rule.last_modified_user,
    }
    if rule.template_id is not None:
        origin: shapes.OriginApprovalRuleTemplate = {"approvalRuleTemplateId": rule.template_id}
        if rule.template_name is not None:
            origin["approvalRuleTemplateName"] = rule.template_name
        rendered["originApprovalRuleTemplate"] = origin
    return rendered


# -- approvals and overrides -------------------------------------------------------------------
def approvers_of(session: Session, pull_request: PullRequest, revision_id: str) -> list[str]:
    return list(
        session.scalars(
            select(PullRequestApproval.user_arn)
            .where(
                PullRequestApproval.pull_request_key == pull_request.key,
                PullRequestApproval.revision_id == revision_id,
            )
            .order_by(PullRequestApproval.created_at, PullRequestApproval.user_arn)
        )
    )


def set_approval(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    revision_id: str,
    state: str,
) -> bool:
    """APPROVE or REVOKE the caller's approval of the current revision. True if it changed."""
    require_open(pull_request)
    find_revision(session, pull_request, revision_id, current=True)
    key = (pull_request.key, revision_id, ctx.principal_arn)
    existing = session.get(PullRequestApproval, key)
    if state == "APPROVE":
        if ctx.principal_arn == pull_request.author_arn:
            raise errors.PullRequestCannotBeApprovedByAuthorException(
                "The author of a pull request cannot approve it."
            )
        if existing is not None:
            return False
        if len(approvers_of(session, pull_request, revision_id)) >= approvals.MAX_APPROVALS:
            raise errors.MaximumNumberOfApprovalsExceededException(
                f"A pull request revision can have at most {approvals.MAX_APPROVALS} approvals."
            )
        session.add(
            PullRequestApproval(
                pull_request_key=pull_request.key,
                revision_id=revision_id,
                user_arn=ctx.principal_arn,
                created_at=utcnow(),
            )
        )
    else:
        if existing is None:
            return False
        session.delete(existing)
    record(
        session,
        pull_request,
        "PULL_REQUEST_APPROVAL_STATE_CHANGED",
        ctx.principal_arn,
        {"approvalStateChangedEventMetadata": {"revisionId": revision_id, "approvalStatus": state}},
    )
    return True


def set_override(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    revision_id: str,
    status: str,
) -> bool:
    """OVERRIDE sets the rules aside for the current revision; REVOKE restores them."""
    require_open(pull_request)
    revision = find_revision(session, pull_request, revision_id, current=True)
    if status == "OVERRIDE":
        if revision.overridden_by is not None:
            raise errors.OverrideAlreadySetException(
                f"The approval rules of pull request {pull_request.pull_request_id} are "
                "already overridden."
            )
        revision.overridden_by = ctx.principal_arn
    else:
        if revision.overridden_by is None:
            return False
        revision.overridden_by = None
    record(
        session,
        pull_request,
        "PULL_REQUEST_APPROVAL_RULE_OVERRIDDEN",
        ctx.principal_arn,
        {
            "approvalRuleOverriddenEventMetadata": {
                "revisionId": revision_id,
                "overrideStatus": status,
            }
        },
    )
    return True


def evaluate(
    session: Session, pull_request: PullRequest, revision: PullRequestRevision
) -> approvals.Evaluation:
    rules = [
        (rule.name, approvals.parse_rule_content(rule.content))
        for rule in rules_of(session, pull_request)
    ]
    return approvals.evaluate(
        rules,
        approvers_of(session, pull_request, revision.revision_id),
        overridden=revision.overridden_by is not None,
    )


def render_evaluation(evaluation: approvals.Evaluation) -> shapes.Evaluation:
    return {
        "approved": evaluation.approved,
        "overridden": evaluation.overridden,
        "approvalRulesSatisfied": list(evaluation.satisfied),
        "approvalRulesNotSatisfied": list(evaluation.not_satisfied),
    }
