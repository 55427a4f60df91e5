"""CodeBuild source credentials: ImportSourceCredentials, ListSourceCredentials,
DeleteSourceCredentials. One credential per account, region and server type, as in AWS."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from forgeline.codebuild import source_credentials
from forgeline.codebuild.generated import errors, shapes
from forgeline.codebuild.tables.source_credentials import SourceCredential
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope, utcnow

# Auth types whose token is the ARN of another resource, shown back as `resource`.
ARN_AUTH_TYPES = frozenset({"CODECONNECTIONS", "SECRETS_MANAGER"})


def check_import(params: shapes.ImportSourceCredentialsInput) -> None:
    server_type, auth_type = params["serverType"], params["authType"]
    username, token = params.get("username"), params["token"]
    if auth_type == "OAUTH":
        raise errors.InvalidInputException(
            "Invalid input: an OAUTH connection cannot be imported through the API; use "
            "PERSONAL_ACCESS_TOKEN, BASIC_AUTH, CODECONNECTIONS or SECRETS_MANAGER"
        )
    if auth_type == "BASIC_AUTH":
        if server_type != "BITBUCKET":
            raise errors.InvalidInputException(
                f"Invalid input: authType BASIC_AUTH is only valid for BITBUCKET, not {server_type}"
            )
        if not username:
            raise errors.InvalidInputException(
                "Invalid input: username is required when authType is BASIC_AUTH"
            )
    elif username is not None:
        raise errors.InvalidInputException(
            f"Invalid input: username is only valid with authType BASIC_AUTH, not {auth_type}"
        )
    if auth_type == "CODECONNECTIONS" and not token.startswith(
        ("arn:aws:codeconnections:", "arn:aws:codestar-connections:")
    ):
        raise errors.InvalidInputException(
            "Invalid input: with authType CODECONNECTIONS the token must be a connection ARN"
        )
    if auth_type == "SECRETS_MANAGER" and not token.startswith("arn:aws:secretsmanager:"):
        raise errors.InvalidInputException(
            "Invalid input: with authType SECRETS_MANAGER the token must be a secret ARN"
        )


def info(row: SourceCredential) -> shapes.SourceCredentialsInfo:
    output: shapes.SourceCredentialsInfo = {
        "arn": row.arn,
        "serverType": row.server_type,
        "authType": row.auth_type,
    }
    if row.auth_type in ARN_AUTH_TYPES:
        output["resource"] = source_credentials.decrypt_token(row)
    return output


class SourceCredentialOperations:
    def import_source_credentials(
        self, ctx: RequestContext, params: shapes.ImportSourceCredentialsInput
    ) -> shapes.ImportSourceCredentialsOutput:
        check_import(params)
        server_type = params["serverType"]
        # AWS documents true as the default: importing again replaces the token.
        overwrite = params.get("shouldOverwrite", True)
        arn = source_credentials.credential_arn(ctx.account_id, ctx.region, server_type)
        encrypted = source_credentials.encrypt_token(params["token"])
        try:
            with session_scope() as session:
                row = source_credentials.find_credential(
                    session, ctx.account_id, ctx.region, server_type
                )
                if row is not None and not overwrite:
                    raise errors.ResourceAlreadyExistsException(
                        f"Source credentials already exist for server type {server_type}: {arn}"
                    )
                if row is None:
                    row = SourceCredential(
                        id=str(uuid.uuid4()),
                        account_id=ctx.account_id,
                        region=ctx.region,
                        arn=arn,
                        server_type=server_type,
                        created_at=utcnow(),
                    )
                    session.add(row)
                row.auth_type = params["authType"]
                row.username = params.get("username")
                row.token_encrypted = encrypted
                row.updated_at = utcnow()
        except IntegrityError:
            raise errors.ResourceAlreadyExistsException(
                f"Source credentials already exist for server type {server_type}: {arn}"
            ) from None
        return {"arn": arn}

    def list_source_credentials(
        self, ctx: RequestContext, params: shapes.ListSourceCredentialsInput
    ) -> shapes.ListSourceCredentialsOutput:
        with session_scope(readonly=True) as session:
            rows = session.scalars(
                select(SourceCredential)
                .where(
                    SourceCredential.account_id == ctx.account_id,
                    SourceCredential.region == ctx.region,
                )
                .order_by(SourceCredential.server_type)
            ).all()
            return {"sourceCredentialsInfos": [info(row) for row in rows]}

    def delete_source_credentials(
        self, ctx: RequestContext, params: shapes.DeleteSourceCredentialsInput
    ) -> shapes.DeleteSourceCredentialsOutput:
        arn = params["arn"]
        with session_scope() as session:
            row = session.scalars(
                select(SourceCredential).where(
                    SourceCredential.account_id == ctx.account_id,
                    SourceCredential.region == ctx.region,
                    SourceCredential.arn == arn,
                )
            ).first()
            if row is None:
                raise errors.ResourceNotFoundException(f"Source credentials not found: {arn}")
            session.delete(row)
        return {"arn": arn}
