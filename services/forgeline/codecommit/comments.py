"""CodeCommit comments: on compared commits and pull requests, replies, edits, reactions.

A comment is anchored to a comparison (before commit, after commit) and optionally to a
file location, validated against the real git objects. Replies copy the anchor of the
comment they answer, so a thread always lists together. Content is deleted in place:
the comment stays, marked deleted, so its thread keeps its shape.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

import pygit2
from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codecommit import gitstore
from forgeline.codecommit.event_format import EVENT_SOURCE
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.tables.comments import Comment, CommentReaction
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core import events
from forgeline.core.auth.tables import AccessKey
from forgeline.core.context import RequestContext
from forgeline.core.db import utcnow
from forgeline.core.pagination import request_page_tokens

MAX_CONTENT_CHARS = 10_240  # AWS quota: comment length
MAX_TOKEN_CHARS = 256
MAX_PATH_CHARS = 4_096  # AWS quota: file paths
COMMENTS_PAGE_DEFAULT, COMMENTS_PAGE_MAX = 100, 500
REACTIONS_PAGE_MAX = 1_000

_COMMIT_ID = re.compile(r"[0-9a-f]{40}")
_COMMENT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_USER_ARN = re.compile(r"arn:aws[a-z-]*:(iam|sts)::\d{12}:\S{1,1900}")

COMMIT_EVENT = "CodeCommit Comment on Commit"
PULL_REQUEST_EVENT = "CodeCommit Comment on Pull Request"
REACTION_EVENT = "CodeCommit Comment Reaction Change"


# -- reactions ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Reaction:
    name: str  # short code without colons: "thumbsup"
    emoji: str
    codepoint: str  # "U+1F44D"

    @property
    def short_code(self) -> str:
        return f":{self.name}:"

    @property
    def count_key(self) -> str:
        # reactionCounts is keyed like the CodeCommit user guide's examples: THUMBSUP.
        return self.name.upper()

    def formats(self) -> shapes.ReactionValueFormats:
        return {"emoji": self.emoji, "shortCode": self.short_code, "unicode": self.codepoint}


# The reactions CodeCommit offers; any one may be given as emoji, short code or code point.
REACTIONS: tuple[Reaction, ...] = (
    Reaction("thumbsup", "\U0001f44d", "U+1F44D"),
    Reaction("thumbsdown", "\U0001f44e", "U+1F44E"),
    Reaction("smile", "\U0001f604", "U+1F604"),
    Reaction("laughing", "\U0001f606", "U+1F606"),
    Reaction("confused", "\U0001f615", "U+1F615"),
    Reaction("heart", "\u2764", "U+2764"),
    Reaction("hooray", "\U0001f389", "U+1F389"),
    Reaction("clap", "\U0001f44f", "U+1F44F"),
    Reaction("rocket", "\U0001f680", "U+1F680"),
    Reaction("eyes", "\U0001f440", "U+1F440"),
    Reaction("thinking", "\U0001f914", "U+1F914"),
)
_BY_NAME = {reaction.name: reaction for reaction in REACTIONS}
_ORDER = {reaction.name: index for index, reaction in enumerate(REACTIONS)}
_REMOVE_VALUES = {"", "none", ":none:"}
_VARIATION_SELECTOR = "\ufe0f"


def _reaction_lookup() -> dict[str, Reaction]:
    lookup: dict[str, Reaction] = {}
    for reaction in REACTIONS:
        for alias in (reaction.emoji, reaction.short_code, reaction.name, reaction.codepoint):
            lookup[alias.lower()] = reaction
    return lookup


_LOOKUP = _reaction_lookup()


def parse_reaction(value: str) -> Reaction | None:
    """The reaction a PutCommentReaction value names; None means "remove mine"."""
    text = value.strip().replace(_VARIATION_SELECTOR, "")
    if text.lower() in _REMOVE_VALUES:
        return None
    reaction = _LOOKUP.get(text.lower())
    if reaction is None:
        raise errors.InvalidReactionValueException(
            f"{value!r} is not a supported reaction. Use one of: "
            + ", ".join(r.short_code for r in REACTIONS)
            + " (or its emoji or Unicode code point), or none to remove a reaction."
        )
    return reaction


# -- input checks -------------------------------------------------------------------------
def check_content(content: str | None) -> str:
    if content is None or not content.strip():
        raise errors.CommentContentRequiredException("The comment content is empty.")
    if len(content) > MAX_CONTENT_CHARS:
        raise errors.CommentContentSizeLimitExceededException(
            f"Comments are limited to {MAX_CONTENT_CHARS:,} characters."
        )
    return content


def check_token(token: str | None) -> str | None:
    if token is not None and (not token or len(token) > MAX_TOKEN_CHARS):
        raise errors.InvalidClientRequestTokenException(
            f"A client request token must be 1 to {MAX_TOKEN_CHARS} characters."
        )
    return token


def check_commit_id(commit_id: str | None) -> str:
    if not commit_id:
        raise errors.CommitIdRequiredException("A commit ID is required.")
    if not _COMMIT_ID.fullmatch(commit_id):
        raise errors.InvalidCommitIdException(
            f"{commit_id!r} is not a full commit ID (40 lowercase hexadecimal characters)."
        )
    return commit_id


def check_comment_id(comment_id: str | None) -> str:
    if not comment_id:
        raise errors.CommentIdRequiredException("A comment ID is required.")
    if not _COMMENT_ID.fullmatch(comment_id):
        raise errors.InvalidCommentIdException(f"{comment_id!r} is not a valid comment ID.")
    return comment_id


def check_user_arn(arn: str) -> str:
    if not _USER_ARN.fullmatch(arn):
        raise errors.InvalidReactionUserArnException(f"{arn!r} is not a valid user ARN.")
    return arn


def normalize_path(path: str | None) -> str:
    if not path:
        raise errors.PathRequiredException("A file path is required for a comment location.")
    # A leading slash is tolerated, as CodeCommit's file APIs tolerate it.
    relative = path[1:] if path.startswith("/") else path
    parts = relative.split("/")
    if (
        len(path) > MAX_PATH_CHARS
        or not relative
        or "\0" in relative
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise errors.InvalidPathException(f"{path!r} is not a valid file path.")
    return relative


# -- the git anchor of a comment ----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Anchor:
    """Where a comment sits: a comparison and, optionally, a file location in it."""

    before_commit_id: str | None
    after_commit_id: str
    before_blob_id: str | None = None
    after_blob_id: str | None = None
    file_path: str | None = None
    file_position: int | None = None
    relative_file_version: str | None = None


def require_commit(git: pygit2.Repository, commit_id: str) -> pygit2.Commit:
    obj = git.get(commit_id)
    if not isinstance(obj, pygit2.Commit):
        raise errors.CommitDoesNotExistException(f"Could not find commit {commit_id}.")
    return obj


def _entry(commit: pygit2.Commit | None, path: str) -> pygit2.Object | None:
    if commit is None:
        return None
    try:
        return commit.tree[path]
    except (KeyError, ValueError, pygit2.GitError):
        return None


def _blob_id(commit: pygit2.Commit | None, path: str) -> str | None:
    entry = _entry(commit, path)
    return str(entry.id) if isinstance(entry, pygit2.Blob) else None


def _line_count(data: bytes) -> int:
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def resolve_anchor(
    repository: Repository,
    before_commit_id: str | None,
    after_commit_id: str | None,
    location: shapes.Location | None,
) -> Anchor:
    """Check the commits and the location against the repository's git objects."""
    after_id = check_commit_id(after_commit_id)
    before_id = check_commit_id(before_commit_id) if before_commit_id is not None else None
    if before_id == after_id:
        raise errors.BeforeCommitIdAndAfterCommitIdAreSameException(
            "The before and after commit IDs must be different."
        )
    git = gitstore.open_git(repository)
    after = require_commit(git, after_id)
    before = require_commit(git, before_id) if before_id else None
    if before is None and after.parents:
        raise errors.CommitIdRequiredException(
            "beforeCommitId is required unless the after commit is an initial commit."
        )
    if location is None:
        return Anchor(before_id, after_id)

    path = normalize_path(location.get("filePath"))
    version = location.get("relativeFileVersion")
    if version not in ("BEFORE", "AFTER") or (version == "BEFORE" and before is None):
        raise errors.InvalidRelativeFileVersionEnumException(
            "relativeFileVersion must be BEFORE or AFTER, and BEFORE needs a before commit."
        )
    target = before if version == "BEFORE" else after
    entry = _entry(target, path)
    if entry is None:
        raise errors.PathDoesNotExistException(
            f"{path} does not exist in the {version.lower()} commit."
        )
    if not isinstance(entry, pygit2.Blob):
        raise errors.InvalidFileLocationException(f"{path} is not a file.")
    position = location.get("filePosition")
    if position is not None and not 1 <= position <= _line_count(entry.data):
        raise errors.InvalidFilePositionException(
            f"Line {position} does not exist in the {version.lower()} version of {path}."
        )
    return Anchor(
        before_commit_id=before_id,
        after_commit_id=after_id,
        before_blob_id=_blob_id(before, path),
        after_blob_id=_blob_id(after, path),
        file_path=path,
        file_position=position,
        relative_file_version=version,
    )


