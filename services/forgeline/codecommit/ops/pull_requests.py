"""CodeCommit operations: pull requests, approval rules and states, pull request merges.

Handlers validate what the model cannot, run the domain logic in one transaction
(`pull_requests` and the `pull_request_*` modules beside it; templates are in
ops/approval_templates.py), and publish events as that transaction's last write.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from forgeline.codecommit import merging, repositories
from forgeline.codecommit import pull_request_events as pr_events
from forgeline.codecommit import pull_request_lookups as lookups
from forgeline.codecommit import pull_request_rules as rules
from forgeline.codecommit import pull_requests as prs
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.paging import max_results
from forgeline.codecommit.tables.pull_requests import (
    PullRequest,
    PullRequestApprovalRule,
)
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.idempotency import idempotent
from forgeline.core.pagination import request_page_tokens

LIST_PAGE_SIZE = 100
EVENTS_PAGE_SIZE = 100  # AWS: "The default is 100 events, which is also the maximum"


class PullRequestOperations:
    # -- pull requests --------------------------------------------------------------------
    def create_pull_request(
        self, ctx: RequestContext, params: shapes.CreatePullRequestInput
    ) -> shapes.CreatePullRequestOutput:
        token = params.get("clientRequestToken")
        prs.check_client_token(token)
        with session_scope() as session:
            created: list[PullRequest] = []

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
            pull_request = lookups.get(session, ctx, stored["pullRequestId"])
            rendered = prs.render(session, pull_request)
            if created and created[0] is pull_request:
                _publish(session, ctx, pull_request, "pullRequestCreated")
            return {"pullRequest": rendered}

    def get_pull_request(
        self, ctx: RequestContext, params: shapes.GetPullRequestInput
    ) -> shapes.GetPullRequestOutput:
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            return {"pullRequest": prs.render(session, pull_request)}

    def list_pull_requests(
        self, ctx: RequestContext, params: shapes.ListPullRequestsInput
    ) -> shapes.ListPullRequestsOutput:
        author = params.get("authorArn")
        if author is not None:
            lookups.check_principal_arn(author, errors.InvalidAuthorArnException)
        status = params.get("pullRequestStatus")
        limit = max_results(
            params.get("maxResults"), default=LIST_PAGE_SIZE, maximum=LIST_PAGE_SIZE
        )
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            rows = lookups.list_for_repository(session, repository, author, status)
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
        listed: shapes.ListPullRequestsOutput = {
            "pullRequestIds": [row.pull_request_id for row in page]
        }
        if token is not None:
            listed["nextToken"] = token
        return listed

    def describe_pull_request_events(
        self, ctx: RequestContext, params: shapes.DescribePullRequestEventsInput
    ) -> shapes.DescribePullRequestEventsOutput:
        actor = params.get("actorArn")
        if actor is not None:
            lookups.check_principal_arn(actor, errors.InvalidActorArnException)
        event_type = params.get("pullRequestEventType")
        limit = max_results(
            params.get("maxResults"), default=EVENTS_PAGE_SIZE, maximum=EVENTS_PAGE_SIZE
        )
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            rows = pr_events.history(session, pull_request, event_type, actor)
            scope = {
                "pullRequest": pull_request.key,
                "type": event_type,
                "actor": actor,
            }
            page, token = request_page_tokens(ctx).page(
                rows, lambda row: row.id, scope, params.get("nextToken"), limit
            )
            described: shapes.DescribePullRequestEventsOutput = {
                "pullRequestEvents": [pr_events.render_event(pull_request, row) for row in page]
            }
            if token is not None:
                described["nextToken"] = token
            return described

    def update_pull_request_title(
        self, ctx: RequestContext, params: shapes.UpdatePullRequestTitleInput
    ) -> shapes.UpdatePullRequestTitleOutput:
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            prs.set_title(pull_request, params["title"])
            return {"pullRequest": prs.render(session, pull_request)}

    def update_pull_request_description(
        self, ctx: RequestContext, params: shapes.UpdatePullRequestDescriptionInput
    ) -> shapes.UpdatePullRequestDescriptionOutput:
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            prs.set_description(pull_request, params["description"])
            return {"pullRequest": prs.render(session, pull_request)}

    def update_pull_request_status(
        self, ctx: RequestContext, params: shapes.UpdatePullRequestStatusInput
    ) -> shapes.UpdatePullRequestStatusOutput:
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            changed = prs.set_status(session, ctx, pull_request, params["pullRequestStatus"])
            rendered = prs.render(session, pull_request)
            if changed:
                _publish(session, ctx, pull_request, "pullRequestStatusChanged")
            return {"pullRequest": rendered}

    # -- approval rules ---------------------------------------------------------------------
    def create_pull_request_approval_rule(
        self, ctx: RequestContext, params: shapes.CreatePullRequestApprovalRuleInput
    ) -> shapes.CreatePullRequestApprovalRuleOutput:
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            rule = rules.create_rule(session, ctx, pull_request, params)
            rendered = rules.render_rule(rule)
            _publish_rule(session, ctx, pull_request, rule, "pullRequestApprovalRuleCreated")
            return {"approvalRule": rendered}

    def update_pull_request_approval_rule_content(
        self, ctx: RequestContext, params: shapes.UpdatePullRequestApprovalRuleContentInput
    ) -> shapes.UpdatePullRequestApprovalRuleContentOutput:
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            rule = rules.update_rule_content(session, ctx, pull_request, params)
            rendered = rules.render_rule(rule)
            _publish_rule(session, ctx, pull_request, rule, "pullRequestApprovalRuleUpdated")
            return {"approvalRule": rendered}

    def delete_pull_request_approval_rule(
        self, ctx: RequestContext, params: shapes.DeletePullRequestApprovalRuleInput
    ) -> shapes.DeletePullRequestApprovalRuleOutput:
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            rule = rules.delete_rule(session, ctx, pull_request, params["approvalRuleName"])
            if rule is None:
                return {"approvalRuleId": ""}
            _publish_rule(session, ctx, pull_request, rule, "pullRequestApprovalRuleDeleted")
            return {"approvalRuleId": rule.id}

    # -- approval states and overrides ----------------------------------------------------------
    def get_pull_request_approval_states(
        self, ctx: RequestContext, params: shapes.GetPullRequestApprovalStatesInput
    ) -> shapes.GetPullRequestApprovalStatesOutput:
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            revision = lookups.find_revision(
                session, pull_request, params["revisionId"], current=False
            )
            approvers = rules.approvers_of(session, pull_request, revision.revision_id)
        return {"approvals": [{"userArn": arn, "approvalState": "APPROVE"} for arn in approvers]}

    def update_pull_request_approval_state(
        self, ctx: RequestContext, params: shapes.UpdatePullRequestApprovalStateInput
    ) -> None:
        state = params["approvalState"]
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            if rules.set_approval(session, ctx, pull_request, params["revisionId"], state):
                _publish(
                    session,
                    ctx,
                    pull_request,
                    "pullRequestApprovalStateChanged",
                    approvalStatus=state,
                )

    def evaluate_pull_request_approval_rules(
        self, ctx: RequestContext, params: shapes.EvaluatePullRequestApprovalRulesInput
    ) -> shapes.EvaluatePullRequestApprovalRulesOutput:
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            revision = lookups.find_revision(
                session, pull_request, params["revisionId"], current=True
            )
            evaluation = rules.evaluate(session, pull_request, revision)
        return {"evaluation": rules.render_evaluation(evaluation)}

    def override_pull_request_approval_rules(
        self, ctx: RequestContext, params: shapes.OverridePullRequestApprovalRulesInput
    ) -> None:
        status = params["overrideStatus"]
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            if rules.set_override(session, ctx, pull_request, params["revisionId"], status):
                _publish(
                    session,
                    ctx,
                    pull_request,
                    "pullRequestApprovalRuleOverridden",
                    overrideStatus=status,
                )

    def get_pull_request_override_state(
        self, ctx: RequestContext, params: shapes.GetPullRequestOverrideStateInput
    ) -> shapes.GetPullRequestOverrideStateOutput:
        with session_scope() as session:
            pull_request = lookups.get(session, ctx, params["pullRequestId"])
            revision = lookups.find_revision(
                session, pull_request, params["revisionId"], current=False
            )
        state: shapes.GetPullRequestOverrideStateOutput = {
            "overridden": revision.overridden_by is not None
        }
        if revision.overridden_by is not None:
            state["overrider"] = revision.overridden_by
        return state

    # -- merging pull requests ---------------------------------------------------------------------
    def merge_pull_request_by_fast_forward(
        self, ctx: RequestContext, params: shapes.MergePullRequestByFastForwardInput
    ) -> shapes.MergePullRequestByFastForwardOutput:
        return _merge(ctx, params, merging.FAST_FORWARD)

    def merge_pull_request_by_squash(
        self, ctx: RequestContext, params: shapes.MergePullRequestBySquashInput
    ) -> shapes.MergePullRequestBySquashOutput:
        return _merge(ctx, params, merging.SQUASH, commit=params)

    def merge_pull_request_by_three_way(
        self, ctx: RequestContext, params: shapes.MergePullRequestByThreeWayInput
    ) -> shapes.MergePullRequestByThreeWayOutput:
        return _merge(ctx, params, merging.THREE_WAY, commit=params)


# -- helpers -----------------------------------------------------------------------------------
def _merge(
    ctx: RequestContext,
    params: shapes.MergePullRequestByFastForwardInput | prs.CommitMergeInput,
    merge_option: str,
    commit: prs.CommitMergeInput | None = None,
) -> shapes.MergePullRequestByFastForwardOutput:
    """The three merge operations answer alike; squash and three-way pass their `commit`
    members (how to settle conflicts, what the commit says)."""
    with session_scope() as session:
        pull_request = prs.merge(session, ctx, params, merge_option, commit)
        return {"pullRequest": prs.render(session, pull_request)}


def _publish(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    event: str,
    **extra: Any,
) -> None:
    repository = lookups.repository_of(session, pull_request)
    pr_events.publish_change(
        session,
        repository,
        pr_events.change_detail(ctx.principal_arn, pull_request, repository, event, **extra),
    )


def _publish_rule(
    session: Session,
    ctx: RequestContext,
    pull_request: PullRequest,
    rule: PullRequestApprovalRule,
    event: str,
) -> None:
    _publish(
        session,
        ctx,
        pull_request,
        event,
        approvalRuleId=rule.id,
        approvalRuleName=rule.name,
        approvalRuleContentSha256=rule.content_sha256,
    )
