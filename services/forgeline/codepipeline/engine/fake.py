"""An in-memory world that runs a pipeline's executions: scripted actions, a fake clock.

`InMemoryPipelineWorld` drives the machine the way a driver would, with no database and no
workers: it starts executions, lets them into stages through the pipeline's lanes
(lanes.py, under the plan's execution mode), answers each RunAction (one clock step apiece,
in the order asked) with the outcome scripted for the action, and when nothing is left to
answer moves its clock to the next timer and ticks (`settle` stops short of that). Actions
succeed unless scripted to fail or to hang (taken up, never answered: a build that dies
silently, an approval nobody answers; `release` answers one later). After every transition
the state goes through its JSON document and the world carries on from the decoded copy, as
a driver that stores it in a row would; the lanes' occupancy does the same after every
decision.

    world = InMemoryPipelineWorld(plan)
    world.fail("Build", "exit status 1")
    execution = world.start()
    world.run()
    world.state(execution).status  # "Failed"

A rollback execution starts from a seed built from an earlier execution's state:

    world.start(rollback=rollback_seed(world.state(earlier), "Deploy"))
"""

from __future__ import annotations

import json
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

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
    JOB_FAILED,
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
from forgeline.codepipeline.engine.lanes import (
    Arrive,
    Decision,
    DisableTransition,
    EnableTransition,
    Leave,
    StageOccupancy,
    StageRequest,
    Withdraw,
    grant,
)
from forgeline.codepipeline.engine.machine import Transition, advance
from forgeline.codepipeline.engine.plan import PipelinePlan
from forgeline.codepipeline.engine.state import (
    IN_PROGRESS,
    ActionState,
    ArtifactRef,
    ExecutionState,
    RollbackSeed,
    StageState,
    new_execution,
)

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_EXECUTION_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "forgeline:codepipeline:fake-execution")


@dataclass(frozen=True)
class Succeed:
    output_variables: Mapping[str, str] = field(default_factory=dict)
    summary: str | None = None
    external_url: str | None = None
    revision: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Fail:
    message: str = "The action failed."
    code: str = JOB_FAILED


@dataclass(frozen=True)
class Hang:
    """Taken up and never answered, until `release`."""


Outcome = Succeed | Fail | Hang


