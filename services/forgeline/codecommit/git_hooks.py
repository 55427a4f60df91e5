"""Learning what a push changed: a post-receive hook that hands ref updates to the server.

receive-pack runs with `-c core.hooksPath=<data-dir>/git-hooks`, so every repository —
old or new — uses Forgeline's hook without a per-repository install. The hook appends
git's "<old> <new> <ref>" lines to the file named by FORGELINE_REF_LOG; once
receive-pack exits the server reads that file and records the changes (events, default
branch, triggers) as the pushing principal.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from forgeline.codecommit import gitstore
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.db import session_scope
from forgeline.core.settings import Settings

REF_LOG_ENV = "FORGELINE_REF_LOG"
_LINE_RE = re.compile(r"([0-9a-f]{40}) ([0-9a-f]{40}) (refs/\S+)")
_POST_RECEIVE = f"""#!/bin/sh
# Forgeline: pass the pushed ref updates to the server (see services/forgeline/codecommit/git_hooks.py).
if [ -n "${REF_LOG_ENV}" ]; then
    exec cat >> "${REF_LOG_ENV}"
fi
exec cat > /dev/null
"""


def hooks_dir(settings: Settings) -> Path:
    return settings.data_dir / "git-hooks"


def install_hooks(settings: Settings) -> Path:
    """Write the hooks directory (idempotent; safe with several processes starting)."""
    directory = hooks_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    hook = directory / "post-receive"
    try:
        if hook.read_text() == _POST_RECEIVE and os.access(hook, os.X_OK):
            return directory
    except FileNotFoundError:
        pass
    temporary = directory / f".post-receive.{uuid.uuid4().hex}"
    temporary.write_text(_POST_RECEIVE)
    temporary.chmod(0o755)
    os.replace(temporary, hook)
    return directory


def read_ref_log(path: Path) -> list[gitstore.RefChange]:
    """The ref changes a post-receive hook wrote, in order; unreadable lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    changes = []
    for line in text.splitlines():
        match = _LINE_RE.fullmatch(line.strip())
        if match and match.group(1) != match.group(2):
            changes.append(gitstore.RefChange(ref=match[3], old=match[1], new=match[2]))
    return changes


def record_push(
    settings: Settings, repository_id: str, changes: list[gitstore.RefChange], caller_arn: str
) -> str | None:
    """Report a push's ref changes; returns the repository's default branch afterwards."""
    if not changes:
        return None
    with session_scope(settings.resolved_database_url) as session:
        repository = session.get(Repository, repository_id)
        if repository is None:
            return None  # deleted while the push ran: nothing left to report on
        gitstore.report_ref_changes(session, None, repository, changes, caller_arn=caller_arn)
        return repository.default_branch
