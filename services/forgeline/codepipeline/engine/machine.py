"""One pipeline execution as a pure state machine.

``advance(state, event, now) -> Transition(state, effects)``: no I/O, no clock but ``now``.

- `Start` fixes the plan, the trigger and the pipeline variables (V2: the declared defaults,
  overridden by the start's values) and asks for the first stage.
- A stage is entered only when the pipeline's lanes allow (lanes.py): the machine asks with
  WantStage and waits for StageGranted. Meanwhile the execution is InProgress and the stage
  shows it as its inbound execution. A grant it no longer wants is handed back
  (ReleaseStage), so no lane stays taken by an execution that is not in it.
- In a stage, actions run by runOrder: every action of the lowest runOrder starts together,
  and the next runOrder starts once all of them Succeeded. Before an action runs, the
  variable references in its configuration, commands and environment variables are
  resolved (variables.py); one that cannot be fails the action at once.
- A failed action fails its stage once every action of its runOrder has ended (the running
  siblings finish); later runOrders never start. A failed stage releases its lane (AWS: "a
  failure releases the lock on the stage") and fails the execution, unless its onFailure
  asks for RETRY (one automatic retry, as AWS allows) or ROLLBACK (StartRollback).
- A stage whose actions all Succeeded releases its lane and the execution asks for the
  next; after the last stage the execution Succeeded.
- Every running action has a deadline (plan.default_timeout, or the declared
  timeoutInMinutes); a Tick past it fails the action and cancels its work. An approval
  that expires fails like a rejected one.
- StopRequested: the execution is Stopping. With abandon, running actions are Abandoned at
  once and the execution Stopped; without, they finish, no new action starts, then Stopped.
  A stop while waiting for a stage stops at once.
- RetryRequested (the failed or stopped stage of a Failed or Stopped execution): the
  execution is InProgress again and asks for the stage's lane; back in the stage it reruns
  the failed and abandoned actions (FAILED_ACTIONS) or all of them (ALL_ACTIONS), each a
  new attempt with a new action execution id, then carries on.
- Superseded: a newer execution overtook this one; running actions are Abandoned.
- A `Start` with a RollbackSeed starts a rollback execution (executionType ROLLBACK): it
  asks for the seed's stage at once, never enters the stages before it (their artifacts and
  namespace variables come from the seed, its pipeline variables too) and ends Succeeded
  when that stage does, without running the stages after it. It fails as any execution
  does, but a rollback that fails starts no rollback of its own. `rollback_problem` says
  whether an execution can be rolled back to, `rollback_seed` builds the seed from it.
- Once ended, every event but a retry is accepted and changes nothing; so is a result for an
  action execution the execution does not wait on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from forgeline.codepipeline.engine.effects import (
    ActionChanged,
    CancelAction,
    Effect,
    ExecutionChanged,
    Finished,
    ReleaseStage,
    RunAction,
    SetTimer,
    StageChanged,
    StartRollback,
    WantStage,
)
from forgeline.codepipeline.engine.events import (
    ActionFailed,
    ActionSucceeded,
    Event,
    RetryRequested,
    StageGranted,
    Start,
    StopRequested,
    Superseded,
    Tick,
)
from forgeline.codepipeline.engine.plan import (
    ALL_ACTIONS,
    FAILED_ACTIONS,
    RESULT_RETRY,
    RESULT_ROLLBACK,
    V2,
    ActionPlan,
    EnvironmentVariable,
    PipelinePlan,
    StagePlan,
)
from forgeline.codepipeline.engine.state import (
    ABANDONED,
    AUTOMATED_STAGE_RETRY,
    FAILED,
    IN_PROGRESS,
    MANUAL_STAGE_RETRY,
    STOPPED,
    STOPPING,
    SUCCEEDED,
    SUPERSEDED,
    ActionState,
    ArtifactRef,
    ErrorDetails,
    ExecutionState,
    RollbackSeed,
    StageState,
    Timer,
)
from forgeline.codepipeline.engine.variables import (
    Scopes,
    failure_message,
    resolve,
    visible_scopes,
)

# AWS allows one automatic retry of a stage that fails (RetryStageMetadata).
AUTOMATIC_RETRIES = 1
# ErrorDetails codes for failures the engine itself decides.
CONFIGURATION_ERROR = "ConfigurationError"
TIMED_OUT = "TimedOut"

_ACTION_EXECUTION_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "forgeline:codepipeline:action-execution")


@dataclass(frozen=True)
class Transition:
    state: ExecutionState
    effects: tuple[Effect, ...] = ()


def advance(state: ExecutionState, event: Event, now: datetime) -> Transition:
    """The execution after ``event`` at ``now``, and what the driver must do about it."""
    run = Run(state, now)
    if isinstance(event, Start):
        run.start(event)
    elif isinstance(event, StageGranted):
        run.stage_granted(event.stage)
    elif isinstance(event, ActionSucceeded):
        run.action_succeeded(event)
    elif isinstance(event, ActionFailed):
        run.action_failed(event)
    elif isinstance(event, Tick):
        run.tick()
    elif isinstance(event, StopRequested):
        run.stop(event.abandon, event.reason)
    elif isinstance(event, RetryRequested):
        run.retry(event.stage, event.mode)
    elif isinstance(event, Superseded):
        run.supersede(event.by)
    if run.state != state:
        run.state = replace(run.state, last_update_time=now)
    return Transition(run.state, tuple(run.effects))


def can_stop(state: ExecutionState) -> bool:
    """StopPipelineExecution applies (otherwise PipelineExecutionNotStoppableException)."""
    return state.status in (IN_PROGRESS, STOPPING)


def is_duplicate_stop(state: ExecutionState, abandon: bool) -> bool:
    """A stop and wait asked of an execution already stopping: AWS answers
    DuplicatedStopRequestException (a stop and abandon may still follow one)."""
    return state.status == STOPPING and not abandon


def can_retry(state: ExecutionState, stage: str) -> str | None:
    """Why RetryStageExecution cannot retry ``stage`` of this execution (the reason for
    StageNotRetryableException), or None when it can. Whether the execution is the
    stage's latest is the API's to check."""
    if state.status not in (FAILED, STOPPED):
        return (
            f"Stage {stage} cannot be retried: the pipeline execution is {state.status}, "
            "not Failed or Stopped."
        )
    stage_state = state.stage(stage)
    if stage_state is None:
        return f"Stage {stage} cannot be retried: the pipeline has no such stage."
    if stage_state.status not in (FAILED, STOPPED):
        shown = stage_state.status or "not reached"
        return (
            f"Stage {stage} cannot be retried: it is {shown}; only the stage that failed or "
            "was stopped can be."
        )
    if any(action.running for action in stage_state.actions):
        return f"Stage {stage} cannot be retried: it still has actions in progress."
    return None


def rollback_problem(target: ExecutionState, stage: str) -> str | None:
    """Why RollbackStage cannot roll ``stage`` back to the execution ``target`` (the reason
    for UnableToRollbackStageException), or None when it can. Whether the target ran the
    pipeline's current version, and whether the stage is running now, is the API's to
    check."""
    refused = f"Stage {stage} cannot be rolled back to pipeline execution {target.execution_id}"
    plan = target.plan
    if plan is None:
        return f"{refused}: the execution has not started."
    stage_plan = plan.stage(stage)
    if stage_plan is None:
        return f"{refused}: the pipeline has no such stage."
    if plan.stage_index(stage) == 0 or any(a.category == "Source" for a in stage_plan.actions):
        return f"{refused}: it is the pipeline's source stage, which cannot be rolled back."
    if target.rollback is not None:
        return f"{refused}: that execution is itself a rollback."
    stage_state = target.stage(stage)
    status = None if stage_state is None else stage_state.status
    if status != SUCCEEDED:
        shown = status or "not reached"
        return f"{refused}: the execution did not succeed in that stage (it is {shown})."
    return None


def rollback_seed(target: ExecutionState, stage: str) -> RollbackSeed:
    """What a rollback of ``stage`` to the execution ``target`` starts from: the artifacts
    and namespace variables its succeeded actions in the stages before ``stage`` produced,
    and its pipeline variables. Raises ValueError when `rollback_problem` objects."""
    problem = rollback_problem(target, stage)
    if problem is not None:
        raise ValueError(problem)
    plan = target.plan
    assert plan is not None
    position = plan.stage_index(stage)
    artifacts: dict[str, ArtifactRef] = {}
    namespaces: dict[str, dict[str, str]] = {}
    for stage_state, action in target.succeeded_actions():
        stage_plan = plan.stage(stage_state.name)
        if stage_plan is None or plan.stage_index(stage_state.name) >= position:
            continue
        for artifact in action.output_artifacts:
            artifacts[artifact.name] = artifact
        producer = stage_plan.action(action.name)
        if producer is not None and producer.namespace is not None:
            namespaces[producer.namespace] = dict(action.output_variables)
    revisions = {
        name: dict(revision)
        for name, revision in target.artifact_revisions.items()
        if name in artifacts
    }
    return RollbackSeed(
        stage=stage,
        target_execution_id=target.execution_id,
        artifacts=artifacts,
        namespace_variables=namespaces,
        variables=dict(target.variables),
        artifact_revisions=revisions,
    )


def action_execution_id(
    execution_id: str, nonce: str, stage: str, action: str, attempt: int
) -> str:
    """The id of one attempt of an action: the same inputs always give the same id."""
    key = "\n".join((execution_id, nonce, stage, action, str(attempt)))
    return str(uuid.uuid5(_ACTION_EXECUTION_IDS, key))


class Run:
    """One transition in the making: the state so far and the effects it owes."""

    def __init__(self, state: ExecutionState, now: datetime) -> None:
        self.state = state
        self.now = now
        self.effects: list[Effect] = []

    @property
    def plan(self) -> PipelinePlan:
        assert self.state.plan is not None
        return self.state.plan

    @property
    def running(self) -> bool:
        return self.state.status in (IN_PROGRESS, STOPPING)

    # ------------------------------------------------------------ the execution

    def start(self, event: Start) -> None:
        if self.state.started:
            return  # a repeated Start
        plan = event.plan
        seed = event.rollback
        # A rollback runs with the target's variables (a default declared since then still
        # applies to a variable the target did not have).
        given = event.variables if seed is None else seed.variables
        variables = {**plan.variables, **given} if plan.pipeline_type == V2 else {}
        stages = tuple(
            StageState(stage.name, tuple(ActionState(action.name) for action in stage.actions))
            for stage in plan.stages
        )
        self.state = replace(
            self.state,
            plan=plan,
            nonce=event.nonce,
            trigger=dict(event.trigger),
            variables=variables,
            source_revisions={name: dict(rev) for name, rev in event.source_revisions.items()},
            stages=stages,
            start_time=self.now,
            rollback=seed,
        )
        self._set_status(IN_PROGRESS)
        if seed is not None:
            self._start_rollback(seed)
        elif plan.stages:
            self._want(plan.stages[0].name)
        else:
            self._finish(SUCCEEDED, None)

    def _start_rollback(self, seed: RollbackSeed) -> None:
        """A rollback execution enters the seed's stage directly."""
        if self.plan.stage(seed.stage) is None:
            self._finish(FAILED, f"Stage {seed.stage} cannot be rolled back: no such stage.")
            return
        revisions = {name: dict(rev) for name, rev in seed.artifact_revisions.items()}
        self.state = replace(self.state, artifact_revisions=revisions)
        self._want(seed.stage)

    def _want(self, stage: str) -> None:
        self.state = replace(self.state, waiting_for=stage)
        self.effects.append(WantStage(stage))

    def stage_granted(self, stage: str) -> None:
        if self.state.status != IN_PROGRESS or self.state.waiting_for != stage:
            held = self.state.current_stage
            if self.state.plan is not None and (held is None or held.name != stage):
                # A grant the execution no longer wants (it stopped, or moved on): hand
                # the lane back so no other execution waits on it for ever.
                self.effects.append(ReleaseStage(stage))
            return
        self.state = replace(self.state, waiting_for=None)
        entered = self._stage(stage)
        if entered.pending_retry_mode is not None:
            entered = _reset_for_retry(entered, entered.pending_retry_mode)
            self._replace_stage(replace(entered, pending_retry_mode=None))
        self._set_stage_status(stage, IN_PROGRESS)
        self._drive(stage)

    def _finish(self, status: str, summary: str | None) -> None:
        self.state = replace(
            self.state, status_summary=summary, end_time=self.now, timers=(), waiting_for=None
        )
        self._set_status(status)
        self.effects.append(Finished(status, summary))

    # ------------------------------------------------------------ a stage

    def _drive(self, stage_name: str) -> None:
        """Start what the stage's runOrder allows next, or end the stage."""
        while True:
            stage = self._stage(stage_name)
            if any(action.running for action in stage.actions):
                return  # the running runOrder finishes first
            if self.state.status == STOPPING:
                self._end_stopped_stage(stage_name)
                return
            group = self._current_group(stage_name)
            if not group:
                self._stage_succeeded(stage_name)
                return
            if any(action.broken for action in group):
                self._stage_failed(stage_name)
                return
            for action in group:
                if action.status is None:
                    self._run_action(stage_name, action.name)
            # Actions that failed before running (an unresolvable variable) may have ended
            # the runOrder already: look again.

    def _current_group(self, stage_name: str) -> list[ActionState]:
        """The actions of the lowest runOrder not yet all Succeeded (empty: none left)."""
        stage_plan = self._stage_plan(stage_name)
        stage = self._stage(stage_name)
        for run_order in stage_plan.run_orders:
            group = [
                stage.action(action.name)
                for action in stage_plan.actions
                if action.run_order == run_order
            ]
            if any(action.status != SUCCEEDED for action in group):
                return group
        return []

    def _stage_succeeded(self, stage_name: str) -> None:
        self._set_stage_status(stage_name, SUCCEEDED)
        self.effects.append(ReleaseStage(stage_name))
        index = self.plan.stage_index(stage_name)
        # A rollback runs its one stage only.
        if self.state.rollback is None and index + 1 < len(self.plan.stages):
            self._want(self.plan.stages[index + 1].name)
        else:
            self._finish(SUCCEEDED, None)

    def _stage_failed(self, stage_name: str) -> None:
        stage_plan = self._stage_plan(stage_name)
        stage = self._stage(stage_name)
        if stage_plan.on_failure == RESULT_RETRY and stage.auto_retry_attempts < AUTOMATIC_RETRIES:
            # The retry runs at once, the stage keeping its lane.
            self._set_stage_status(stage_name, FAILED)
            retried = replace(
                self._stage(stage_name),
                auto_retry_attempts=stage.auto_retry_attempts + 1,
                latest_retry_trigger=AUTOMATED_STAGE_RETRY,
            )
            self._replace_stage(_reset_for_retry(retried, stage_plan.retry_mode or FAILED_ACTIONS))
            self._set_stage_status(stage_name, IN_PROGRESS)
            self._drive(stage_name)
            return
        self._set_stage_status(stage_name, FAILED)
        self.effects.append(ReleaseStage(stage_name))
        self._finish(FAILED, failure_summary(self._stage(stage_name)))
        if stage_plan.on_failure == RESULT_ROLLBACK and self.state.rollback is None:
            self.effects.append(StartRollback(stage_name))

    def _end_stopped_stage(self, stage_name: str) -> None:
        """A stopping execution's stage has nothing running any more: it ends, and so does
        the execution."""
        stage = self._stage(stage_name)
        # Abandoned actions leave the stage Stopped; one that failed on its own, Failed.
        if any(action.status == FAILED for action in stage.actions):
            status = FAILED
        elif not self._current_group(stage_name):
            status = SUCCEEDED
        else:
            status = STOPPED
        self._set_stage_status(stage_name, status)
        self.effects.append(ReleaseStage(stage_name))
        self._finish(STOPPED, self.state.stop_reason)

    # ------------------------------------------------------------ an action

    def _run_action(self, stage_name: str, action_name: str) -> None:
        action = self._action_plan(stage_name, action_name)
        attempt = self._stage(stage_name).action(action_name).attempt + 1
        execution_id = action_execution_id(
            self.state.execution_id, self.state.nonce, stage_name, action_name, attempt
        )
        scopes = visible_scopes(self.state, action)
        prepared = prepare(action, scopes, self.state.available_artifacts())
        started = ActionState(
            action_name,
            status=IN_PROGRESS,
            action_execution_id=execution_id,
            attempt=attempt,
            start_time=self.now,
            last_update_time=self.now,
            resolved_configuration=prepared.configuration,
            input_artifacts=tuple(prepared.inputs.values()),
        )
        if prepared.problem is not None:
            # Nothing runs: the action fails as it starts.
            error = ErrorDetails(CONFIGURATION_ERROR, prepared.problem)
            self._end_action(stage_name, started, FAILED, error)
            return
        self._put_action(stage_name, started)
        self.effects.append(ActionChanged(stage_name, action_name, IN_PROGRESS, execution_id))
        deadline = self.now + action.timeout
        self.effects.append(
            RunAction(
                action_execution_id=execution_id,
                stage=stage_name,
                action=action,
                resolved_configuration=prepared.configuration,
                input_artifacts=prepared.inputs,
                namespace_variables=scopes,
                resolved_commands=prepared.commands,
                resolved_environment_variables=prepared.environment,
                source_revision=self.state.source_revisions.get(action_name),
                attempt=attempt,
                deadline=deadline,
            )
        )
        self._set_timer(execution_id, deadline)

    def _running_action(self, action_execution_id: str) -> tuple[StageState, ActionState] | None:
        """The running action with this id, or None: the event no longer applies."""
        if not self.running:
            return None
        found = self.state.find_action(action_execution_id)
        if found is None or not found[1].running:
            return None
        return found

    def action_succeeded(self, event: ActionSucceeded) -> None:
        found = self._running_action(event.action_execution_id)
        if found is None:
            return
        stage, action = found
        declared = self._action_plan(stage.name, action.name).output_artifacts
        outputs = tuple(
            ArtifactRef(name, event.output_artifacts[name].location, ref_revision(event, name))
            for name in declared
            if name in event.output_artifacts
        )
        if event.revision is not None:
            revisions = dict(self.state.artifact_revisions)
            for artifact in outputs:
                revisions[artifact.name] = dict(event.revision)
            self.state = replace(self.state, artifact_revisions=revisions)
        updated = replace(
            action,
            summary=event.summary,
            external_url=event.external_url,
            external_execution_id=event.external_execution_id,
            output_variables=dict(event.output_variables),
            output_artifacts=outputs,
            revision=None if event.revision is None else dict(event.revision),
        )
        self._end_action(stage.name, updated, SUCCEEDED, None)
        self._drive(stage.name)

    def action_failed(self, event: ActionFailed) -> None:
        found = self._running_action(event.action_execution_id)
        if found is None:
            return
        stage, action = found
        updated = replace(
            action,
            external_url=event.external_url or action.external_url,
            external_execution_id=event.external_execution_id or action.external_execution_id,
        )
        self._end_action(stage.name, updated, FAILED, ErrorDetails(event.code, event.message))
        self._drive(stage.name)

    def _end_action(
        self, stage_name: str, action: ActionState, status: str, error: ErrorDetails | None
    ) -> None:
        ended = replace(action, status=status, error=error, last_update_time=self.now)
        self._put_action(stage_name, ended)
        if action.action_execution_id is not None:
            self._clear_timer(action.action_execution_id)
            self.effects.append(
                ActionChanged(stage_name, action.name, status, action.action_execution_id)
            )

    def tick(self) -> None:
        due = [timer for timer in self.state.timers if timer.at <= self.now]
        self.state = replace(self.state, timers=tuple(t for t in self.state.timers if t not in due))
        for timer in due:
            found = self._running_action(timer.name)
            if found is None:
                continue
            stage, action = found
            plan = self._action_plan(stage.name, action.name)
            self.effects.append(CancelAction(timer.name))
            error = ErrorDetails(TIMED_OUT, timeout_message(plan))
            self._end_action(stage.name, action, FAILED, error)
            self._drive(stage.name)

    def _abandon_running(self, stage_name: str) -> None:
        for action in self._stage(stage_name).actions:
            if action.running and action.action_execution_id is not None:
                self.effects.append(CancelAction(action.action_execution_id))
                self._end_action(stage_name, action, ABANDONED, None)

    # ------------------------------------------------------------ requests

    def stop(self, abandon: bool, reason: str | None) -> None:
        if not can_stop(self.state) or is_duplicate_stop(self.state, abandon):
            return
        if reason is not None:
            self.state = replace(self.state, stop_reason=reason)
        self._set_status(STOPPING)
        stage = self.state.current_stage
        if stage is None:
            # Waiting for a stage: nothing runs, so the execution stops at once.
            self._finish(STOPPED, self.state.stop_reason)
            return
        self._set_stage_status(stage.name, STOPPING)
        if abandon:
            self._abandon_running(stage.name)
        self._drive(stage.name)

    def retry(self, stage_name: str, mode: str) -> None:
        if can_retry(self.state, stage_name) is not None:
            return
        if mode not in (FAILED_ACTIONS, ALL_ACTIONS):
            return
        stage = self._stage(stage_name)
        retried = replace(
            stage,
            manual_retry_attempts=stage.manual_retry_attempts + 1,
            latest_retry_trigger=MANUAL_STAGE_RETRY,
            pending_retry_mode=mode,
        )
        self._replace_stage(retried)
        self.state = replace(self.state, status_summary=None, end_time=None, stop_reason=None)
        self._set_status(IN_PROGRESS)
        # The stage gave up its lane when it ended: ask for it again. The actions are made
        # ready to run again once the execution is back in the stage.
        self._want(stage_name)

    def supersede(self, by: str | None) -> None:
        if not self.running:
            return
        stage = self.state.current_stage
        if stage is not None:
            self._abandon_running(stage.name)
            self._set_stage_status(stage.name, STOPPED)
            self.effects.append(ReleaseStage(stage.name))
        self._finish(SUPERSEDED, superseded_summary(by))

    # ------------------------------------------------------------ small state edits

    def _stage(self, name: str) -> StageState:
        stage = self.state.stage(name)
        assert stage is not None, name
        return stage

    def _stage_plan(self, name: str) -> StagePlan:
        stage = self.plan.stage(name)
        assert stage is not None, name
        return stage

    def _action_plan(self, stage: str, name: str) -> ActionPlan:
        action = self._stage_plan(stage).action(name)
        assert action is not None, (stage, name)
        return action

    def _replace_stage(self, updated: StageState) -> None:
        stages = tuple(updated if s.name == updated.name else s for s in self.state.stages)
        self.state = replace(self.state, stages=stages)

    def _put_action(self, stage_name: str, action: ActionState) -> None:
        self._replace_stage(self._stage(stage_name).with_action(action))

    def _set_status(self, status: str) -> None:
        if self.state.status != status:
            self.state = replace(self.state, status=status)
            self.effects.append(ExecutionChanged(status))

    def _set_stage_status(self, stage_name: str, status: str) -> None:
        stage = self._stage(stage_name)
        if stage.status != status:
            self._replace_stage(replace(stage, status=status))
            self.effects.append(StageChanged(stage_name, status))

    def _set_timer(self, name: str, at: datetime) -> None:
        others = tuple(t for t in self.state.timers if t.name != name)
        self.state = replace(self.state, timers=(*others, Timer(name, at)))
        self.effects.append(SetTimer(name, at))

    def _clear_timer(self, name: str) -> None:
        timers = tuple(t for t in self.state.timers if t.name != name)
        if timers != self.state.timers:
            self.state = replace(self.state, timers=timers)