# -- rows -----------------------------------------------------------------------------
def create(
    session: Session,
    ctx: RequestContext,
    repository: Repository,
    anchor: Anchor,
    content: str,
    token: str | None,
    *,
    pull_request_id: str | None = None,
    in_reply_to: str | None = None,
) -> Comment:
    now = utcnow()
    comment = Comment(
        id=str(uuid.uuid4()),
        repository_id=repository.id,
        account_id=repository.account_id,
        region=repository.region,
        pull_request_id=pull_request_id,
        before_commit_id=anchor.before_commit_id,
        after_commit_id=anchor.after_commit_id,
        before_blob_id=anchor.before_blob_id,
        after_blob_id=anchor.after_blob_id,
        file_path=anchor.file_path,
        file_position=anchor.file_position,
        relative_file_version=anchor.relative_file_version,
        in_reply_to=in_reply_to,
        content=check_content(content),
        deleted=False,
        author_arn=ctx.principal_arn,
        client_request_token=check_token(token),
        created_at=now,
        updated_at=now,
    )
    session.add(comment)
    session.flush()
    return comment


def anchor_of(comment: Comment) -> Anchor:
    return Anchor(
        before_commit_id=comment.before_commit_id,
        after_commit_id=comment.after_commit_id,
        before_blob_id=comment.before_blob_id,
        after_blob_id=comment.after_blob_id,
        file_path=comment.file_path,
        file_position=comment.file_position,
        relative_file_version=comment.relative_file_version,
    )


