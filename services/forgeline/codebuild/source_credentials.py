"""Source provider credentials (GitHub, Bitbucket, GitLab tokens) kept for CodeBuild.

The token is encrypted with the server key; `credential_for` gives it back, decrypted,
to the part of the build engine that fetches sources.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.codebuild.tables.source_credentials import SourceCredential
from forgeline.core.auth import crypto
from forgeline.core.lifecycle import server_key
from forgeline.core.settings import get_settings


@dataclasses.dataclass(frozen=True)
class ProviderCredential:
    server_type: str
    auth_type: str
    username: str | None
    token: str  # a token or password; for CODECONNECTIONS/SECRETS_MANAGER an ARN


def credential_arn(account_id: str, region: str, server_type: str) -> str:
    return f"arn:aws:codebuild:{region}:{account_id}:token/{server_type.lower()}"


def encrypt_token(token: str) -> str:
    return crypto.encrypt(server_key(get_settings()), token)


def decrypt_token(row: SourceCredential) -> str:
    return crypto.decrypt(server_key(get_settings()), row.token_encrypted)


def find_credential(
    session: Session, account_id: str, region: str, server_type: str
) -> SourceCredential | None:
    return session.scalars(
        select(SourceCredential).where(
            SourceCredential.account_id == account_id,
            SourceCredential.region == region,
            SourceCredential.server_type == server_type,
        )
    ).first()


def credential_for(
    session: Session, account_id: str, region: str, server_type: str
) -> ProviderCredential | None:
    """The credential imported for `server_type` (GITHUB, BITBUCKET, ...), decrypted."""
    row = find_credential(session, account_id, region, server_type)
    if row is None:
        return None
    return ProviderCredential(row.server_type, row.auth_type, row.username, decrypt_token(row))
