"""CodeCommit approval rule template operations: templates are account-level, associated
with repositories; creating a pull request copies the rules of its repository's templates.

The work is in services/forgeline/codecommit/approval_templates.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from forgeline.codecommit import approval_templates, repositories
from forgeline.codecommit.generated import shapes
from forgeline.codecommit.paging import max_results
from forgeline.codecommit.tables.pull_requests import ApprovalRuleTemplate
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import request_page_tokens

LIST_PAGE_SIZE = 100


class ApprovalTemplateOperations:
    def create_approval_rule_template(
        self, ctx: RequestContext, params: shapes.CreateApprovalRuleTemplateInput
    ) -> shapes.CreateApprovalRuleTemplateOutput:
        with session_scope() as session:
            template = approval_templates.create(session, ctx, params)
            rendered = approval_templates.render(template)
            approval_templates.publish_change(
                session, ctx, template, "approvalRuleTemplateCreated", []
            )
            return {"approvalRuleTemplate": rendered}

    def get_approval_rule_template(
        self, ctx: RequestContext, params: shapes.GetApprovalRuleTemplateInput
    ) -> shapes.GetApprovalRuleTemplateOutput:
        with session_scope() as session:
            template = approval_templates.get(session, ctx, params["approvalRuleTemplateName"])
            return {"approvalRuleTemplate": approval_templates.render(template)}

    def update_approval_rule_template_name(
        self, ctx: RequestContext, params: shapes.UpdateApprovalRuleTemplateNameInput
    ) -> shapes.UpdateApprovalRuleTemplateNameOutput:
        with session_scope() as session:
            template = approval_templates.rename(session, ctx, params)
            return {"approvalRuleTemplate": _template_updated(session, ctx, template)}

    def update_approval_rule_template_description(
        self, ctx: RequestContext, params: shapes.UpdateApprovalRuleTemplateDescriptionInput
    ) -> shapes.UpdateApprovalRuleTemplateDescriptionOutput:
        with session_scope() as session:
            template = approval_templates.set_description(session, ctx, params)
            return {"approvalRuleTemplate": _template_updated(session, ctx, template)}

    def update_approval_rule_template_content(
        self, ctx: RequestContext, params: shapes.UpdateApprovalRuleTemplateContentInput
    ) -> shapes.UpdateApprovalRuleTemplateContentOutput:
        with session_scope() as session:
            template = approval_templates.set_content(session, ctx, params)
            return {"approvalRuleTemplate": _template_updated(session, ctx, template)}

    def delete_approval_rule_template(
        self, ctx: RequestContext, params: shapes.DeleteApprovalRuleTemplateInput
    ) -> shapes.DeleteApprovalRuleTemplateOutput:
        with session_scope() as session:
            template = approval_templates.delete(session, ctx, params["approvalRuleTemplateName"])
            if template is None:
                return {"approvalRuleTemplateId": ""}
            approval_templates.publish_change(
                session, ctx, template, "approvalRuleTemplateDeleted", []
            )
            return {"approvalRuleTemplateId": template.id}

    def list_approval_rule_templates(
        self, ctx: RequestContext, params: shapes.ListApprovalRuleTemplatesInput
    ) -> shapes.ListApprovalRuleTemplatesOutput:
        limit = max_results(
            params.get("maxResults"), default=LIST_PAGE_SIZE, maximum=LIST_PAGE_SIZE
        )
        with session_scope() as session:
            names = approval_templates.list_names(session, ctx)
        scope: dict[str, Any] = {}
        page, token = request_page_tokens(ctx).page(
            names, lambda name: name, scope, params.get("nextToken"), limit
        )
        listed: shapes.ListApprovalRuleTemplatesOutput = {"approvalRuleTemplateNames": page}
        if token is not None:
            listed["nextToken"] = token
        return listed

    def associate_approval_rule_template_with_repository(
        self,
        ctx: RequestContext,
        params: shapes.AssociateApprovalRuleTemplateWithRepositoryInput,
    ) -> None:
        with session_scope() as session:
            template = approval_templates.get(session, ctx, params["approvalRuleTemplateName"])
            repository = repositories.get(session, ctx, params["repositoryName"])
            if approval_templates.associate(session, template, repository):
                approval_templates.publish_change(
                    session,
                    ctx,
                    template,
                    "approvalRuleTemplateAssociatedWithRepository",
                    [repository],
                )

    def disassociate_approval_rule_template_from_repository(
        self,
        ctx: RequestContext,
        params: shapes.DisassociateApprovalRuleTemplateFromRepositoryInput,
    ) -> None:
        with session_scope() as session:
            template = approval_templates.get(session, ctx, params["approvalRuleTemplateName"])
            repository = repositories.get(session, ctx, params["repositoryName"])
            if approval_templates.disassociate(session, template, repository):
                approval_templates.publish_change(
                    session,
                    ctx,
                    template,
                    "approvalRuleTemplateDisassociatedFromRepository",
                    [repository],
                )

    def batch_associate_approval_rule_template_with_repositories(
        self,
        ctx: RequestContext,
        params: shapes.BatchAssociateApprovalRuleTemplateWithRepositoriesInput,
    ) -> shapes.BatchAssociateApprovalRuleTemplateWithRepositoriesOutput:
        with session_scope() as session:
            template = approval_templates.get(session, ctx, params["approvalRuleTemplateName"])
            done, problems = approval_templates.batch(
                session, ctx, template, params["repositoryNames"], approval_templates.associate
            )
            if done:
                approval_templates.publish_change(
                    session,
                    ctx,
                    template,
                    "batchAssociateApprovalRuleTemplateWithRepositories",
                    done,
                )
        return {"associatedRepositoryNames": [r.name for r in done], "errors": problems}

    def batch_disassociate_approval_rule_template_from_repositories(
        self,
        ctx: RequestContext,
        params: shapes.BatchDisassociateApprovalRuleTemplateFromRepositoriesInput,
    ) -> shapes.BatchDisassociateApprovalRuleTemplateFromRepositoriesOutput:
        with session_scope() as session:
            template = approval_templates.get(session, ctx, params["approvalRuleTemplateName"])
            done, problems = approval_templates.batch(
                session, ctx, template, params["repositoryNames"], approval_templates.disassociate
            )
            if done:
                approval_templates.publish_change(
                    session,
                    ctx,
                    template,
                    "batchDisassociateApprovalRuleTemplateFromRepositories",
                    done,
                )
        return {"disassociatedRepositoryNames": [r.name for r in done], "errors": problems}

    def list_associated_approval_rule_templates_for_repository(
        self,
        ctx: RequestContext,
        params: shapes.ListAssociatedApprovalRuleTemplatesForRepositoryInput,
    ) -> shapes.ListAssociatedApprovalRuleTemplatesForRepositoryOutput:
        limit = max_results(
            params.get("maxResults"), default=LIST_PAGE_SIZE, maximum=LIST_PAGE_SIZE
        )
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            names = [
                t.name for t in approval_templates.templates_of_repository(session, repository)
            ]
        scope = {
            "repository": repository.id,
        }
        page, token = request_page_tokens(ctx).page(
            names, lambda name: name, scope, params.get("nextToken"), limit
        )
        listed: shapes.ListAssociatedApprovalRuleTemplatesForRepositoryOutput = {
            "approvalRuleTemplateNames": page
        }
        if token is not None:
            listed["nextToken"] = token
        return listed

    def list_repositories_for_approval_rule_template(
        self, ctx: RequestContext, params: shapes.ListRepositoriesForApprovalRuleTemplateInput
    ) -> shapes.ListRepositoriesForApprovalRuleTemplateOutput:
        limit = max_results(
            params.get("maxResults"), default=LIST_PAGE_SIZE, maximum=LIST_PAGE_SIZE
        )
        with session_scope() as session:
            template = approval_templates.get(session, ctx, params["approvalRuleTemplateName"])
            names = [r.name for r in approval_templates.repositories_of_template(session, template)]
            scope = {"template": template.id}
        page, token = request_page_tokens(ctx).page(
            names, lambda name: name, scope, params.get("nextToken"), limit
        )
        listed: shapes.ListRepositoriesForApprovalRuleTemplateOutput = {"repositoryNames": page}
        if token is not None:
            listed["nextToken"] = token
        return listed


def _template_updated(
    session: Session, ctx: RequestContext, template: ApprovalRuleTemplate
) -> shapes.ApprovalRuleTemplate:
    """The template as it is now; the change is published to its associated repositories."""
    rendered = approval_templates.render(template)
    approval_templates.publish_change(
        session,
        ctx,
        template,
        "approvalRuleTemplateUpdated",
        approval_templates.repositories_of_template(session, template),
    )
    return rendered
