"""CodeCommit operations: comments and reactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from forgeline.codecommit import comments, gitstore, pull_requests, repositories
from forgeline.codecommit.generated import errors
from forgeline.codecommit.paging import max_results
from forgeline.codecommit.tables.comments import Comment
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.idempotency import idempotent

MISMATCH = "IdempotencyParameterMismatchException"


def _pull_request_repository(
    session: Session, ctx: RequestContext, pull_request_id: str, repository_name: str
) -> tuple[str, Repository]:
    """The pull request's normalized id and its repository, which must be the one named."""
    pull_request = pull_requests.get(session, ctx, pull_request_id)
    repository = repositories.get(session, ctx, repository_name)
    if pull_request.repository_id != repository.id:
        raise errors.RepositoryNotAssociatedWithPullRequestException(
            f"Pull request {pull_request_id} is not in repository {repository_name}."
        )
    return pull_request.pull_request_id, repository


def _post_once(
    session: Session,
    ctx: RequestContext,
    params: dict[str, Any],
    post: Callable[[], Comment],
) -> tuple[Comment, bool]:
    """Run `post` at most once per clientRequestToken; returns (comment, newly created)."""
    token = comments.check_token(params.get("clientRequestToken"))
    made: list[Comment] = []

    def compute() -> dict[str, Any]:
        made.append(post())
        return {"commentId": made[0].id}

    result = idempotent(session, ctx, token, params, compute, mismatch_error=MISMATCH)
    if made and made[0].id == result["commentId"]:
        return made[0], True
    return comments.get(session, ctx, result["commentId"]), False