def get(session: Session, ctx: RequestContext, comment_id: str) -> Comment:
    check_comment_id(comment_id)
    comment = session.scalars(
        select(Comment).where(
            Comment.id == comment_id,
            Comment.account_id == ctx.account_id,
            Comment.region == ctx.region,
        )
    ).first()
    if comment is None:
        raise errors.CommentDoesNotExistException(f"No comment exists with the ID {comment_id}.")
    return comment


def reply(
    session: Session, ctx: RequestContext, parent: Comment, content: str, token: str | None
) -> Comment:
    repository = session.get(Repository, parent.repository_id)
    assert repository is not None  # the foreign key removes comments with their repository
    return create(
        session,
        ctx,
        repository,
        anchor_of(parent),
        content,
        token,
        pull_request_id=parent.pull_request_id,
        in_reply_to=parent.id,
    )


def _editable(comment: Comment) -> None:
    if comment.deleted:
        raise errors.CommentDeletedException(f"Comment {comment.id} has been deleted.")


def update(ctx: RequestContext, comment: Comment, content: str) -> None:
    _editable(comment)
    if comment.author_arn != ctx.principal_arn:
        raise errors.CommentNotCreatedByCallerException(
            "Only the author of a comment can change it."
        )
    comment.content = check_content(content)
    comment.updated_at = utcnow()


