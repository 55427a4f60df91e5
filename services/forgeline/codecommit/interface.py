"""What other services may use of CodeCommit, and nothing more.

CodeBuild builds from these repositories, starts webhook builds on their events, and
gives a build a short-lived git credential. CodePipeline's source action reads a branch's
head commit and zips its tree. It imports this module only (the layout
test checks), so CodeCommit's tables and modules can change behind it.
"""

from __future__ import annotations

from pathlib import Path

from pygit2 import Commit
from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codecommit import git_auth
from forgeline.codecommit.archive import CommitInfo, changed_paths, commit_info, zip_tree
from forgeline.codecommit.gitstore import BRANCH_PREFIX, ZERO_OID, RefChange, branch_head, open_git
from forgeline.codecommit.storage import repository_path
from forgeline.codecommit.tables.git_credentials import GitCredential
from forgeline.codecommit.tables.pull_requests import PullRequest
from forgeline.codecommit.tables.repositories import Repository
from forgeline.core.settings import Settings

__all__ = [
    "BRANCH_PREFIX",
    "Commit",
    "CommitInfo",
    "branch_head",
    "changed_paths",
    "commit_info",
    "zip_tree",
    "ZERO_OID",
    "GitCredential",
    "RefChange",
    "Repository",
    "bare_path",
    "create_git_credential",
    "delete_git_credentials",
    "find_repository",
    "merge_commit_of",
    "open_git",
]


def find_repository(session: Session, account_id: str, region: str, name: str) -> Repository | None:
    return session.scalars(
        select(Repository).where(
            Repository.account_id == account_id,
            Repository.region == region,
            Repository.name == name,
        )
    ).one_or_none()


def bare_path(settings: Settings, repository: Repository) -> Path:
    """Where the repository's bare git directory lives (it may be missing)."""
    return repository_path(settings, repository.id)


def merge_commit_of(
    session: Session, account_id: str, region: str, pull_request_id: str
) -> str | None:
    """The commit a merged pull request made, if its merge made one."""
    return session.scalar(
        select(PullRequest.merge_commit_id).where(
            PullRequest.account_id == account_id,
            PullRequest.region == region,
            PullRequest.pull_request_id == pull_request_id,
        )
    )


def create_git_credential(
    session: Session, account_id: str, user_name: str
) -> tuple[GitCredential, str]:
    """A new HTTPS git credential for `user_name`; returns it and its password."""
    return git_auth.create_credential(session, account_id, user_name)


def delete_git_credentials(session: Session, account_id: str, user_name: str) -> list[str]:
    """Delete every credential of `user_name`; returns the ids deleted."""
    return git_auth.delete_credentials(session, account_id, user_name)
