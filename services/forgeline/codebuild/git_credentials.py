"""`env: git-credential-helper: yes`: git inside the build can reach this server's
CodeCommit repositories.

AWS points git at the CodeCommit credential helper with the build's role. Here each such
build gets its own HTTPS git credential in its account (deleted when the build ends) and
a tiny credential-helper script that hands it to git; git finds the helper through
GIT_CONFIG_COUNT/KEY/VALUE variables, so no file in the image has to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from forgeline.codebuild.plan import shell_quote
from forgeline.codecommit import interface as codecommit

HELPER_SCRIPT = "git-credential-helper.sh"


@dataclass(frozen=True)
class BuildGitCredential:
    user_name: str  # the account user the credential belongs to
    credential_id: str
    password: str
    variables: dict[str, str]  # to add to the build's environment


def user_for(build_uuid: str) -> str:
    return f"codebuild-{build_uuid[:13]}"


def issue(
    session: Session, account_id: str, build_uuid: str, plan_dir: Path, plan_dir_in_runner: str
) -> BuildGitCredential:
    credential, password = codecommit.create_git_credential(
        session, account_id, user_for(build_uuid)
    )
    script = (
        "#!/bin/sh\n"
        "# git credential helper for this build: answers `get` with the build's credential.\n"
        '[ "$1" = get ] || exit 0\n'
        f"echo username={shell_quote(credential.service_user_name)}\n"
        f"echo password={shell_quote(password)}\n"
    )
    path = plan_dir / HELPER_SCRIPT
    path.write_text(script)
    path.chmod(0o755)
    variables = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": f"!sh {plan_dir_in_runner}/{HELPER_SCRIPT}",
    }
    return BuildGitCredential(credential.user_name, credential.id, password, variables)


def revoke(session: Session, account_id: str, build_uuid: str) -> None:
    codecommit.delete_git_credentials(session, account_id, user_for(build_uuid))
