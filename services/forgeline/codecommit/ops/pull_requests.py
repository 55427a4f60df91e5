"""CodeCommit operations: pull requests, approval rules and states, rule templates, PR merges.

Handlers validate what the model cannot, run the domain logic in forgeline.codecommit.pull_requests
in one transaction, and publish events as that transaction's last write.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from forgeline.codecommit import pull_requests as prs
from forgeline.codecommit import repositories
from forgeline.codecommit.generated import errors
from forgeline.codecommit.paging import max_results
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.idempotency import idempotent
from forgeline.core.pagination import request_page_tokens

LIST_PAGE_SIZE = 100
EVENTS_PAGE_SIZE = 100  # AWS: "The default is 100 events, which is also the maximum"


class PullRequestOperations:
    # -- pull requests --------------------------------------------------------------------
    def create_pull_request(self, ctx: RequestContext, params: Any) -> Any:
        token = params.get("clientRequestToken")
        prs.check_client_token(token)
        with session_scope() as session:
            created: list[prs.PullRequest] = []

            def create() -> dict[str, Any]:
                created.append(prs.create(session, ctx, params))
                return {"pullRequestId": created[0].pull_request_id}

            # The stored response is only the id: a replay renders the pull request as it is now.
            stored = idempotent(
                session,
                ctx,
                token,
                params,
                create,
                mismatch_error="IdempotencyParameterMismatchException",
            )
            pull_request = prs.get(session, ctx, stored["pullRequestId"])
            rendered = prs.render(session, pull_request)
            if created and created[0] is pull_request:
                repository = prs.repository_of(session, pull_request)
                prs.publish_change(
                    session,
                    repository,
                    prs.change_detail(
                        ctx.principal_arn, pull_request, repository, "pullRequestCreated"
                    ),
                )
            return {"pullRequest": rendered}

    def get_pull_request(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            return {"pullRequest": prs.render(session, pull_request)}

    def list_pull_requests(self, ctx: RequestContext, params: Any) -> Any:
        author = params.get("authorArn")
        if author is not None:
            prs.check_principal_arn(author, errors.InvalidAuthorArnException)
        status = params.get("pullRequestStatus")
        limit = max_results(
            params.get("maxResults"), default=LIST_PAGE_SIZE, maximum=LIST_PAGE_SIZE
        )
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            rows = prs.list_for_repository(session, repository, author, status)
        scope = {
            "repository": repository.id,
            "author": author,
            "status": status,
        }
        page, token = request_page_tokens(ctx).page(
            rows,
            lambda row: int(row.pull_request_id),
            scope,
            params.get("nextToken"),
            limit,
            descending=True,
        )
        return {"pullRequestIds": [row.pull_request_id for row in page], "nextToken": token}

    def describe_pull_request_events(self, ctx: RequestContext, params: Any) -> Any:
        actor = params.get("actorArn")
        if actor is not None:
            prs.check_principal_arn(actor, errors.InvalidActorArnException)
        event_type = params.get("pullRequestEventType")
        limit = max_results(
            params.get("maxResults"), default=EVENTS_PAGE_SIZE, maximum=EVENTS_PAGE_SIZE
        )
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            rows = prs.history(session, pull_request, event_type, actor)
            scope = {
                "pullRequest": pull_request.key,
                "type": event_type,
                "actor": actor,
            }
            page, token = request_page_tokens(ctx).page(
                rows, lambda row: row.id, scope, params.get("nextToken"), limit
            )
            return {
                "pullRequestEvents": [prs.render_event(pull_request, row) for row in page],
                "nextToken": token,
            }

    def update_pull_request_title(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            prs.set_title(pull_request, params["title"])
            return {"pullRequest": prs.render(session, pull_request)}

    def update_pull_request_description(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            prs.set_description(pull_request, params["description"])
            return {"pullRequest": prs.render(session, pull_request)}

    def update_pull_request_status(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            changed = prs.set_status(session, ctx, pull_request, params["pullRequestStatus"])
            rendered = prs.render(session, pull_request)
            if changed:
                self._publish(session, ctx, pull_request, "pullRequestStatusChanged")
            return {"pullRequest": rendered}

    # -- approval rules ---------------------------------------------------------------------
    def create_pull_request_approval_rule(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            rule = prs.create_rule(
                session,
                ctx,
                pull_request,
                params["approvalRuleName"],
                params["approvalRuleContent"],
            )
            rendered = prs.render_rule(rule)
            self._publish_rule(session, ctx, pull_request, rule, "pullRequestApprovalRuleCreated")
            return {"approvalRule": rendered}

    def update_pull_request_approval_rule_content(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            rule = prs.update_rule_content(
                session,
                ctx,
                pull_request,
                params["approvalRuleName"],
                params["newRuleContent"],
                params.get("existingRuleContentSha256"),
            )
            rendered = prs.render_rule(rule)
            self._publish_rule(session, ctx, pull_request, rule, "pullRequestApprovalRuleUpdated")
            return {"approvalRule": rendered}

    def delete_pull_request_approval_rule(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            rule = prs.delete_rule(session, ctx, pull_request, params["approvalRuleName"])
            if rule is None:
                return {"approvalRuleId": ""}
            self._publish_rule(session, ctx, pull_request, rule, "pullRequestApprovalRuleDeleted")
            return {"approvalRuleId": rule.id}

    # -- approval states and overrides ----------------------------------------------------------
    def get_pull_request_approval_states(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            revision = prs.find_revision(session, pull_request, params["revisionId"], current=False)
            approvers = prs.approvers_of(session, pull_request, revision.revision_id)
        return {"approvals": [{"userArn": arn, "approvalState": "APPROVE"} for arn in approvers]}

    def update_pull_request_approval_state(self, ctx: RequestContext, params: Any) -> Any:
        state = params["approvalState"]
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            if prs.set_approval(session, ctx, pull_request, params["revisionId"], state):
                self._publish(
                    session,
                    ctx,
                    pull_request,
                    "pullRequestApprovalStateChanged",
                    approvalStatus=state,
                )
        return {}

    def evaluate_pull_request_approval_rules(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            revision = prs.find_revision(session, pull_request, params["revisionId"], current=True)
            evaluation = prs.evaluate(session, pull_request, revision)
        return {
            "evaluation": {
                "approved": evaluation.approved,
                "overridden": evaluation.overridden,
                "approvalRulesSatisfied": list(evaluation.satisfied),
                "approvalRulesNotSatisfied": list(evaluation.not_satisfied),
            }
        }

    def override_pull_request_approval_rules(self, ctx: RequestContext, params: Any) -> Any:
        status = params["overrideStatus"]
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            if prs.set_override(session, ctx, pull_request, params["revisionId"], status):
                self._publish(
                    session,
                    ctx,
                    pull_request,
                    "pullRequestApprovalRuleOverridden",
                    overrideStatus=status,
                )
        return {}

    def get_pull_request_override_state(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request = prs.get(session, ctx, params["pullRequestId"])
            revision = prs.find_revision(session, pull_request, params["revisionId"], current=False)
        return {
            "overridden": revision.overridden_by is not None,
            "overrider": revision.overridden_by,
        }

    # -- merging pull requests ---------------------------------------------------------------------
    def merge_pull_request_by_fast_forward(self, ctx: RequestContext, params: Any) -> Any:
        return self._merge(ctx, params, "FAST_FORWARD_MERGE")

    def merge_pull_request_by_squash(self, ctx: RequestContext, params: Any) -> Any:
        return self._merge(ctx, params, "SQUASH_MERGE")

    def merge_pull_request_by_three_way(self, ctx: RequestContext, params: Any) -> Any:
        return self._merge(ctx, params, "THREE_WAY_MERGE")

    def _merge(self, ctx: RequestContext, params: Any, merge_option: str) -> Any:
        with session_scope() as session:
            pull_request = prs.merge(session, ctx, params, merge_option)
            return {"pullRequest": prs.render(session, pull_request)}

    # -- approval rule templates ----------------------------------------------------------------
    def create_approval_rule_template(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            template = prs.create_template(
                session,
                ctx,
                params["approvalRuleTemplateName"],
                params["approvalRuleTemplateContent"],
                params.get("approvalRuleTemplateDescription"),
            )
            rendered = prs.render_template(template)
            prs.publish_template_change(session, ctx, template, "approvalRuleTemplateCreated", [])
            return {"approvalRuleTemplate": rendered}

    def get_approval_rule_template(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            template = prs.get_template(session, ctx, params["approvalRuleTemplateName"])
            return {"approvalRuleTemplate": prs.render_template(template)}

    def update_approval_rule_template_name(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            template = prs.rename_template(
                session,
                ctx,
                params["oldApprovalRuleTemplateName"],
                params["newApprovalRuleTemplateName"],
            )
            return self._template_updated(session, ctx, template)

    def update_approval_rule_template_description(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            template = prs.set_template_description(
                session,
                ctx,
                params["approvalRuleTemplateName"],
                params["approvalRuleTemplateDescription"],
            )
            return self._template_updated(session, ctx, template)

    def update_approval_rule_template_content(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            template = prs.set_template_content(
                session,
                ctx,
                params["approvalRuleTemplateName"],
                params["newRuleContent"],
                params.get("existingRuleContentSha256"),
            )
            return self._template_updated(session, ctx, template)

    def delete_approval_rule_template(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            template = prs.delete_template(session, ctx, params["approvalRuleTemplateName"])
            if template is None:
                return {"approvalRuleTemplateId": ""}
            prs.publish_template_change(session, ctx, template, "approvalRuleTemplateDeleted", [])
            return {"approvalRuleTemplateId": template.id}

    def list_approval_rule_templates(self, ctx: RequestContext, params: Any) -> Any:
        limit = max_results(
            params.get("maxResults"), default=LIST_PAGE_SIZE, maximum=LIST_PAGE_SIZE
        )
        with session_scope() as session:
            names = prs.list_template_names(session, ctx)
        scope: dict[str, Any] = {}
        page, token = request_page_tokens(ctx).page(
            names, lambda name: name, scope, params.get("nextToken"), limit
        )
        return {"approvalRuleTemplateNames": page, "nextToken": token}

    def associate_approval_rule_template_with_repository(
        self, ctx: RequestContext, params: Any
    ) -> Any:
        with session_scope() as session:
            template = prs.get_template(session, ctx, params["approvalRuleTemplateName"])
            repository = repositories.get(session, ctx, params["repositoryName"])
            if prs.associate(session, template, repository):
                prs.publish_template_change(
                    session,
                    ctx,
                    template,
                    "approvalRuleTemplateAssociatedWithRepository",
                    [repository],
                )
        return {}

    def disassociate_approval_rule_template_from_repository(
        self, ctx: RequestContext, params: Any
    ) -> Any:
        with session_scope() as session:
            template = prs.get_template(session, ctx, params["approvalRuleTemplateName"])
            repository = repositories.get(session, ctx, params["repositoryName"])
            if prs.disassociate(session, template, repository):
                prs.publish_template_change(
                    session,
                    ctx,
                    template,
                    "approvalRuleTemplateDisassociatedFromRepository",
                    [repository],
                )
        return {}

    def batch_associate_approval_rule_template_with_repositories(
        self, ctx: RequestContext, params: Any
    ) -> Any:
        with session_scope() as session:
            template = prs.get_template(session, ctx, params["approvalRuleTemplateName"])
            done, problems = prs.batch(
                session, ctx, template, params["repositoryNames"], prs.associate
            )
            if done:
                prs.publish_template_change(
                    session,
                    ctx,
                    template,
                    "batchAssociateApprovalRuleTemplateWithRepositories",
                    done,
                )
        return {"associatedRepositoryNames": [r.name for r in done], "errors": problems}

    def batch_disassociate_approval_rule_template_from_repositories(
        self, ctx: RequestContext, params: Any
    ) -> Any:
        with session_scope() as session:
            template = prs.get_template(session, ctx, params["approvalRuleTemplateName"])
            done, problems = prs.batch(
                session, ctx, template, params["repositoryNames"], prs.disassociate
            )
            if done:
                prs.publish_template_change(
                    session,
                    ctx,
                    template,
                    "batchDisassociateApprovalRuleTemplateFromRepositories",
                    done,
                )
        return {"disassociatedRepositoryNames": [r.name for r in done], "errors": problems}

    def list_associated_approval_rule_templates_for_repository(
        self, ctx: RequestContext, params: Any
    ) -> Any:
        limit = max_results(
            params.get("maxResults"), default=LIST_PAGE_SIZE, maximum=LIST_PAGE_SIZE
        )
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            names = [t.name for t in prs.templates_of_repository(session, repository)]
        scope = {
            "repository": repository.id,
        }
        page, token = request_page_tokens(ctx).page(
            names, lambda name: name, scope, params.get("nextToken"), limit
        )
        return {"approvalRuleTemplateNames": page, "nextToken": token}

    def list_repositories_for_approval_rule_template(self, ctx: RequestContext, params: Any) -> Any:
        limit = max_results(
            params.get("maxResults"), default=LIST_PAGE_SIZE, maximum=LIST_PAGE_SIZE
        )
        with session_scope() as session:
            template = prs.get_template(session, ctx, params["approvalRuleTemplateName"])
            names = [r.name for r in prs.repositories_of_template(session, template)]
            scope = {"template": template.id}
        page, token = request_page_tokens(ctx).page(
            names, lambda name: name, scope, params.get("nextToken"), limit
        )
        return {"repositoryNames": page, "nextToken": token}

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _publish(
        session: Session,
        ctx: RequestContext,
        pull_request: prs.PullRequest,
        event: str,
        **extra: Any,
    ) -> None:
        repository = prs.repository_of(session, pull_request)
        prs.publish_change(
            session,
            repository,
            prs.change_detail(ctx.principal_arn, pull_request, repository, event, **extra),
        )

    @classmethod
    def _publish_rule(
        cls,
        session: Session,
        ctx: RequestContext,
        pull_request: prs.PullRequest,
        rule: prs.PullRequestApprovalRule,
        event: str,
    ) -> None:
        cls._publish(
            session,
            ctx,
            pull_request,
            event,
            approvalRuleId=rule.id,
            approvalRuleName=rule.name,
            approvalRuleContentSha256=rule.content_sha256,
        )

    @staticmethod
    def _template_updated(
        session: Session, ctx: RequestContext, template: prs.ApprovalRuleTemplate
    ) -> Any:
        rendered = prs.render_template(template)
        prs.publish_template_change(
            session,
            ctx,
            template,
            "approvalRuleTemplateUpdated",
            prs.repositories_of_template(session, template),
        )
        return {"approvalRuleTemplate": rendered}
