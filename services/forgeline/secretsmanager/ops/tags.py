"""Tags of secrets: TagResource and UntagResource (ListSecrets and DescribeSecret show them)."""

from __future__ import annotations

from forgeline.core import tagging
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope
from forgeline.secretsmanager import store
from forgeline.secretsmanager.generated import shapes
from forgeline.secretsmanager.ops.members import tag_map


class TagOperations:
    def tag_resource(self, ctx: RequestContext, params: shapes.TagResourceRequest) -> None:
        with session_scope() as session:
            secret = store.get_live(
                session, ctx.account_id, ctx.region, params["SecretId"], lock=True
            )
            tagging.put_tags(
                session, ctx.account_id, secret.arn, tag_map(params["Tags"]), store.TAG_ERRORS
            )

    def untag_resource(self, ctx: RequestContext, params: shapes.UntagResourceRequest) -> None:
        with session_scope() as session:
            secret = store.get_live(
                session, ctx.account_id, ctx.region, params["SecretId"], lock=True
            )
            tagging.remove_tags(session, secret.arn, params["TagKeys"], store.TAG_ERRORS)