@dataclass(frozen=True)
class Prepared:
    """What an action runs with, its references resolved and its inputs found; ``problem``
    says why it cannot run at all."""

    configuration: dict[str, str]
    commands: tuple[str, ...]
    environment: tuple[EnvironmentVariable, ...]
    inputs: dict[str, ArtifactRef]
    problem: str | None


def prepare(action: ActionPlan, scopes: Scopes, available: Mapping[str, ArtifactRef]) -> Prepared:
    """Resolve the action's configuration, commands and environment variables in
    ``scopes`` and find its input artifacts among those ``available``."""
    keys = list(action.configuration)
    commands_end = len(keys) + len(action.commands)
    resolution = resolve(
        [
            *action.configuration.values(),
            *action.commands,
            *(variable.value for variable in action.environment_variables),
        ],
        scopes,
    )
    environment = tuple(
        EnvironmentVariable(variable.name, value, variable.type)
        for variable, value in zip(
            action.environment_variables, resolution.values[commands_end:], strict=True
        )
    )
    inputs = {name: available[name] for name in action.input_artifacts if name in available}
    missing = [name for name in action.input_artifacts if name not in available]
    problem = None
    if resolution.unresolved:
        problem = failure_message(action.name, resolution.unresolved)
    elif missing:
        problem = missing_artifacts_message(missing)
    return Prepared(
        configuration=dict(zip(keys, resolution.values[: len(keys)], strict=True)),
        commands=resolution.values[len(keys) : commands_end],
        environment=environment,
        inputs=inputs,
        problem=problem,
    )