class InMemoryPipelineWorld:
    def __init__(
        self,
        plan: PipelinePlan,
        *,
        now: datetime = EPOCH,
        step: timedelta = timedelta(seconds=1),
    ) -> None:
        self.plan = plan
        self.now = now
        self.step = step
        self.states: dict[str, ExecutionState] = {}
        self.occupancy = StageOccupancy()
        self.transitions: list[tuple[str, Event, Transition]] = []
        self.effects: list[tuple[str, Effect]] = []
        self.runs: list[tuple[str, RunAction]] = []  # (execution, RunAction) as asked
        self.cancelled: list[str] = []  # action execution ids
        self.parked: dict[str, tuple[str, RunAction]] = {}  # hung, by action execution id
        self.timers: dict[tuple[str, str], datetime] = {}  # (execution, name) -> at
        self.statuses: dict[str, list[str]] = {}  # execution -> its statuses in turn
        self.stage_changes: list[tuple[str, str, str]] = []  # (execution, stage, status)
        self.action_changes: list[tuple[str, str, str, str]] = []  # (exec, stage, action, st)
        self.grants: list[tuple[str, str]] = []  # (execution, stage) as granted
        self.superseded: list[str] = []
        self.finished: dict[str, Finished] = {}
        self.rollbacks: list[tuple[str, str]] = []  # (execution, stage)
        self.peak_running = 0
        self._running: set[str] = set()
        self._order: dict[str, int] = {}
        self._work: deque[tuple[str, RunAction]] = deque()
        self._events: deque[tuple[str, Event]] = deque()
        self._draining = False
        self._scripts: dict[str, list[Outcome]] = {}
        self._execution_scripts: dict[tuple[str, str], list[Outcome]] = {}

    # ------------------------------------------------------------ scripting the actions

    def script(self, action: str, *outcomes: Outcome, execution_id: str | None = None) -> None:
        """The next runs of ``action`` (of any execution, or of ``execution_id``) end with
        ``outcomes`` in turn; runs past them succeed."""
        if execution_id is None:
            self._scripts.setdefault(action, []).extend(outcomes)
        else:
            self._execution_scripts.setdefault((execution_id, action), []).extend(outcomes)

    def fail(self, action: str, message: str = "The action failed.", times: int = 1) -> None:
        self.script(action, *[Fail(message)] * times)

    def hang(self, action: str, times: int = 1) -> None:
        self.script(action, *[Hang()] * times)

    # ------------------------------------------------------------ driving

    def start(
        self,
        *,
        variables: Mapping[str, str] | None = None,
        trigger: Mapping[str, str] | None = None,
        source_revisions: Mapping[str, Mapping[str, str]] | None = None,
        rollback: RollbackSeed | None = None,
    ) -> str:
        """Start an execution (it enters the first stage if the lanes allow, or with
        ``rollback`` the seed's stage) and return its id; `run` carries it on."""
        number = len(self._order) + 1
        execution_id = str(uuid.uuid5(_EXECUTION_IDS, str(number)))
        self._order[execution_id] = number
        self.states[execution_id] = new_execution(execution_id)
        trigger_type = "StartPipelineExecution" if rollback is None else "ManualRollback"
        start = Start(
            plan=self.plan,
            trigger=trigger or {"triggerType": trigger_type},
            variables=variables or {},
            source_revisions=source_revisions or {},
            nonce=f"nonce-{number}",
            rollback=rollback,
        )
        self.apply(execution_id, start)
        return execution_id

    def apply(self, execution_id: str, event: Event) -> Transition:
        """Feed one event to one execution at the world's time, keep the state through its
        JSON document, take on the effects, then deliver whatever the lanes decided."""
        transition = advance(self.states[execution_id], event, self.now)
        document = json.loads(json.dumps(transition.state.to_document()))
        decoded = ExecutionState.from_document(document)
        if decoded != transition.state:
            raise AssertionError(f"the state does not survive its JSON document after {event}")
        self.states[execution_id] = decoded
        self.transitions.append((execution_id, event, transition))
        for effect in transition.effects:
            self._take(execution_id, effect)
        self._drain()
        return transition

    def run(
        self,
        until: Callable[[InMemoryPipelineWorld], bool] | None = None,
        *,
        fire_timers: bool = True,
    ) -> None:
        """Answer actions and fire timers until nothing is left (or ``until`` holds)."""
        for _ in range(100_000):
            if until is not None and until(self):
                return
            if self._work:
                self._answer(*self._work.popleft())
            elif self.timers and fire_timers:
                (execution_id, name), at = min(self.timers.items(), key=lambda item: item[1])
                del self.timers[(execution_id, name)]
                self.now = max(self.now, at)
                self.apply(execution_id, Tick())
            else:
                return
        raise AssertionError("the pipeline did not settle")

    def settle(self) -> None:
        """Answer every action that answers; leave hung ones hung (no timer fires)."""
        self.run(fire_timers=False)

    def release(self, execution_id: str, action: str, outcome: Outcome | None = None) -> None:
        """Answer the hung run of ``action`` in ``execution_id`` (succeed by default)."""
        for action_execution_id, (owner, run) in list(self.parked.items()):
            if owner == execution_id and run.action.name == action:
                del self.parked[action_execution_id]
                self.now += self.step
                self._report(execution_id, run, outcome or Succeed())
                return
        raise AssertionError(f"{action} of {execution_id} is not waiting for an answer")

    def stop(self, execution_id: str, *, abandon: bool = False, reason: str | None = None) -> None:
        self.apply(execution_id, StopRequested(abandon, reason))

    def retry(self, execution_id: str, stage: str, mode: str) -> None:
        self.apply(execution_id, RetryRequested(stage, mode))

    def disable(self, stage: str) -> None:
        self._ask_lanes(DisableTransition(stage))
        self._drain()

    def enable(self, stage: str) -> None:
        self._ask_lanes(EnableTransition(stage))
        self._drain()

    def advance_clock(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def tick(self, execution_id: str) -> None:
        self.apply(execution_id, Tick())

    # ------------------------------------------------------------ what the world does

    def _take(self, execution_id: str, effect: Effect) -> None:
        self.effects.append((execution_id, effect))
        if isinstance(effect, RunAction):
            self.runs.append((execution_id, effect))
            self._work.append((execution_id, effect))
        elif isinstance(effect, CancelAction):
            self.cancelled.append(effect.action_execution_id)
            self.parked.pop(effect.action_execution_id, None)
            kept = [w for w in self._work if w[1].action_execution_id != effect.action_execution_id]
            self._work = deque(kept)
        elif isinstance(effect, SetTimer):
            self.timers[(execution_id, effect.name)] = effect.at
        elif isinstance(effect, ActionChanged):
            self._track_action(execution_id, effect)
        elif isinstance(effect, StageChanged):
            self.stage_changes.append((execution_id, effect.stage, effect.status))
        elif isinstance(effect, ExecutionChanged):
            self.statuses.setdefault(execution_id, []).append(effect.status)
        elif isinstance(effect, WantStage):
            self._ask_lanes(Arrive(effect.stage, execution_id, self._order[execution_id]))
        elif isinstance(effect, ReleaseStage):
            self._ask_lanes(Leave(effect.stage, execution_id))
        elif isinstance(effect, Finished):
            self.finished[execution_id] = effect
            self.timers = {key: at for key, at in self.timers.items() if key[0] != execution_id}
            self._ask_lanes(Withdraw(execution_id))
        elif isinstance(effect, StartRollback):
            self.rollbacks.append((execution_id, effect.stage))

    def _ask_lanes(self, request: StageRequest) -> Decision:
        decision = grant(self.plan.execution_mode, self.occupancy, request)
        document = json.loads(json.dumps(decision.occupancy.to_document()))
        decoded = StageOccupancy.from_document(document)
        if decoded != decision.occupancy:
            raise AssertionError(f"the lanes do not survive their JSON document after {request}")
        self.occupancy = decoded
        newest = request.execution_id if isinstance(request, Arrive) else None
        for overtaken in decision.superseded:
            self.superseded.append(overtaken)
            self._events.append((overtaken, Superseded(newest)))
        for granted in decision.granted:
            self.grants.append((granted.execution_id, granted.stage))
            self._events.append((granted.execution_id, StageGranted(granted.stage)))
        return decision

    def _drain(self) -> None:
        """Deliver the lanes' decisions, each an event of its own, in the order made."""
        if self._draining:
            return
        self._draining = True
        try:
            while self._events:
                self.apply(*self._events.popleft())
        finally:
            self._draining = False

    def _answer(self, execution_id: str, run: RunAction) -> None:
        self.now += self.step
        outcome = self._next_outcome(execution_id, run.action.name)
        if isinstance(outcome, Hang):
            self.parked[run.action_execution_id] = (execution_id, run)
            return
        self._report(execution_id, run, outcome)

    def _next_outcome(self, execution_id: str, action: str) -> Outcome:
        for queue in (
            self._execution_scripts.get((execution_id, action)),
            self._scripts.get(action),
        ):
            if queue:
                return queue.pop(0)
        return Succeed()

    def _report(self, execution_id: str, run: RunAction, outcome: Outcome) -> None:
        if isinstance(outcome, Fail):
            self.apply(
                execution_id, ActionFailed(run.action_execution_id, outcome.message, outcome.code)
            )
            return
        assert isinstance(outcome, Succeed)
        revision_id = None if outcome.revision is None else outcome.revision.get("revisionId")
        outputs = {
            name: ArtifactRef(
                name, f"{execution_id}/{run.stage}/{run.action.name}/{name}", revision_id
            )
            for name in run.action.output_artifacts
        }
        self.apply(
            execution_id,
            ActionSucceeded(
                run.action_execution_id,
                output_artifacts=outputs,
                output_variables=outcome.output_variables,
                summary=outcome.summary,
                external_url=outcome.external_url,
                revision=outcome.revision,
            ),
        )

    def _track_action(self, execution_id: str, effect: ActionChanged) -> None:
        self.action_changes.append((execution_id, effect.stage, effect.action, effect.status))
        if effect.status == IN_PROGRESS:
            self._running.add(effect.action_execution_id)
            self.peak_running = max(self.peak_running, len(self._running))
        else:
            self._running.discard(effect.action_execution_id)

    # ------------------------------------------------------------ reading the result

    def state(self, execution_id: str) -> ExecutionState:
        return self.states[execution_id]

    def stage(self, execution_id: str, stage: str) -> StageState:
        found = self.states[execution_id].stage(stage)
        assert found is not None, stage
        return found

    def action(self, execution_id: str, stage: str, action: str) -> ActionState:
        return self.stage(execution_id, stage).action(action)

    def runs_of(self, action: str, execution_id: str | None = None) -> list[RunAction]:
        return [
            run
            for owner, run in self.runs
            if run.action.name == action and execution_id in (None, owner)
        ]

    def run_order(self, execution_id: str | None = None) -> list[str]:
        """The actions run, by name, in the order asked."""
        return [run.action.name for owner, run in self.runs if execution_id in (None, owner)]