def delete_content(comment: Comment) -> None:
    _editable(comment)
    comment.content = None
    comment.deleted = True
    comment.updated_at = utcnow()


# -- reactions on rows ------------------------------------------------------------------
def put_reaction(
    session: Session, ctx: RequestContext, comment: Comment, value: str
) -> tuple[str, Reaction | None] | None:
    """Set or clear the caller's reaction; returns (event, reaction) or None if unchanged."""
    _editable(comment)
    reaction = parse_reaction(value)
    mine = session.get(CommentReaction, (comment.id, ctx.principal_arn))
    now = utcnow()
    if reaction is None:
        if mine is None:
            return None
        session.delete(mine)
        session.flush()
        return "commentReactionUpdated", None
    if mine is None:
        session.add(
            CommentReaction(
                comment_id=comment.id,
                user_arn=ctx.principal_arn,
                reaction=reaction.name,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        return "commentReactionCreated", reaction
    if mine.reaction == reaction.name:
        return None
    mine.reaction = reaction.name
    mine.updated_at = now
    return "commentReactionUpdated", reaction


def _reactions_of(session: Session, comment_ids: Sequence[str]) -> list[CommentReaction]:
    if not comment_ids:
        return []
    return list(
        session.scalars(
            select(CommentReaction).where(CommentReaction.comment_id.in_(comment_ids))
        ).all()
    )


def _existing_principals(session: Session, arns: Iterable[str]) -> set[str]:
    """Principals that still hold an access key; an account root always exists."""
    wanted = set(arns)
    if not wanted:
        return set()
    rows = session.scalars(
        select(AccessKey.principal_arn).where(AccessKey.principal_arn.in_(wanted))
    ).all()
    return set(rows) | {arn for arn in wanted if arn.endswith(":root")}


def reactions_for_comment(
    session: Session,
    ctx: RequestContext,
    comment: Comment,
    user_arn: str | None,
    token: str | None,
    limit: int,
) -> tuple[list[shapes.ReactionForComment], str | None]:
    """GetCommentReactions: one entry per reaction value, users who left it, newest last."""
    if comment.deleted:
        raise errors.CommentDeletedException(f"Comment {comment.id} has been deleted.")
    rows = sorted(_reactions_of(session, [comment.id]), key=lambda r: (r.created_at, r.user_arn))
    if user_arn is not None:
        rows = [row for row in rows if row.user_arn == user_arn]
    alive = _existing_principals(session, {row.user_arn for row in rows})
    grouped: dict[str, shapes.ReactionForComment] = {}
    for row in rows:
        entry = grouped.setdefault(
            row.reaction,
            {
                "reaction": _BY_NAME[row.reaction].formats(),
                "reactionUsers": [],
                "reactionsFromDeletedUsersCount": 0,
            },
        )
        if row.user_arn in alive:
            entry["reactionUsers"].append(row.user_arn)
        else:
            entry["reactionsFromDeletedUsersCount"] += 1
    items = sorted(grouped.items(), key=lambda item: _ORDER[item[0]])
    scope = {"comment": comment.id, "user": user_arn}
    page, next_token = request_page_tokens(ctx).page(
        items, lambda item: _ORDER[item[0]], scope, token, limit
    )
    return [entry for _, entry in page], next_token


# -- rendering --------------------------------------------------------------------------
class AnchorMembers(TypedDict, total=False):
    """The members the Post*Output and CommentsFor* shapes share: where the comments sit."""

    beforeCommitId: str
    afterCommitId: str
    beforeBlobId: str
    afterBlobId: str
    location: shapes.Location


def render_all(
    session: Session, comments: Sequence[Comment], caller_arn: str
) -> list[shapes.Comment]:
    """The model's Comment shape for each comment, with the caller's and everyone's reactions."""
    reactions = _reactions_of(session, [comment.id for comment in comments])
    counts: dict[str, dict[str, int]] = {}
    mine: dict[str, list[str]] = {}
    for row in reactions:
        reaction = _BY_NAME[row.reaction]
        per_comment = counts.setdefault(row.comment_id, {})
        per_comment[reaction.count_key] = per_comment.get(reaction.count_key, 0) + 1
        if row.user_arn == caller_arn:
            mine.setdefault(row.comment_id, []).append(reaction.short_code)
    return [
        _render_one(comment, mine.get(comment.id, []), counts.get(comment.id, {}))
        for comment in comments
    ]


def _render_one(
    comment: Comment, caller_reactions: list[str], reaction_counts: dict[str, int]
) -> shapes.Comment:
    rendered: shapes.Comment = {
        "commentId": comment.id,
        "creationDate": comment.created_at,
        "lastModifiedDate": comment.updated_at,
        "authorArn": comment.author_arn,
        "deleted": comment.deleted,
        "callerReactions": caller_reactions,
        "reactionCounts": reaction_counts,
    }
    if comment.content is not None and not comment.deleted:
        rendered["content"] = comment.content
    if comment.in_reply_to is not None:
        rendered["inReplyTo"] = comment.in_reply_to
    if comment.client_request_token is not None:
        rendered["clientRequestToken"] = comment.client_request_token
    return rendered


def render(session: Session, comment: Comment, caller_arn: str) -> shapes.Comment:
    return render_all(session, [comment], caller_arn)[0]


def location_of(anchor: Anchor) -> shapes.Location | None:
    if anchor.file_path is None:
        return None
    location: shapes.Location = {"filePath": anchor.file_path}
    if anchor.file_position is not None:
        location["filePosition"] = anchor.file_position
    if anchor.relative_file_version is not None:
        location["relativeFileVersion"] = anchor.relative_file_version
    return location


def anchor_fields(anchor: Anchor) -> AnchorMembers:
    members: AnchorMembers = {"afterCommitId": anchor.after_commit_id}
    if anchor.before_commit_id is not None:
        members["beforeCommitId"] = anchor.before_commit_id
    if anchor.before_blob_id is not None:
        members["beforeBlobId"] = anchor.before_blob_id
    if anchor.after_blob_id is not None:
        members["afterBlobId"] = anchor.after_blob_id
    location = location_of(anchor)
    if location is not None:
        members["location"] = location
    return members


# -- listing ------------------------------------------------------------------------------
def _sort_key(comment: Comment) -> tuple[float, str]:
    return (comment.created_at.timestamp(), comment.id)


@dataclasses.dataclass(frozen=True)
class CommentGroup:
    """Comments that share an anchor, oldest first, as the CommentsFor* shapes list them."""

    anchor: Anchor
    comments: list[shapes.Comment]


def page_of_comments(
    session: Session,
    ctx: RequestContext,
    comments: Sequence[Comment],
    scope: dict[str, Any],
    token: str | None,
    limit: int,
) -> tuple[list[CommentGroup], str | None]:
    """One page of comments (oldest first), grouped by anchor.

    The comments all belong to one pull request, or all to none, so the anchor is the key.
    """
    ordered = sorted(comments, key=_sort_key)
    page, next_token = request_page_tokens(ctx).page(ordered, _sort_key, scope, token, limit)
    rendered = render_all(session, page, ctx.principal_arn)
    groups: dict[Anchor, CommentGroup] = {}
    for comment, shape in zip(page, rendered, strict=True):
        anchor = anchor_of(comment)
        group = groups.get(anchor)
        if group is None:
            group = groups[anchor] = CommentGroup(anchor, [])
        group.comments.append(shape)
    return list(groups.values()), next_token


def on_compared_commit(
    session: Session, repository: Repository, before_commit_id: str | None, after_commit_id: str
) -> list[Comment]:
    query = select(Comment).where(
        Comment.repository_id == repository.id,
        Comment.pull_request_id.is_(None),
        Comment.after_commit_id == after_commit_id,
    )
    if before_commit_id is not None:
        query = query.where(Comment.before_commit_id == before_commit_id)
    return list(session.scalars(query).all())


def on_pull_request(
    session: Session,
    ctx: RequestContext,
    pull_request_id: str,
    repository: Repository | None = None,
    before_commit_id: str | None = None,
    after_commit_id: str | None = None,
) -> list[Comment]:
    query = select(Comment).where(
        Comment.account_id == ctx.account_id,
        Comment.region == ctx.region,
        Comment.pull_request_id == pull_request_id,
    )
    if repository is not None:
        query = query.where(Comment.repository_id == repository.id)
    if before_commit_id is not None:
        query = query.where(Comment.before_commit_id == before_commit_id)
    if after_commit_id is not None:
        query = query.where(Comment.after_commit_id == after_commit_id)
    return list(session.scalars(query).all())


# -- events -----------------------------------------------------------------------------
def publish_comment_event(
    session: Session, ctx: RequestContext, comment: Comment, *, created: bool
) -> None:
    """commentOn{Commit,PullRequest}{Created,Updated}, as CodeCommit sends to EventBridge."""
    repository = session.get(Repository, comment.repository_id)
    assert repository is not None
    on_pull_request = comment.pull_request_id is not None
    subject = "PullRequest" if on_pull_request else "Commit"
    verb = "Created" if created else "Updated"
    action = "made a comment" if created else "updated a comment"
    where = (
        f"the following Pull Request: {comment.pull_request_id}"
        if on_pull_request
        else f"the following comment ID: {comment.id}"
    )
    detail: dict[str, Any] = {
        "event": f"commentOn{subject}{verb}",
        "repositoryName": repository.name,
        "repositoryId": repository.id,
        "commentId": comment.id,
        "beforeCommitId": comment.before_commit_id,
        "afterCommitId": comment.after_commit_id,
        "inReplyTo": comment.in_reply_to,
        "callerUserArn": ctx.principal_arn,
        "notificationBody": (
            "A comment event occurred in the following AWS CodeCommit repository: "
            f"{repository.name}. The user {ctx.principal_arn} {action}. "
            f"The comment was made on {where}."
        ),
    }
    if on_pull_request:
        detail["pullRequestId"] = comment.pull_request_id
    events.publish(
        session,
        account_id=repository.account_id,
        region=repository.region,
        source=EVENT_SOURCE,
        detail_type=PULL_REQUEST_EVENT if on_pull_request else COMMIT_EVENT,
        detail={key: value for key, value in detail.items() if value is not None},
        resources=[repository.arn()],
    )


def publish_reaction_event(
    session: Session,
    ctx: RequestContext,
    comment: Comment,
    event_name: str,
    reaction: Reaction | None,
) -> None:
    repository = session.get(Repository, comment.repository_id)
    assert repository is not None
    shown = reaction.emoji if reaction else "none"
    verb = (
        "made a comment reaction"
        if event_name == "commentReactionCreated"
        else "updated a reaction"
    )
    events.publish(
        session,
        account_id=repository.account_id,
        region=repository.region,
        source=EVENT_SOURCE,
        detail_type=REACTION_EVENT,
        detail={
            "event": event_name,
            "repositoryName": repository.name,
            "repositoryId": repository.id,
            "commentId": comment.id,
            "callerUserArn": ctx.principal_arn,
            "reactionEmojis": [reaction.emoji] if reaction else [],
            "reactionShortcodes": [reaction.short_code] if reaction else [],
            "reactionUnicodes": [reaction.codepoint] if reaction else [],
            "notificationBody": (
                "A comment reaction event occurred in the following AWS CodeCommit "
                f"Repository: {repository.name}. The user: {ctx.principal_arn} {verb} "
                f"{shown} to the comment with comment ID: {comment.id}"
            ),
        },
        resources=[repository.arn()],
    )
