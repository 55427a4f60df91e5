"""Who may run privileged builds (`privilegedMode`): the operator's one rule.

A privileged build container holds every capability the engine can grant, so it is
allowed only where the operator says so (FORGELINE_BUILD_PRIVILEGED): `*` for every
account, a comma-separated list of account ids, or nobody (the default). Every request
that would make or start a privileged build asks `check` here: CreateProject and
UpdateProject (an environment with privilegedMode), StartBuild and RetryBuild (the
project's setting or privilegedModeOverride, so a project made privileged before the
operator withdrew the permission no longer starts), StartBuildBatch and RetryBuildBatch
(the batch's environment and each batchspec entry's `privileged-mode`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forgeline.codebuild.generated import errors

SETTING = "FORGELINE_BUILD_PRIVILEGED"
EVERYONE = "*"


def allowed_accounts(setting: str) -> frozenset[str]:
    """The account ids the setting names (`*` stands for every account)."""
    return frozenset(part.strip() for part in setting.split(",") if part.strip())


def privileged_allowed(setting: str, account_id: str) -> bool:
    accounts = allowed_accounts(setting)
    return EVERYONE in accounts or account_id in accounts


def refusal_message(account_id: str) -> str:
    return (
        f"Privileged builds (privilegedMode) are not allowed for account {account_id} on "
        f"this server. The server's operator allows them with {SETTING} ('*' for every "
        "account, or a comma-separated list of account ids)."
    )


def check(account_id: str, privileged: bool, setting: str | None = None) -> None:
    """InvalidInputException when a privileged build is asked for and not allowed.

    `setting` defaults to this server's FORGELINE_BUILD_PRIVILEGED.
    """
    if not privileged:
        return
    if setting is None:
        from forgeline.core.settings import get_settings

        setting = get_settings().build_privileged
    if not privileged_allowed(setting, account_id):
        raise errors.InvalidInputException(refusal_message(account_id))


def check_environment(account_id: str, environment: Mapping[str, Any] | None) -> None:
    """`check` for a project's or a build's environment (as its document keeps it)."""
    check(account_id, bool((environment or {}).get("privilegedMode")))
