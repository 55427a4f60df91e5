"""Approval / Manual: the action waits, with a token, for PutApprovalResult (the token
is what GetPipelineState shows the reviewer and what the answer must quote)."""

from __future__ import annotations

import uuid

from forgeline.codepipeline.running.actions.context import ActionContext, Outcome, Waiting


def run(context: ActionContext) -> Outcome:
    custom = context.configuration.get("CustomData")
    return Waiting(external_id=str(uuid.uuid4()), summary=custom)
