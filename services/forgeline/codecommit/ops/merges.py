"""CodeCommit operations: merge options, merge conflicts and merging branches.

The merge itself is computed by `forgeline.codecommit.merging`; these handlers resolve the
commit specifiers, page the answers, and move the target branch with `gitstore.move_ref`
(compare-and-swap). The repository row is read in a short transaction and git work
happens outside it; a branch moves and its change is recorded (events, triggers) in one
transaction, and the branch is put back if recording fails.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pygit2

from forgeline.codecommit import gitstore, merging
from forgeline.codecommit.content import commits as content_commits
from forgeline.codecommit.content import refs as content_refs
from forgeline.codecommit.generated import errors, shapes
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import request_page_tokens
from forgeline.core.protocol.errors import AwsError

DEFAULT_CONFLICT_FILES = 100
MAX_CONFLICT_FILES = 1000
DEFAULT_MERGE_HUNKS = 1000
MAX_MERGE_HUNKS = 10_000

# Every merge operation names a repository and two commits the same way.
_TwoCommitsInput = (
    shapes.GetMergeOptionsInput
    | shapes.GetMergeCommitInput
    | shapes.GetMergeConflictsInput
    | shapes.DescribeMergeConflictsInput
    | shapes.BatchDescribeMergeConflictsInput
    | shapes.MergeBranchesByFastForwardInput
    | shapes.MergeBranchesBySquashInput
    | shapes.MergeBranchesByThreeWayInput
    | shapes.CreateUnreferencedMergeCommitInput
)
_BranchMergeInput = (
    shapes.MergeBranchesByFastForwardInput
    | shapes.MergeBranchesBySquashInput
    | shapes.MergeBranchesByThreeWayInput
)


class MergeOperations:
    # -- evaluating merges -----------------------------------------------------------------
    def get_merge_options(
        self, ctx: RequestContext, params: shapes.GetMergeOptionsInput
    ) -> shapes.GetMergeOptionsOutput:
        repository, git, source, destination = _open(ctx, params)
        options = merging.merge_options(
            git,
            source,
            destination,
            conflict_detail_level=params.get("conflictDetailLevel", merging.FILE_LEVEL),
            conflict_resolution_strategy=params.get("conflictResolutionStrategy", merging.NONE),
        )
        return {
            "mergeOptions": options,
            "sourceCommitId": str(source.id),
            "destinationCommitId": str(destination.id),
            "baseCommitId": merging.merge_base(git, source, destination),
        }

    def get_merge_commit(
        self, ctx: RequestContext, params: shapes.GetMergeCommitInput
    ) -> shapes.GetMergeCommitOutput:
        repository, git, source, destination = _open(ctx, params)
        answer: shapes.GetMergeCommitOutput = {
            "sourceCommitId": str(source.id),
            "destinationCommitId": str(destination.id),
        }
        base = git.merge_base(source.id, destination.id)
        if base is not None:
            answer["baseCommitId"] = str(base)
        if base == source.id:  # the destination already contains the source
            merged = merging.find_merge_commit(git, source, destination)
            if merged is not None:
                answer["mergedCommitId"] = merged
        return answer

    def get_merge_conflicts(
        self, ctx: RequestContext, params: shapes.GetMergeConflictsInput
    ) -> shapes.GetMergeConflictsOutput:
        repository, git, source, destination = _open(ctx, params)
        option = params["mergeOption"]
        level = params.get("conflictDetailLevel", merging.FILE_LEVEL)
        strategy = params.get("conflictResolutionStrategy", merging.NONE)
        limit = _limit(
            params.get("maxConflictFiles"),
            DEFAULT_CONFLICT_FILES,
            MAX_CONFLICT_FILES,
            errors.InvalidMaxConflictFilesException,
        )
        base_id = merging.merge_base(git, source, destination)
        if option == merging.FAST_FORWARD:
            # Fast-forward either applies or not; it never has file conflicts.
            mergeable = merging.can_fast_forward(git, source, destination)
            found: list[merging.ConflictInfo] = []
        else:
            found = merging.conflicts(
                git,
                source,
                destination,
                conflict_detail_level=level,
                conflict_resolution_strategy=strategy,
            )
            mergeable = not found
        scope = _scope(repository, source, destination, option, level, strategy)
        page, token = request_page_tokens(ctx).page(
            found, _by_path, scope, params.get("nextToken"), limit
        )
        output: shapes.GetMergeConflictsOutput = {
            "mergeable": mergeable,
            "destinationCommitId": str(destination.id),
            "sourceCommitId": str(source.id),
            "baseCommitId": base_id,
            "conflictMetadataList": [conflict.metadata() for conflict in page],
        }
        if token:
            output["nextToken"] = token
        return output

    def describe_merge_conflicts(
        self, ctx: RequestContext, params: shapes.DescribeMergeConflictsInput
    ) -> shapes.DescribeMergeConflictsOutput:
        repository, git, source, destination = _open(ctx, params)
        option = _not_fast_forward(params["mergeOption"], "DescribeMergeConflicts")
        level = params.get("conflictDetailLevel", merging.FILE_LEVEL)
        strategy = params.get("conflictResolutionStrategy", merging.NONE)
        limit = _limit(
            params.get("maxMergeHunks"),
            DEFAULT_MERGE_HUNKS,
            MAX_MERGE_HUNKS,
            errors.InvalidMaxMergeHunksException,
        )
        info = merging.describe_file(
            git,
            source,
            destination,
            params.get("filePath") or "",
            conflict_detail_level=level,
            conflict_resolution_strategy=strategy,
        )
        scope = _scope(repository, source, destination, option, level, strategy)
        scope["path"] = info.path
        numbered = list(enumerate(info.hunks))
        page, token = request_page_tokens(ctx).page(
            numbered, _by_index, scope, params.get("nextToken"), limit
        )
        output: shapes.DescribeMergeConflictsOutput = {
            "conflictMetadata": info.metadata(),
            "mergeHunks": [hunk.to_wire() for _, hunk in page],
            "destinationCommitId": str(destination.id),
            "sourceCommitId": str(source.id),
            "baseCommitId": merging.merge_base(git, source, destination),
        }
        if token:
            output["nextToken"] = token
        return output

    def batch_describe_merge_conflicts(
        self, ctx: RequestContext, params: shapes.BatchDescribeMergeConflictsInput
    ) -> shapes.BatchDescribeMergeConflictsOutput:
        repository, git, source, destination = _open(ctx, params)
        option = _not_fast_forward(params["mergeOption"], "BatchDescribeMergeConflicts")
        level = params.get("conflictDetailLevel", merging.FILE_LEVEL)
        strategy = params.get("conflictResolutionStrategy", merging.NONE)
        max_files = _limit(
            params.get("maxConflictFiles"),
            DEFAULT_CONFLICT_FILES,
            MAX_CONFLICT_FILES,
            errors.InvalidMaxConflictFilesException,
        )
        max_hunks = _limit(
            params.get("maxMergeHunks"),
            DEFAULT_MERGE_HUNKS,
            MAX_MERGE_HUNKS,
            errors.InvalidMaxMergeHunksException,
        )
        requested = list(dict.fromkeys(params.get("filePaths") or []))
        problems: list[shapes.BatchDescribeMergeConflictsError] = []
        infos: list[merging.ConflictInfo] = []
        if requested:
            described = merging.describe_files(
                git,
                source,
                destination,
                requested,
                conflict_detail_level=level,
                conflict_resolution_strategy=strategy,
            )
            for path, item in zip(requested, described, strict=True):
                if isinstance(item, AwsError):
                    problems.append(
                        {"filePath": path, "exceptionName": item.code, "message": item.message}
                    )
                else:
                    infos.append(item)
            infos.sort(key=_by_path)
        else:
            infos = merging.conflicts(
                git,
                source,
                destination,
                conflict_detail_level=level,
                conflict_resolution_strategy=strategy,
            )
        scope = _scope(repository, source, destination, option, level, strategy)
        scope["paths"] = requested
        token = params.get("nextToken")
        page, next_token = request_page_tokens(ctx).page(infos, _by_path, scope, token, max_files)
        output: shapes.BatchDescribeMergeConflictsOutput = {
            "conflicts": [
                {
                    "conflictMetadata": info.metadata(),
                    "mergeHunks": [hunk.to_wire() for hunk in info.hunks[:max_hunks]],
                }
                for info in page
            ],
            # Errors belong to the request, not to a page: report them once.
            "errors": problems if not token else [],
            "destinationCommitId": str(destination.id),
            "sourceCommitId": str(source.id),
            "baseCommitId": merging.merge_base(git, source, destination),
        }
        if next_token:
            output["nextToken"] = next_token
        return output

    # -- merging -----------------------------------------------------------------------------
    def merge_branches_by_fast_forward(
        self, ctx: RequestContext, params: shapes.MergeBranchesByFastForwardInput
    ) -> shapes.MergeBranchesByFastForwardOutput:
        result = _merge_into_branch(ctx, params, merging.FAST_FORWARD, merging.CommitChoices())
        return {"commitId": result.commit_id, "treeId": result.tree_id}

    def merge_branches_by_squash(
        self, ctx: RequestContext, params: shapes.MergeBranchesBySquashInput
    ) -> shapes.MergeBranchesBySquashOutput:
        result = _merge_into_branch(
            ctx, params, merging.SQUASH, merging.CommitChoices.from_request(params)
        )
        return {"commitId": result.commit_id, "treeId": result.tree_id}

    def merge_branches_by_three_way(
        self, ctx: RequestContext, params: shapes.MergeBranchesByThreeWayInput
    ) -> shapes.MergeBranchesByThreeWayOutput:
        result = _merge_into_branch(
            ctx, params, merging.THREE_WAY, merging.CommitChoices.from_request(params)
        )
        return {"commitId": result.commit_id, "treeId": result.tree_id}

    def create_unreferenced_merge_commit(
        self, ctx: RequestContext, params: shapes.CreateUnreferencedMergeCommitInput
    ) -> shapes.CreateUnreferencedMergeCommitOutput:
        option = _not_fast_forward(params["mergeOption"], "CreateUnreferencedMergeCommit")
        repository, git, source, destination = _open(ctx, params)
        choices = merging.CommitChoices.from_request(params)
        result = _plan(ctx, git, source, destination, option, choices)
        if result.created:
            detail = {
                "event": "unreferencedMergeCommitCreated",
                "repositoryName": repository.name,
                "repositoryId": repository.id,
                "callerUserArn": ctx.principal_arn,
                "commitId": result.commit_id,
                **_merge_detail(result, option, choices),
            }
            with session_scope() as session:
                gitstore.publish_event(session, repository, gitstore.STATE_CHANGE, detail)
        return {"commitId": result.commit_id, "treeId": result.tree_id}


# -- helpers ---------------------------------------------------------------------------------
def _open(
    ctx: RequestContext, params: _TwoCommitsInput
) -> tuple[Repository, pygit2.Repository, pygit2.Commit, pygit2.Commit]:
    repository = content_refs.load(ctx, params.get("repositoryName"))
    git = gitstore.open_git(repository)
    source = _resolve(git, repository, params.get("sourceCommitSpecifier"))
    destination = _resolve(git, repository, params.get("destinationCommitSpecifier"))
    return repository, git, source, destination


def _resolve(
    git: pygit2.Repository, repository: Repository, specifier: str | None
) -> pygit2.Commit:
    if not specifier:
        raise errors.CommitRequiredException("A commit specifier is required.")
    return content_refs.resolve(git, repository, specifier)


def _limit(value: int | None, default: int, cap: int, error: type[AwsError]) -> int:
    if value is None:
        return default
    if value < 1:
        raise error(f"{value} is not a valid maximum: use a positive number.")
    return min(value, cap)


def _not_fast_forward(option: str, operation: str) -> str:
    if option == merging.FAST_FORWARD:
        raise errors.InvalidMergeOptionException(
            f"{operation} does not support {option}: a fast-forward creates no merge commit "
            "and has no conflicts. Use SQUASH_MERGE or THREE_WAY_MERGE."
        )
    return option


def _scope(
    repository: Repository,
    source: pygit2.Commit,
    destination: pygit2.Commit,
    option: str,
    level: str,
    strategy: str,
) -> dict[str, Any]:
    # A token only continues the same question about the same commits.
    return {
        "repository": repository.id,
        "source": str(source.id),
        "destination": str(destination.id),
        "option": option,
        "level": level,
        "strategy": strategy,
    }


def _by_path(info: merging.ConflictInfo) -> str:
    return info.path


def _by_index(item: tuple[int, merging.MergeHunk]) -> int:
    return item[0]


def _plan(
    ctx: RequestContext,
    git: pygit2.Repository,
    source: pygit2.Commit,
    destination: pygit2.Commit,
    option: str,
    choices: merging.CommitChoices,
) -> merging.MergeResult:
    author_name = choices.author_name or content_commits.caller_name(ctx)
    return merging.plan_chosen_merge(
        git, source, destination, option, dataclasses.replace(choices, author_name=author_name)
    )


def _merge_detail(
    result: merging.MergeResult, option: str, choices: merging.CommitChoices
) -> dict[str, Any]:
    """What CodeCommit's merge events add to a reference event."""
    detail: dict[str, Any] = {
        "mergeOption": option,
        "sourceCommitId": result.source_commit_id,
        "destinationCommitId": result.destination_commit_id,
        "baseCommitId": result.base_commit_id,
    }
    if option != merging.FAST_FORWARD:
        detail["conflictDetailLevel"] = choices.conflict_detail_level
        detail["conflictResolutionStrategy"] = choices.conflict_resolution_strategy
    return detail


