"""A V2 pipeline trigger's git filters (pure): which pushes and pull request events start
the pipeline.

A trigger (PipelineTriggerDeclaration's gitConfiguration) lists push filters and pull
request filters; any one of them that matches starts an execution. Within a filter:
- branches, tags and filePaths each have includes and excludes glob patterns; an absent
  list accepts everything, and an exclude wins over an include;
- a push of a tag is matched by `tags` (a filter without tags matches no tag push); a
  push of a branch by `branches` and `filePaths` (a filter with tags only matches no
  branch push);
- a pull request event must be one of `events` (OPEN, UPDATED, CLOSED; all when absent),
  its destination branch matched by `branches`, its changed files by `filePaths`.
Patterns follow fnmatch: `*` also crosses `/`, so `release/*` takes `release/1/2`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Any

BRANCH, TAG = "branch", "tag"


def _accepts(criteria: Mapping[str, Any] | None, value: str) -> bool:
    if not criteria:
        return True
    includes = criteria.get("includes")
    excludes = criteria.get("excludes") or []
    if any(fnmatch.fnmatchcase(value, pattern) for pattern in excludes):
        return False
    return includes is None or any(fnmatch.fnmatchcase(value, p) for p in includes)


def _paths_accepted(criteria: Mapping[str, Any] | None, paths: Callable[[], Sequence[str]]) -> bool:
    if not criteria:
        return True
    return any(_accepts(criteria, path) for path in paths())


def push_matches(
    git: Mapping[str, Any], kind: str, name: str, paths: Callable[[], Sequence[str]]
) -> bool:
    for push in git.get("push") or []:
        if kind == TAG:
            if push.get("tags") and _accepts(push["tags"], name):
                return True
        elif not push.get("tags") or push.get("branches"):
            if _accepts(push.get("branches"), name) and _paths_accepted(
                push.get("filePaths"), paths
            ):
                return True
    return False


def pull_request_matches(
    git: Mapping[str, Any], event: str, destination: str, paths: Callable[[], Sequence[str]]
) -> bool:
    for rule in git.get("pullRequest") or []:
        events = rule.get("events")
        if events and event not in events:
            continue
        if _accepts(rule.get("branches"), destination) and _paths_accepted(
            rule.get("filePaths"), paths
        ):
            return True
    return False
