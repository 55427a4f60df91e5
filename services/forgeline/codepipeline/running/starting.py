"""Starting an execution: a row holding the engine's state, then `Start`.

StartPipelineExecution, CreatePipeline (which starts a first execution, as on AWS) and the
source triggers (triggers.py) all come here. The execution runs the pipeline's current
version for its whole life.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping

from sqlalchemy.orm import Session

from forgeline.codepipeline.engine.events import Start
from forgeline.codepipeline.engine.plan import plan_from_declaration
from forgeline.codepipeline.engine.state import ExecutionState, RollbackSeed
from forgeline.codepipeline.running import driver
from forgeline.codepipeline.tables.executions import PipelineExecution
from forgeline.codepipeline.tables.pipelines import Pipeline
from forgeline.core.db import utcnow


def start_execution(
    session: Session,
    pipeline: Pipeline,
    trigger: Mapping[str, str],
    *,
    variables: Mapping[str, str] | None = None,
    source_revisions: Mapping[str, Mapping[str, str]] | None = None,
    client_request_token: str | None = None,
    rollback: RollbackSeed | None = None,
) -> PipelineExecution:
    now = utcnow()
    execution_id = str(uuid.uuid4())
    execution = PipelineExecution(
        id=execution_id,
        pipeline_id=pipeline.id,
        account_id=pipeline.account_id,
        region=pipeline.region,
        pipeline_name=pipeline.name,
        pipeline_version=pipeline.version,
        status="InProgress",
        state=ExecutionState(execution_id).to_document(),
        trigger=dict(trigger),
        client_request_token=client_request_token,
        started_at=now,
        updated_at=now,
    )
    session.add(execution)
    session.flush()
    driver.apply(
        session,
        execution,
        Start(
            plan_from_declaration(pipeline.declaration, pipeline.version),
            trigger=dict(trigger),
            variables=dict(variables or {}),
            source_revisions={k: dict(v) for k, v in (source_revisions or {}).items()},
            nonce=secrets.token_hex(8),
            rollback=rollback,
        ),
        now=now,
    )
    return execution