def _target_branch(
    git: pygit2.Repository, repository: Repository, params: _BranchMergeInput
) -> str:
    """The branch the merge moves: targetBranch, else the destination when it is a branch."""
    target = params.get("targetBranch")
    if target is None:
        name = _branch_named(repository, params.get("destinationCommitSpecifier") or "")
        if gitstore.branch_head(git, name) is not None:
            return name
        tag = name.removeprefix(gitstore.TAG_PREFIX)
        if git.references.get(gitstore.TAG_PREFIX + tag) is not None:
            raise errors.BranchNameIsTagNameException(
                f"{name} is a tag, not a branch: name the branch to merge into in targetBranch."
            )
        raise errors.BranchNameRequiredException(
            "The destination is not a branch: name the branch to merge into in targetBranch."
        )
    content_refs.check_branch_name(target)
    if gitstore.branch_head(git, target) is None:
        if git.references.get(gitstore.TAG_PREFIX + target) is not None:
            raise errors.BranchNameIsTagNameException(f"{target} is a tag, not a branch.")
        raise errors.BranchDoesNotExistException(f"Branch {target} does not exist.")
    return target


def _branch_named(repository: Repository, specifier: str) -> str:
    """The branch a commit specifier names, if it names one."""
    if specifier == "HEAD" and repository.default_branch:
        return repository.default_branch
    return specifier.removeprefix(gitstore.BRANCH_PREFIX)


