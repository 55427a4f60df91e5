"""CodeCommit operations: comments and reactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from forgeline.codecommit import comments, gitstore, pull_request_lookups, repositories
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.paging import max_results
from forgeline.codecommit.tables.comments import Comment
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.idempotency import idempotent

MISMATCH = "IdempotencyParameterMismatchException"

PostInput = (
    shapes.PostCommentForComparedCommitInput
    | shapes.PostCommentForPullRequestInput
    | shapes.PostCommentReplyInput
)


def _pull_request_repository(
    session: Session, ctx: RequestContext, pull_request_id: str, repository_name: str
) -> tuple[str, Repository]:
    """The pull request's normalized id and its repository, which must be the one named."""
    pull_request = pull_request_lookups.get(session, ctx, pull_request_id)
    repository = repositories.get(session, ctx, repository_name)
    if pull_request.repository_id != repository.id:
        raise errors.RepositoryNotAssociatedWithPullRequestException(
            f"Pull request {pull_request_id} is not in repository {repository_name}."
        )
    return pull_request.pull_request_id, repository


def _post_once(
    session: Session,
    ctx: RequestContext,
    params: PostInput,
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


def _comment_answer(session: Session, ctx: RequestContext, comment: Comment) -> shapes.Comment:
    return comments.render(session, comment, ctx.principal_arn)


class CommentOperations:
    def post_comment_for_compared_commit(
        self, ctx: RequestContext, params: shapes.PostCommentForComparedCommitInput
    ) -> shapes.PostCommentForComparedCommitOutput:
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])

            def post() -> Comment:
                anchor = comments.resolve_anchor(
                    repository,
                    params.get("beforeCommitId"),
                    params["afterCommitId"],
                    params.get("location"),
                )
                return comments.create(
                    session,
                    ctx,
                    repository,
                    anchor,
                    params["content"],
                    params.get("clientRequestToken"),
                )

            comment, created = _post_once(session, ctx, params, post)
            answer: shapes.PostCommentForComparedCommitOutput = {
                "repositoryName": repository.name,
                **comments.anchor_fields(comments.anchor_of(comment)),
                "comment": _comment_answer(session, ctx, comment),
            }
            if created:
                comments.publish_comment_event(session, ctx, comment, created=True)
            return answer

    def post_comment_for_pull_request(
        self, ctx: RequestContext, params: shapes.PostCommentForPullRequestInput
    ) -> shapes.PostCommentForPullRequestOutput:
        with session_scope() as session:
            pull_request_id, repository = _pull_request_repository(
                session, ctx, params["pullRequestId"], params["repositoryName"]
            )

            def post() -> Comment:
                anchor = comments.resolve_anchor(
                    repository,
                    comments.check_commit_id(params["beforeCommitId"]),
                    params["afterCommitId"],
                    params.get("location"),
                )
                return comments.create(
                    session,
                    ctx,
                    repository,
                    anchor,
                    params["content"],
                    params.get("clientRequestToken"),
                    pull_request_id=pull_request_id,
                )

            comment, created = _post_once(session, ctx, params, post)
            answer: shapes.PostCommentForPullRequestOutput = {
                "repositoryName": repository.name,
                "pullRequestId": pull_request_id,
                **comments.anchor_fields(comments.anchor_of(comment)),
                "comment": _comment_answer(session, ctx, comment),
            }
            if created:
                comments.publish_comment_event(session, ctx, comment, created=True)
            return answer

    def post_comment_reply(
        self, ctx: RequestContext, params: shapes.PostCommentReplyInput
    ) -> shapes.PostCommentReplyOutput:
        with session_scope() as session:
            parent = comments.get(session, ctx, params["inReplyTo"])
            comment, created = _post_once(
                session,
                ctx,
                params,
                lambda: comments.reply(
                    session, ctx, parent, params["content"], params.get("clientRequestToken")
                ),
            )
            answer: shapes.PostCommentReplyOutput = {
                "comment": _comment_answer(session, ctx, comment)
            }
            if created:
                comments.publish_comment_event(session, ctx, comment, created=True)
            return answer

    def get_comment(
        self, ctx: RequestContext, params: shapes.GetCommentInput
    ) -> shapes.GetCommentOutput:
        with session_scope() as session:
            comment = comments.get(session, ctx, params["commentId"])
            return {"comment": _comment_answer(session, ctx, comment)}

    def update_comment(
        self, ctx: RequestContext, params: shapes.UpdateCommentInput
    ) -> shapes.UpdateCommentOutput:
        with session_scope() as session:
            comment = comments.get(session, ctx, params["commentId"])
            comments.update(ctx, comment, params["content"])
            session.flush()
            answer: shapes.UpdateCommentOutput = {"comment": _comment_answer(session, ctx, comment)}
            comments.publish_comment_event(session, ctx, comment, created=False)
            return answer

    def delete_comment_content(
        self, ctx: RequestContext, params: shapes.DeleteCommentContentInput
    ) -> shapes.DeleteCommentContentOutput:
        with session_scope() as session:
            comment = comments.get(session, ctx, params["commentId"])
            comments.delete_content(comment)
            session.flush()
            answer: shapes.DeleteCommentContentOutput = {
                "comment": _comment_answer(session, ctx, comment)
            }
            comments.publish_comment_event(session, ctx, comment, created=False)
            return answer

    def get_comments_for_compared_commit(
        self, ctx: RequestContext, params: shapes.GetCommentsForComparedCommitInput
    ) -> shapes.GetCommentsForComparedCommitOutput:
        limit = max_results(
            params.get("maxResults"),
            default=comments.COMMENTS_PAGE_DEFAULT,
            maximum=comments.COMMENTS_PAGE_MAX,
        )
        after = comments.check_commit_id(params["afterCommitId"])
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
                session, ctx, found, scope, params.get("nextToken"), limit
            )
        listed: shapes.GetCommentsForComparedCommitOutput = {
            "commentsForComparedCommitData": [
                {
                    "repositoryName": repository.name,
                    **comments.anchor_fields(group.anchor),
                    "comments": group.comments,
                }
                for group in groups
            ]
        }
        if token is not None:
            listed["nextToken"] = token
        return listed

    def get_comments_for_pull_request(
        self, ctx: RequestContext, params: shapes.GetCommentsForPullRequestInput
    ) -> shapes.GetCommentsForPullRequestOutput:
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
            before = comments.check_commit_id(before)
            after = comments.check_commit_id(after)
        with session_scope() as session:
            if name is None:
                pull_request = pull_request_lookups.get(session, ctx, params["pullRequestId"])
                pull_request_id = pull_request.pull_request_id
                repository = pull_request_lookups.repository_of(session, pull_request)
            else:
                pull_request_id, repository = _pull_request_repository(
                    session, ctx, params["pullRequestId"], name
                )
                git = gitstore.open_git(repository)
                for commit_id in (before, after):
                    if commit_id is not None:
                        comments.require_commit(git, commit_id)
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
                session, ctx, found, scope, params.get("nextToken"), limit
            )
        listed: shapes.GetCommentsForPullRequestOutput = {
            "commentsForPullRequestData": [
                {
                    "pullRequestId": pull_request_id,
                    "repositoryName": repository.name,
                    **comments.anchor_fields(group.anchor),
                    "comments": group.comments,
                }
                for group in groups
            ]
        }
        if token is not None:
            listed["nextToken"] = token
        return listed

    def put_comment_reaction(
        self, ctx: RequestContext, params: shapes.PutCommentReactionInput
    ) -> None:
        with session_scope() as session:
            comment = comments.get(session, ctx, params["commentId"])
            change = comments.put_reaction(session, ctx, comment, params["reactionValue"])
            if change is not None:
                event_name, reaction = change
                comments.publish_reaction_event(session, ctx, comment, event_name, reaction)

    def get_comment_reactions(
        self, ctx: RequestContext, params: shapes.GetCommentReactionsInput
    ) -> shapes.GetCommentReactionsOutput:
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
        listed: shapes.GetCommentReactionsOutput = {"reactionsForComment": found}
        if token is not None:
            listed["nextToken"] = token
        return listed