def _reset_for_retry(stage: StageState, mode: str) -> StageState:
    """The stage with the actions a retry runs again made ready to run: the failed and
    abandoned ones (FAILED_ACTIONS) or all of them (ALL_ACTIONS)."""
    actions = tuple(
        action.reset() if mode == ALL_ACTIONS or action.broken else action
        for action in stage.actions
    )
    return replace(stage, actions=actions)


def ref_revision(event: ActionSucceeded, name: str) -> str | None:
    """The revision an output artifact holds: as reported with it, else the action's."""
    reported = event.output_artifacts[name].revision
    if reported is not None:
        return reported
    if event.revision is not None:
        return event.revision.get("revisionId")
    return None


# ------------------------------------------------------------ the words an execution ends with


def failure_summary(stage: StageState) -> str:
    """The statusSummary of an execution that failed in ``stage``."""
    failed = [action for action in stage.actions if action.status == FAILED]
    if not failed:
        return f"Stage {stage.name} failed."
    first = failed[0]
    detail = f": {first.error.message}" if first.error is not None else "."
    return f"Action {first.name} in stage {stage.name} failed{detail}"


def superseded_summary(by: str | None) -> str:
    if by is None:
        return "Superseded by a newer pipeline execution."
    return f"Superseded by pipeline execution {by}."


def missing_artifacts_message(names: list[str]) -> str:
    listed = ", ".join(names)
    return f"Input artifacts not available: {listed}. No earlier action of this execution produced them."


def timeout_message(action: ActionPlan) -> str:
    limit = describe_duration(action.timeout)
    if action.is_approval:
        return (
            f"The approval request expired: no one approved or rejected it within {limit}, "
            "so it failed."
        )
    return f"The action did not complete within its timeout of {limit}."


def describe_duration(duration: timedelta) -> str:
    minutes = int(duration.total_seconds() // 60)
    for unit, size in (("day", 1440), ("hour", 60)):
        if minutes >= size and minutes % size == 0:
            count = minutes // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
