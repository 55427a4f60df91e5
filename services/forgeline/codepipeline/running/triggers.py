"""Source triggers: a push to a branch a pipeline's CodeCommit source watches starts an
execution, inside the transaction that records the push.

On AWS the console makes an EventBridge rule for this (or the pipeline polls when
PollForSourceChanges is true); here the repository's own ref changes stand for both, so a
push starts the pipeline at once either way. The trigger shows as CloudWatchEvent, as a
rule-started execution does on AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codecommit import interface as codecommit
from forgeline.codepipeline.running.starting import start_execution
from forgeline.codepipeline.tables.pipelines import Pipeline
from forgeline.core.context import RequestContext


def on_ref_changes(
    session: Session,
    ctx: RequestContext | None,
    repository: codecommit.Repository,
    changes: list[codecommit.RefChange],
) -> None:
    pushed = {
        change.ref[len(codecommit.BRANCH_PREFIX) :]
        for change in changes
        if change.ref.startswith(codecommit.BRANCH_PREFIX) and change.new != codecommit.ZERO_OID
    }
    if not pushed:
        return
    pipelines = session.scalars(
        select(Pipeline).where(
            Pipeline.account_id == repository.account_id, Pipeline.region == repository.region
        )
    ).all()
    for pipeline in pipelines:
        for branch in _watched_branches(pipeline.declaration, repository.name):
            if branch in pushed:
                rule = (
                    f"arn:aws:events:{pipeline.region}:{pipeline.account_id}:rule/"
                    f"codepipeline-{repository.name}-{branch}"
                )
                start_execution(
                    session,
                    pipeline,
                    {"triggerType": "CloudWatchEvent", "triggerDetail": rule},
                )
                break  # one execution per push, however many sources it touches


def _watched_branches(declaration: dict[str, Any], repository: str) -> Iterator[str]:
    for stage in declaration.get("stages", [])[:1]:
        for action in stage.get("actions", []):
            kind = action.get("actionTypeId", {})
            configuration = action.get("configuration") or {}
            if (
                kind.get("category") == "Source"
                and kind.get("provider") == "CodeCommit"
                and configuration.get("RepositoryName") == repository
            ):
                yield str(configuration.get("BranchName", ""))