def _merge_into_branch(
    ctx: RequestContext, params: _BranchMergeInput, option: str, choices: merging.CommitChoices
) -> merging.MergeResult:
    repository, git, source, destination = _open(ctx, params)
    target = _target_branch(git, repository, params)
    head = gitstore.branch_head(git, target)
    if head is None:  # deleted since it was checked
        raise errors.BranchDoesNotExistException(f"Branch {target} does not exist.")
    result = _plan(ctx, git, source, destination, option, choices)
    if result.commit_id != head:
        if not _contains(git, result.commit_id, head):
            if target == _branch_named(repository, params["destinationCommitSpecifier"]):
                raise errors.ConcurrentReferenceUpdateException(
                    f"Branch {target} moved while the merge was computed; try again."
                )
            raise errors.ManualMergeRequiredException(
                f"Branch {target} has commits that the merge result does not contain; "
                "merge it into the destination first."
            )
        apply_to_branch(
            ctx, repository, target, head, result, _merge_detail(result, option, choices)
        )
    return result


def _contains(git: pygit2.Repository, commit_id: str, ancestor_id: str) -> bool:
    return commit_id == ancestor_id or git.descendant_of(
        pygit2.Oid(hex=commit_id), pygit2.Oid(hex=ancestor_id)
    )


def apply_to_branch(
    ctx: RequestContext,
    repository: Repository,
    branch: str,
    expected_head: str,
    result: merging.MergeResult,
    detail: dict[str, Any],
) -> None:
    """Move `branch` from `expected_head` to the merge result and record the change, with
    `detail` added to its event (the shared `gitstore.move_ref`).

    ConcurrentReferenceUpdateException if the branch moved since it was read. If
    recording fails, the branch is put back (unless it moved again meanwhile).
    """

    def moved() -> AwsError:
        return errors.ConcurrentReferenceUpdateException(
            f"Branch {branch} moved while the merge was in progress; try again."
        )

    gitstore.move_ref(
        ctx,
        repository,
        gitstore.BRANCH_PREFIX + branch,
        result.commit_id,
        expected_head,
        moved,
        extra_detail=detail,
    )
