"""Account-level operations with nothing for Forgeline to keep: GitHub connections (none
can be made here) and resources created by an external id (none carry one)."""

from __future__ import annotations

from forgeline.codedeploy.generated import errors, shapes
from forgeline.core.context import RequestContext
from forgeline.core.pagination import request_page_tokens


class AccountOperations:
    def list_git_hub_account_token_names(
        self, ctx: RequestContext, params: shapes.ListGitHubAccountTokenNamesInput
    ) -> shapes.ListGitHubAccountTokenNamesOutput:
        token = params.get("nextToken")
        if token:
            # No page ever follows an empty list: any token is one this server never gave.
            request_page_tokens(ctx).decode({}, token)
        return {"tokenNameList": []}

    def delete_git_hub_account_token(
        self, ctx: RequestContext, params: shapes.DeleteGitHubAccountTokenInput
    ) -> shapes.DeleteGitHubAccountTokenOutput:
        name = params.get("tokenName")
        if not name:
            raise errors.GitHubAccountTokenNameRequiredException(
                "The GitHub account connection name (tokenName) is required."
            )
        raise errors.GitHubAccountTokenDoesNotExistException(
            f"No GitHub account connection named {name} exists: Forgeline makes no GitHub "
            "connections."
        )

    def delete_resources_by_external_id(
        self, ctx: RequestContext, params: shapes.DeleteResourcesByExternalIdInput
    ) -> shapes.DeleteResourcesByExternalIdOutput:
        # Only CloudFormation-made deployments carry an external id; Forgeline has none.
        return {}
