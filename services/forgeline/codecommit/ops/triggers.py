"""CodeCommit operations: repository triggers.

Importing this module (services/forgeline/codecommit/api.py does) registers the trigger listener with
gitstore, so every reported ref change fires the repository's triggers.
"""

from __future__ import annotations

from forgeline.codecommit import repositories, triggers
from forgeline.codecommit.generated import shapes
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope


class TriggerOperations:
    def put_repository_triggers(
        self, ctx: RequestContext, params: shapes.PutRepositoryTriggersInput
    ) -> shapes.PutRepositoryTriggersOutput:
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            return {"configurationId": triggers.put(session, repository, params["triggers"])}

    def get_repository_triggers(
        self, ctx: RequestContext, params: shapes.GetRepositoryTriggersInput
    ) -> shapes.GetRepositoryTriggersOutput:
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            configuration_id, found = triggers.get(session, repository)
        if configuration_id is None:  # no configuration stored yet
            return {"triggers": found}
        return {"configurationId": configuration_id, "triggers": found}

    def test_repository_triggers(
        self, ctx: RequestContext, params: shapes.TestRepositoryTriggersInput
    ) -> shapes.TestRepositoryTriggersOutput:
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            pending = triggers.test(session, ctx, repository, params["triggers"])
        # Deliveries happen after the commit: no transaction waits on a remote server.
        failures = triggers.deliver_tests(pending)
        successful: list[str] = []
        failed: list[shapes.RepositoryTriggerExecutionFailure] = []
        for trigger in params["triggers"]:
            failure = failures.get(trigger["name"])
            if failure is None:
                successful.append(trigger["name"])
            else:
                failed.append({"trigger": trigger["name"], "failureMessage": failure})
        return {"successfulExecutions": successful, "failedExecutions": failed}
