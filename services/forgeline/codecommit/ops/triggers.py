"""CodeCommit operations: repository triggers.

Importing this module (services/forgeline/codecommit/api.py does) registers the trigger listener with
gitstore, so every reported ref change fires the repository's triggers.
"""

from __future__ import annotations

from typing import Any

from forgeline.codecommit import repositories, triggers
from forgeline.core.context import RequestContext
from forgeline.core.db import session_scope


class TriggerOperations:
    def put_repository_triggers(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            return {"configurationId": triggers.put(session, repository, params["triggers"])}

    def get_repository_triggers(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            configuration_id, found = triggers.get(session, repository)
        return {"configurationId": configuration_id, "triggers": found}

    def test_repository_triggers(self, ctx: RequestContext, params: Any) -> Any:
        with session_scope() as session:
            repository = repositories.get(session, ctx, params["repositoryName"])
            pending = triggers.test(session, ctx, repository, params["triggers"])
        # Deliveries happen after the commit: no transaction waits on a remote server.
        failures = triggers.deliver_tests(pending)
        names = [trigger["name"] for trigger in params["triggers"]]
        return {
            "successfulExecutions": [name for name in names if failures.get(name) is None],
            "failedExecutions": [
                {"trigger": name, "failureMessage": failures[name]}
                for name in names
                if failures.get(name) is not None
            ],
        }
