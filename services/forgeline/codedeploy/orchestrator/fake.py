"""An in-memory world that performs a deployment's effects: fake agents, a fake clock.

`InMemoryDeploymentWorld` holds one deployment's state and drives the machine the way a
driver would, with no database and no processes: it queues the commands the machine sends,
has a fake agent take up and answer each one (one clock step apiece, in the order sent),
performs server steps, and when nothing is left to answer moves its clock to the next timer
and ticks. Agents succeed unless told to fail an event, hang on one (take it up and never
finish) or fall silent (never take up another command). After every transition the state
goes through its JSON document and the world carries on from the decoded copy, as a
driver that stores it in a row would.

    world = InMemoryDeploymentWorld(new_deployment("d-EXAMPLE01", name, ONE_AT_A_TIME))
    world.start("host-a", "host-b")
    world.fail("host-b", "ValidateService")
    world.run()
    world.state.status  # "Failed"
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from forgeline.codedeploy.orchestrator.effects import (
    CancelCommands,
    DeploymentChanged,
    Effect,
    Finished,
    InstanceChanged,
    InvokeHook,
    RetireInstances,
    RunServerStep,
    SendCommand,
    SetTimer,
    ShiftTraffic,
    StartRollback,
)
from forgeline.codedeploy.orchestrator.events import (
    CommandAcknowledged,
    CommandFailed,
    CommandSucceeded,
    Event,
    HookInvocationFailed,
    HookReported,
    InstanceSpec,
    ServerStepDone,
    ServerStepFailed,
    Start,
    Tick,
    TrafficShifted,
)
from forgeline.codedeploy.orchestrator.machine import Transition, advance
from forgeline.codedeploy.orchestrator.state import (
    FAILED,
    IN_PROGRESS,
    READY,
    SKIPPED,
    SUCCEEDED,
    DeploymentState,
    Diagnostics,
)

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

SCRIPT_FAILED = "ScriptFailed"


@dataclass(frozen=True)
class _Work:
    """A command, server step, hook or traffic shift the world still has to answer."""

    instance_id: str
    lifecycle_event: str
    server: bool
    hook: InvokeHook | None = None
    shift: ShiftTraffic | None = None


class InMemoryDeploymentWorld:
    def __init__(
        self,
        state: DeploymentState,
        *,
        now: datetime = EPOCH,
        step: timedelta = timedelta(seconds=1),
    ) -> None:
        self.state = state
        self.now = now
        self.step = step
        self.transitions: list[tuple[Event, Transition]] = []
        self.effects: list[Effect] = []
        self.commands: list[tuple[str, str]] = []  # (instance, event) as sent
        self.server_steps: list[tuple[str, str]] = []
        self.cancelled: list[str] = []
        self.timers: dict[str, datetime] = {}
        self.deployment_statuses: list[str] = []
        self.instance_statuses: list[tuple[str, str]] = []
        self.rollbacks: list[str] = []
        self.retired: list[str] = []
        self.finished: Finished | None = None
        self.start_order: list[str] = []
        self.peak_in_flight = 0
        self._in_flight: set[str] = set()
        self._queue: deque[_Work] = deque()
        self._failures: dict[tuple[str, str], Diagnostics] = {}
        self._server_failures: dict[tuple[str, str], str] = {}
        self._hangs: set[tuple[str, str]] = set()
        self._silent: set[str] = set()
        # Lambda / ECS: hooks invoked and traffic shares applied, with the world's time.
        self.hooks: list[InvokeHook] = []
        self.shifts: list[tuple[datetime, int]] = []
        self._hook_verdicts: dict[str, bool | None] = {}  # event -> False: Failed, None: hangs
        self._unreachable_hooks: set[str] = set()
        self._shift_failures: dict[int, str] = {}

    # ------------------------------------------------------------ scripting the agents

    def fail(self, instance_id: str, event: str, diagnostics: Diagnostics | None = None) -> None:
        """The agent on ``instance_id`` reports ``event`` Failed."""
        self._failures[(instance_id, event)] = diagnostics or Diagnostics(
            SCRIPT_FAILED,
            script_name=f"scripts/{event}.sh",
            message=f"Script at specified location: scripts/{event}.sh failed with exit code 1",
            log_tail="[stderr]boom",
        )

    def fail_server_step(self, instance_id: str, event: str, message: str) -> None:
        self._server_failures[(instance_id, event)] = message

    def hang(self, instance_id: str, event: str) -> None:
        """The agent takes up ``event`` and never reports its end (killed mid-command)."""
        self._hangs.add((instance_id, event))

    def silence(self, instance_id: str) -> None:
        """The agent on ``instance_id`` takes up no further command (stopped, unreachable)."""
        self._silent.add(instance_id)

    def fail_hook(self, event: str) -> None:
        """The hook function of ``event`` reports Failed."""
        self._hook_verdicts[event] = False

    def silence_hook(self, event: str) -> None:
        """The hook function of ``event`` takes its payload and never reports."""
        self._hook_verdicts[event] = None

    def unreachable_hook(self, event: str) -> None:
        """The hook function of ``event`` cannot be invoked."""
        self._unreachable_hooks.add(event)

    def fail_shift(self, weight: int, message: str) -> None:
        """Shifting the replacement's share to ``weight`` fails."""
        self._shift_failures[weight] = message

    # ------------------------------------------------------------ driving

    def start(self, *instances: str | InstanceSpec) -> Transition:
        specs = tuple(
            spec if isinstance(spec, InstanceSpec) else InstanceSpec(spec) for spec in instances
        )
        return self.apply(Start(specs))

    def apply(self, event: Event) -> Transition:
        """Feed one event at the world's time, keep the state through its JSON document,
        and take on the effects."""
        transition = advance(self.state, event, self.now)
        document = json.loads(json.dumps(transition.state.to_document()))
        decoded = DeploymentState.from_document(document)
        if decoded != transition.state:
            raise AssertionError(f"the state does not survive its JSON document after {event}")
        self.state = decoded
        self.transitions.append((event, transition))
        for effect in transition.effects:
            self._take(effect)
        return transition

    def run(self, until: Callable[[InMemoryDeploymentWorld], bool] | None = None) -> None:
        """Answer work and fire timers until nothing is left (or ``until`` holds)."""
        for _ in range(100_000):
            if self.state.finished or (until is not None and until(self)):
                return
            if self._queue:
                self._answer(self._queue.popleft())
            elif self.timers:
                name, at = min(self.timers.items(), key=lambda item: item[1])
                del self.timers[name]
                self.now = max(self.now, at)
                self.apply(Tick())
            else:
                return
        raise AssertionError("the deployment did not settle")

    def advance_clock(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    # ------------------------------------------------------------ what the world does

    def _answer(self, work: _Work) -> None:
        key = (work.instance_id, work.lifecycle_event)
        self.now += self.step
        if work.hook is not None:
            self._answer_hook(work.hook)
            return
        if work.shift is not None:
            failure = self._shift_failures.get(work.shift.weight)
            if failure is None:
                self.shifts.append((self.now, work.shift.weight))
                self.apply(TrafficShifted(work.shift.weight))
            else:
                self.apply(ServerStepFailed(work.instance_id, work.lifecycle_event, failure))
            return
        if work.server:
            failure = self._server_failures.get(key)
            if failure is None:
                self.apply(ServerStepDone(*key))
            else:
                self.apply(ServerStepFailed(*key, failure))
            return
        if work.instance_id in self._silent:
            return  # never taken up: the pickup timer will fire
        self.apply(CommandAcknowledged(*key))
        if key in self._hangs:
            return  # taken up, never finished: the run timer will fire
        self.now += self.step
        diagnostics = self._failures.get(key)
        if diagnostics is None:
            self.apply(CommandSucceeded(*key))
        else:
            self.apply(CommandFailed(*key, diagnostics))

    def _answer_hook(self, hook: InvokeHook) -> None:
        if hook.lifecycle_event in self._unreachable_hooks:
            self.apply(
                HookInvocationFailed(hook.lifecycle_event, f"{hook.function_name} is unreachable")
            )
            return
        verdict = self._hook_verdicts.get(hook.lifecycle_event, True)
        if verdict is not None:
            self.apply(HookReported(hook.hook_execution_id, verdict))

    def _target_id(self) -> str:
        return self.state.instances[0].instance_id if self.state.instances else ""

    def _take(self, effect: Effect) -> None:
        self.effects.append(effect)
        if isinstance(effect, SendCommand):
            self.commands.append((effect.instance_id, effect.lifecycle_event))
            self._queue.append(_Work(effect.instance_id, effect.lifecycle_event, server=False))
        elif isinstance(effect, RunServerStep):
            self.server_steps.append((effect.instance_id, effect.lifecycle_event))
            self._queue.append(_Work(effect.instance_id, effect.lifecycle_event, server=True))
        elif isinstance(effect, CancelCommands):
            self.cancelled.append(effect.instance_id)
            kept = [work for work in self._queue if work.instance_id != effect.instance_id]
            self._queue = deque(kept)
        elif isinstance(effect, SetTimer):
            self.timers[effect.name] = effect.at
        elif isinstance(effect, InstanceChanged):
            self._track_instance(effect.instance_id, effect.status)
        elif isinstance(effect, DeploymentChanged):
            self.deployment_statuses.append(effect.status)
        elif isinstance(effect, Finished):
            self.finished = effect
        elif isinstance(effect, StartRollback):
            self.rollbacks.append(effect.reason)
        elif isinstance(effect, RetireInstances):
            self.retired.extend(effect.instance_ids)
        elif isinstance(effect, InvokeHook):
            self.hooks.append(effect)
            target = self._target_id()
            self._queue.append(_Work(target, effect.lifecycle_event, server=False, hook=effect))
        elif isinstance(effect, ShiftTraffic):
            self._queue.append(_Work(self._target_id(), "AllowTraffic", server=True, shift=effect))

    def _track_instance(self, instance_id: str, status: str) -> None:
        self.instance_statuses.append((instance_id, status))
        if status == IN_PROGRESS:
            self.start_order.append(instance_id)
            self._in_flight.add(instance_id)
            self.peak_in_flight = max(self.peak_in_flight, len(self._in_flight))
        elif status in (SUCCEEDED, FAILED, SKIPPED, READY):
            self._in_flight.discard(instance_id)

    # ------------------------------------------------------------ reading the result

    def statuses(self) -> dict[str, str]:
        return {instance.instance_id: instance.status for instance in self.state.instances}

    def events_of(self, instance_id: str) -> list[tuple[str, str]]:
        instance = self.state.instance(instance_id)
        assert instance is not None, instance_id
        return [(event.name, event.status) for event in instance.events]

    def commands_for(self, instance_id: str) -> list[str]:
        return [event for instance, event in self.commands if instance == instance_id]
