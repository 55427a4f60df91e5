"""Operator commands for CodeCommit repositories."""

from __future__ import annotations

import uuid


def test_webhook_secret_is_stable_until_rotated(forgeline):
    name = f"hooks-{uuid.uuid4().hex[:8]}"
    client = forgeline.client("codecommit")
    account = client.create_repository(repositoryName=name)["repositoryMetadata"]["accountId"]
    try:
        args = ("repo", "webhook-secret", "--account-id", account, "--repository", name)
        first = forgeline.cli(*args)
        assert first.returncode == 0, first.stderr
        again = forgeline.cli(*args)
        assert again.stdout == first.stdout and len(first.stdout.strip()) >= 32
        rotated = forgeline.cli(*args, "--rotate")
        assert rotated.returncode == 0 and rotated.stdout != first.stdout
        missing = forgeline.cli(
            "repo", "webhook-secret", "--account-id", account, "--repository", "nope"
        )
        assert missing.returncode != 0 and "no repository" in missing.stderr
    finally:
        client.delete_repository(repositoryName=name)