class CommentOperations:
    def post_comment_for_compared_commit(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])

            def post() -> Comment:
                anchor = comments.resolve_anchor(
                    repository,
                    params.get("beforeCommitId"),
                    params.get("afterCommitId"),
                    params.get("location"),
                )
                return comments.create(
                    session,
                    ctx,
                    repository,
                    anchor,
                    params.get("content"),
                    params.get("clientRequestToken"),
                )

            comment, created = _post_once(session, ctx, params, post)
            answer = {
                "repositoryName": repository.name,
                **comments.anchor_fields(comments.anchor_of(comment)),
                "comment": comments.render(session, comment, ctx.principal_arn),
            }
            if created:
                comments.publish_comment_event(session, ctx, comment, created=True)
            return answer

    def post_comment_for_pull_request(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            pull_request_id, repository = _pull_request_repository(
                session, ctx, params["pullRequestId"], params["repositoryName"]
            )

            def post() -> Comment:
                anchor = comments.resolve_anchor(
                    repository,
                    comments.check_commit_id(params.get("beforeCommitId")),
                    params.get("afterCommitId"),
                    params.get("location"),
                )
                return comments.create(
                    session,
                    ctx,
                    repository,
                    anchor,
                    params.get("content"),
                    params.get("clientRequestToken"),
                    pull_request_id=pull_request_id,
                )

            comment, created = _post_once(session, ctx, params, post)
            answer = {
                "repositoryName": repository.name,
                "pullRequestId": pull_request_id,
                **comments.anchor_fields(comments.anchor_of(comment)),
                "comment": comments.render(session, comment, ctx.principal_arn),
            }
            if created:
                comments.publish_comment_event(session, ctx, comment, created=True)
            return answer

    def post_comment_reply(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            parent = comments.get(session, ctx, params["inReplyTo"])
            comment, created = _post_once(
                session,
                ctx,
                params,
                lambda: comments.reply(
                    session, ctx, parent, params.get("content"), params.get("clientRequestToken")
                ),
            )
            answer = {"comment": comments.render(session, comment, ctx.principal_arn)}
            if created:
                comments.publish_comment_event(session, ctx, comment, created=True)
            return answer

    def get_comment(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            comment = comments.get(session, ctx, params["commentId"])
            return {"comment": comments.render(session, comment, ctx.principal_arn)}

    def update_comment(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            comment = comments.get(session, ctx, params["commentId"])
            comments.update(ctx, comment, params.get("content"))
            session.flush()
            answer = {"comment": comments.render(session, comment, ctx.principal_arn)}
            comments.publish_comment_event(session, ctx, comment, created=False)
            return answer

    def delete_comment_content(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            comment = comments.get(session, ctx, params["commentId"])
            comments.delete_content(comment)
            session.flush()
            answer = {"comment": comments.render(session, comment, ctx.principal_arn)}
            comments.publish_comment_event(session, ctx, comment, created=False)
            return answer

    def get_comments_for_compared_commit(self, ctx: RequestContext, params: Any) -> Any:
        limit = max_results(
            params.get("maxResults"),
            default=comments.COMMENTS_PAGE_DEFAULT,
            maximum=comments.COMMENTS_PAGE_MAX,
        )
        after = comments.check_commit_id(params.get("afterCommitId"))
        before = params.get("beforeCommitId")
        if before is not None:
            comments.check_commit_id(before)
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            git = gitstore.open_git(repository)
            for commit_id in (before, after):
                if commit_id is not None:
                    comments.require_commit(git, commit_id)
            found = comments.on_compared_commit(session, repository, before, after)
            scope = {
                "op": "GetCommentsForComparedCommit",
                "repository": repository.id,
                "before": before,
                "after": after,
            }
            groups, token = comments.page_of_comments(
                session,
                ctx,
                found,
                scope,
                params.get("nextToken"),
                limit,
                {"repositoryName": repository.name},
            )
        return {"commentsForComparedCommitData": groups, "nextToken": token}

    def get_comments_for_pull_request(self, ctx: RequestContext, params: Any) -> Any:
        limit = max_results(
            params.get("maxResults"),
            default=comments.COMMENTS_PAGE_DEFAULT,
            maximum=comments.COMMENTS_PAGE_MAX,
        )
        name = params.get("repositoryName")
        before, after = params.get("beforeCommitId"), params.get("afterCommitId")
        # The repository and both commits narrow the list together, or not at all.
        if name is not None or before is not None or after is not None:
            if name is None:
                raise errors.RepositoryNameRequiredException(
                    "repositoryName is required with beforeCommitId and afterCommitId."
                )
            comments.check_commit_id(before)
            comments.check_commit_id(after)
        with session_scope() as session:
            if name is None:
                pull_request = pull_requests.get(session, ctx, params["pullRequestId"])
                pull_request_id = pull_request.pull_request_id
                repository = pull_requests.repository_of(session, pull_request)
            else:
                pull_request_id, repository = _pull_request_repository(
                    session, ctx, params["pullRequestId"], name
                )
                git = gitstore.open_git(repository)
                comments.require_commit(git, before)
                comments.require_commit(git, after)
            found = comments.on_pull_request(
                session, ctx, pull_request_id, repository, before, after
            )
            scope = {
                "op": "GetCommentsForPullRequest",
                "pullRequest": pull_request_id,
                "repository": repository.id,
                "before": before,
                "after": after,
            }
            groups, token = comments.page_of_comments(
                session,
                ctx,
                found,
                scope,
                params.get("nextToken"),
                limit,
                {"repositoryName": repository.name},
            )
        return {"commentsForPullRequestData": groups, "nextToken": token}

    def put_comment_reaction(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            comment = comments.get(session, ctx, params["commentId"])
            change = comments.put_reaction(session, ctx, comment, params["reactionValue"])
            if change is not None:
                event_name, reaction = change
                comments.publish_reaction_event(session, ctx, comment, event_name, reaction)
        return {}

    def get_comment_reactions(self, ctx: RequestContext, params: Any) -> Any:
        limit = max_results(
            params.get("maxResults"),
            default=comments.REACTIONS_PAGE_MAX,
            maximum=comments.REACTIONS_PAGE_MAX,
        )
        user = params.get("reactionUserArn")
        if user is not None:
            comments.check_user_arn(user)
        with session_scope() as session:
            comment = comments.get(session, ctx, params["commentId"])
            found, token = comments.reactions_for_comment(
                session, ctx, comment, user, params.get("nextToken"), limit
            )
        return {"reactionsForComment": found, "nextToken": token}
