"""Action types: ListActionTypes and GetActionType over the built-in catalog
(codepipeline/action_types.py). A type Forgeline cannot run is listed too, as on AWS; it is
CreatePipeline that refuses it."""

from __future__ import annotations

from forgeline.codepipeline import action_types
from forgeline.codepipeline.generated import errors, shapes
from forgeline.core.context import RequestContext
from forgeline.core.pagination import request_page_tokens

LIST_PAGE_SIZE = 100


class ActionTypeOperations:
    def list_action_types(
        self, ctx: RequestContext, params: shapes.ListActionTypesInput
    ) -> shapes.ListActionTypesOutput:
        found = action_types.builtin_action_types(params.get("actionOwnerFilter"))

        def key(kind: action_types.BuiltinActionType) -> list[str]:
            return [kind.category, kind.owner, kind.provider, kind.version]

        ordered = sorted(found, key=key)
        page, next_token = request_page_tokens(ctx).page(
            ordered,
            key,
            {"owner": params.get("actionOwnerFilter")},
            params.get("nextToken"),
            LIST_PAGE_SIZE,
        )
        output: shapes.ListActionTypesOutput = {
            "actionTypes": [kind.to_action_type() for kind in page]
        }
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
