"""Action types: ListActionTypes and GetActionType over the built-in catalog
(codepipeline/action_types.py). A type Forgeline cannot run is listed too, as on AWS; it is
CreatePipeline that refuses it."""

from __future__ import annotations

from forgeline.codepipeline import action_types, custom_types
from forgeline.codepipeline.generated import errors, shapes
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.core.pagination import request_page_tokens

LIST_PAGE_SIZE = 100


class ActionTypeOperations:
    def list_action_types(
        self, ctx: RequestContext, params: shapes.ListActionTypesInput
    ) -> shapes.ListActionTypesOutput:
        owner = params.get("actionOwnerFilter")
        found = [kind.to_action_type() for kind in action_types.builtin_action_types(owner)]
        if owner in (None, custom_types.CUSTOM):
            with session_scope(readonly=True) as session:
                rows = custom_types.listed(session, ctx.account_id, ctx.region)
                found += [custom_types.action_type(row) for row in rows]

        def key(kind: shapes.ActionType) -> list[str]:
            ident = kind["id"]
            return [ident["category"], ident["owner"], ident["provider"], ident["version"]]

        ordered = sorted(found, key=key)
        page, next_token = request_page_tokens(ctx).page(
            ordered,
            key,
            {"owner": params.get("actionOwnerFilter")},
            params.get("nextToken"),
            LIST_PAGE_SIZE,
        )
        output: shapes.ListActionTypesOutput = {"actionTypes": page}
        if next_token:
            output["nextToken"] = next_token
        return output

    def get_action_type(
        self, ctx: RequestContext, params: shapes.GetActionTypeInput
    ) -> shapes.GetActionTypeOutput:
        kind = action_types.find_builtin(
            params["category"], params["owner"], params["provider"], params["version"]
        )
        if kind is None:
            raise errors.ActionTypeNotFoundException(
                f"Action type {params['category']}/{params['owner']}/{params['provider']}/"
                f"{params['version']} does not exist."
            )
        return {"actionType": kind.to_action_type_declaration()}

    def update_action_type(self, ctx: RequestContext, params: shapes.UpdateActionTypeInput) -> None:
        """Only action types of the integration model (owner AWS or ThirdParty) are updated
        this way; those here are the built-in ones, which the service itself defines."""
        ident = params["actionType"]["id"]
        name = f"{ident['category']}/{ident['owner']}/{ident['provider']}/{ident['version']}"
        if action_types.find_builtin(
            ident["category"], ident["owner"], ident["provider"], ident["version"]
        ):
            raise errors.RequestFailedException(
                f"Action type {name} is defined by this service and cannot be updated."
            )
        raise errors.ActionTypeNotFoundException(f"Action type {name} does not exist.")
