"""The in-place Server deployment as a pure state machine.

``advance(state, event, now) -> Transition(state, effects)``: no I/O, no clock but ``now``.

- `Start` fixes the fleet and its healthy minimum (rollout.py), orders the instances by
  health class and fails the deployment at once with NO_INSTANCES or
  HEALTH_CONSTRAINTS_INVALID; otherwise it starts as many instances as the minimum allows.
- An instance runs its lifecycle events strictly in order, one at a time: a command for the
  agent (SendCommand) or a step of the server's own (RunServerStep). The events that run
  the previous revision's scripts are Skipped where no revision succeeded before, and their
  failure is passed over with ignoreApplicationStopFailures. A failed event skips the rest
  and fails the instance. An agent that does not take up a command within the pickup
  timeout, or does not finish one it took within the run timeout, fails the instance.
- Whenever an instance ends, the rollout plan decides: start more, succeed, or fail with
  HEALTH_CONSTRAINTS (the instances not yet started are Skipped).
- A stop request (MANUAL_STOP) or an alarm (ALARM_ACTIVE) stops the deployment: running
  instances have their commands cancelled and end Failed, the rest are Skipped.
- Automatic rollback is asked for (StartRollback) on a failure, a stop with rollback, or an
  alarm, as the options say; a rollback deployment never asks for another. A deployment
  that fails before touching any instance has nothing to roll back.
- Once Succeeded, Failed or Stopped, every event is accepted and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from forgeline.codedeploy.orchestrator import messages
from forgeline.codedeploy.orchestrator.effects import (
    CancelCommands,
    DeploymentChanged,
    Effect,
    Finished,
    InstanceChanged,
    RunServerStep,
    SendCommand,
    SetTimer,
    StartRollback,
)
from forgeline.codedeploy.orchestrator.events import (
    AgentTimedOut,
    AlarmPollFailed,
    AlarmTripped,
    CommandAcknowledged,
    CommandFailed,
    CommandSucceeded,
    ContinueRequested,
    Enqueued,
    Event,
    HookInvocationFailed,
    HookReported,
    InstanceSpec,
    Refused,
    ServerStepDone,
    ServerStepFailed,
    Start,
    StopRequested,
    Tick,
    TrafficShifted,
)
from forgeline.codedeploy.orchestrator.lifecycle import (
    LifecycleStep,
    Performer,
    in_place_step,
    in_place_steps,
)
from forgeline.codedeploy.orchestrator.options import (
    BLUE_GREEN,
    DEPLOYMENT_FAILURE,
    DEPLOYMENT_STOP_ON_ALARM,
    DEPLOYMENT_STOP_ON_REQUEST,
    IN_PLACE,
)
from forgeline.codedeploy.orchestrator.rollout import (
    Outcome,
    Progress,
    RolloutPlan,
    deployment_order,
)
from forgeline.codedeploy.orchestrator.state import (
    CAUSE_AGENT_SILENT,
    CAUSE_COMMAND,
    CAUSE_SERVER_STEP,
    CAUSE_STOPPED,
    CREATED,
    FAILED,
    IN_PROGRESS,
    PENDING,
    QUEUED,
    SKIPPED,
    STOPPED,
    SUCCEEDED,
    DeploymentState,
    Diagnostics,
    ErrorInfo,
    InstanceState,
    LifecycleEventState,
    ShiftTarget,
    Timer,
)

_AGENT_TIMER = "agent:"


@dataclass(frozen=True)
class Transition:
    state: DeploymentState
    effects: tuple[Effect, ...] = ()


def advance(state: DeploymentState, event: Event, now: datetime) -> Transition:
    """The deployment after ``event`` at ``now``, and what the driver must do about it."""
    if state.finished:
        return Transition(state)
    run = _run_class(state)(state, now)
    if isinstance(event, Enqueued):
        run.enqueue()
    elif isinstance(event, Start):
        run.start(event.instances, event.shift)
    elif isinstance(event, Refused):
        run.refuse(event.error)
    elif isinstance(event, CommandAcknowledged):
        run.acknowledge(event.instance_id, event.lifecycle_event)
    elif isinstance(event, CommandSucceeded):
        run.command_ended(event.instance_id, event.lifecycle_event, None)
    elif isinstance(event, CommandFailed):
        run.command_ended(event.instance_id, event.lifecycle_event, event.diagnostics)
    elif isinstance(event, ServerStepDone):
        run.server_step_ended(event.instance_id, event.lifecycle_event, None)
    elif isinstance(event, ServerStepFailed):
        failure = messages.server_step_failed(event.message)
        run.server_step_ended(event.instance_id, event.lifecycle_event, failure)
    elif isinstance(event, AgentTimedOut):
        run.agent_timed_out(event.instance_id)
    elif isinstance(event, Tick):
        run.tick()
    elif isinstance(event, StopRequested):
        run.stop_requested(event.auto_rollback)
    elif isinstance(event, AlarmTripped):
        run.alarm_tripped(event.alarm_names)
    elif isinstance(event, AlarmPollFailed):
        run.alarm_poll_failed(event.message)
    elif isinstance(event, ContinueRequested):
        run.continue_requested(event.wait_type)
    elif isinstance(event, HookReported):
        run.hook_reported(event.hook_execution_id, event.succeeded)
    elif isinstance(event, HookInvocationFailed):
        run.hook_invocation_failed(event.lifecycle_event, event.message)
    elif isinstance(event, TrafficShifted):
        run.traffic_shifted(event.weight)
    return Transition(run.state, tuple(run.effects))


def _run_class(state: DeploymentState) -> type[Run]:
    # Imported here: these runs build on this module's Run.
    if state.options.shift is not None:
        from forgeline.codedeploy.orchestrator.traffic_shift import ShiftRun

        return ShiftRun
    if state.options.deployment_type == BLUE_GREEN:
        from forgeline.codedeploy.orchestrator.blue_green import BlueGreenRun

        return BlueGreenRun
    return Run


class Run:
    """One transition in the making: the state so far and the effects it owes."""

    def __init__(self, state: DeploymentState, now: datetime) -> None:
        self.state = state
        self.now = now
        self.effects: list[Effect] = []

    # ------------------------------------------------------------ deployment status

    def enqueue(self) -> None:
        if self.state.status == CREATED:
            self._set_status(QUEUED)

    def start(self, specs: tuple[InstanceSpec, ...], shift: ShiftTarget | None = None) -> None:
        if self.state.status not in (CREATED, QUEUED):
            return  # a repeated Start
        options = self.state.options
        ordered = ordered_once(specs)
        steps = in_place_steps(with_traffic_control=options.traffic_control)
        plan = RolloutPlan.for_fleet(self.state.minimum_healthy_hosts, len(ordered))
        self.state = replace(
            self.state,
            plan=plan,
            start_time=self.now,
            instances=tuple(new_instance(spec, steps) for spec in ordered),
        )
        if options.deployment_type != IN_PLACE:
            self._fail_before_start(messages.unsupported_error(options.deployment_type))
            return
        problem = plan.start_problem()
        if problem is not None:
            self._fail_before_start(messages.error(problem))
            return
        self._set_status(IN_PROGRESS)
        self._schedule()

    def refuse(self, error: ErrorInfo) -> None:
        if self.state.status in (CREATED, QUEUED):
            self.state = replace(self.state, start_time=self.now)
            self._fail_before_start(error)

    def _fail_before_start(self, error: ErrorInfo) -> None:
        for instance in self.state.instances:
            self._skip_instance(instance.instance_id)
        self._finish(FAILED, error)

    def _schedule(self) -> None:
        """Start what the healthy minimum allows, or end the deployment."""
        plan = self.state.plan
        assert plan is not None
        while True:
            verdict = plan.judge(self._progress())
            if verdict.outcome is Outcome.SUCCEEDED:
                self._finish(SUCCEEDED, None)
                return
            if verdict.outcome is Outcome.FAILED:
                for instance in self.state.instances:
                    if instance.status == PENDING:
                        self._skip_instance(instance.instance_id)
                self._finish(FAILED, messages.error(messages.HEALTH_CONSTRAINTS))
                self._maybe_roll_back(DEPLOYMENT_FAILURE)
                return
            if verdict.startable == 0:
                return
            next_id = next(i.instance_id for i in self.state.instances if i.status == PENDING)
            self._set_instance_status(next_id, IN_PROGRESS)
            self._drive(next_id)

    def _progress(self) -> Progress:
        statuses = [instance.status for instance in self.state.instances]
        return Progress(
            pending=statuses.count(PENDING),
            in_flight=statuses.count(IN_PROGRESS),
            succeeded=statuses.count(SUCCEEDED),
            failed=statuses.count(FAILED),
        )

    def _finish(self, status: str, error: ErrorInfo | None) -> None:
        self.state = replace(self.state, error=error, complete_time=self.now, timers=())
        self._set_status(status)
        self.effects.append(Finished(status, error))

    def _maybe_roll_back(self, reason: str) -> None:
        if self.state.is_rollback:
            return  # AWS never rolls back a rollback
        if not any(i.status in (SUCCEEDED, FAILED) for i in self.state.instances):
            return  # no instance was touched: there is nothing to roll back
        wanted = reason == DEPLOYMENT_STOP_ON_REQUEST or self.state.options.rolls_back_on(reason)
        if wanted:
            self.state = replace(self.state, rollback_reason=reason)
            self.effects.append(StartRollback(reason))

    def _set_status(self, status: str) -> None:
        if self.state.status != status:
            self.state = replace(self.state, status=status)
            self.effects.append(DeploymentChanged(status))

    # ------------------------------------------------------------ one instance's events

    def _drive(self, instance_id: str) -> None:
        """Dispatch the instance's next event, skipping those with nothing to run."""
        while True:
            instance = self._instance(instance_id)
            index = instance.current_index
            if index is None:
                self._set_instance_status(instance_id, SUCCEEDED)
                return
            event = instance.events[index]
            step = in_place_step(event.name)
            no_scripts = step.uses_previous_revision and not instance.has_previous_revision
            no_hooks = step.performer is Performer.AGENT and not self.state.options.run_hooks
            if no_scripts or no_hooks:
                self._put_event(instance_id, index, replace(event, status=SKIPPED))
                continue
            if step.performer is Performer.SERVER:
                started = replace(event, status=IN_PROGRESS, start_time=self.now)
                self._put_event(instance_id, index, started)
                self.effects.append(RunServerStep(instance_id, event.name))
                return
            self.effects.append(SendCommand(instance_id, event.name))
            self._set_timer(instance_id, self.state.options.agent_pickup_timeout_seconds)
            return

    def _waiting_on(self, instance_id: str, performer: Performer) -> tuple[int, LifecycleStep]:
        """The index and step of the event the instance waits on from ``performer``
        (LookupError when it waits on nothing from it: the event no longer applies)."""
        instance = self.state.instance(instance_id)
        if instance is None or instance.status != IN_PROGRESS:
            raise LookupError(instance_id)
        index = instance.current_index
        if index is None:
            raise LookupError(instance_id)
        step = in_place_step(instance.events[index].name)
        if step.performer is not performer:
            raise LookupError(instance_id)
        return index, step

    def acknowledge(self, instance_id: str, lifecycle_event: str) -> None:
        try:
            index, step = self._waiting_on(instance_id, Performer.AGENT)
        except LookupError:
            return
        event = self._instance(instance_id).events[index]
        if step.name != lifecycle_event or event.status != PENDING:
            return  # a late or repeated acknowledgement
        self._put_event(instance_id, index, replace(event, status=IN_PROGRESS, start_time=self.now))
        self._set_timer(instance_id, self.state.options.event_run_timeout_seconds)

    def command_ended(
        self, instance_id: str, lifecycle_event: str, failure: Diagnostics | None
    ) -> None:
        try:
            index, step = self._waiting_on(instance_id, Performer.AGENT)
        except LookupError:
            return
        if step.name != lifecycle_event:
            return  # the result of a command this instance no longer waits on
        self._clear_timer(instance_id)
        self._event_ended(instance_id, index, step, failure, CAUSE_COMMAND)

    def server_step_ended(
        self, instance_id: str, lifecycle_event: str, failure: Diagnostics | None
    ) -> None:
        try:
            index, step = self._waiting_on(instance_id, Performer.SERVER)
        except LookupError:
            return
        if step.name != lifecycle_event:
            return
        self._event_ended(instance_id, index, step, failure, CAUSE_SERVER_STEP)

    def _event_ended(
        self,
        instance_id: str,
        index: int,
        step: LifecycleStep,
        failure: Diagnostics | None,
        cause: str,
    ) -> None:
        event = self._instance(instance_id).events[index]
        ignored = (
            step.uses_previous_revision and self.state.options.ignore_application_stop_failures
        )
        if failure is None:
            self._put_event(instance_id, index, event.ended(SUCCEEDED, self.now))
        else:
            # An ignored failure stays on record and the instance goes on.
            self._put_event(instance_id, index, event.ended(FAILED, self.now, failure))
            if not ignored:
                self._fail_instance(instance_id, cause)
                self._schedule()
                return
        self._drive(instance_id)
        if self._instance(instance_id).status != IN_PROGRESS:
            self._schedule()

    def agent_timed_out(self, instance_id: str) -> None:
        try:
            index, _ = self._waiting_on(instance_id, Performer.AGENT)
        except LookupError:
            return
        event = self._instance(instance_id).events[index]
        options = self.state.options
        diagnostics = (
            messages.AGENT_NEVER_TOOK_UP
            if event.status == PENDING
            else messages.agent_went_silent(options.event_run_timeout_seconds)
        )
        self._clear_timer(instance_id)
        self.effects.append(CancelCommands(instance_id))
        self._put_event(instance_id, index, event.ended(FAILED, self.now, diagnostics))
        self._fail_instance(instance_id, CAUSE_AGENT_SILENT)
        self._schedule()

    def continue_requested(self, wait_type: str) -> None:
        """ContinueDeployment: an in-place deployment never waits (the API refuses it)."""

    # Hook functions and traffic shifts belong to Lambda and ECS deployments
    # (traffic_shift.py); a Server deployment has none to hear from.
    def hook_reported(self, hook_execution_id: str, succeeded: bool) -> None:
        """PutLifecycleEventHookExecutionStatus reached a deployment with no hooks."""

    def hook_invocation_failed(self, lifecycle_event: str, message: str) -> None:
        """A hook that a Server deployment never invoked."""

    def traffic_shifted(self, weight: int) -> None:
        """A shift that a Server deployment never asked for."""

    def tick(self) -> None:
        due = [timer for timer in self.state.timers if timer.at <= self.now]
        for timer in due:
            if timer.name.startswith(_AGENT_TIMER) and not self.state.finished:
                self.agent_timed_out(timer.name[len(_AGENT_TIMER) :])
        remaining = tuple(timer for timer in self.state.timers if timer not in due)
        self.state = replace(self.state, timers=remaining)

    # ------------------------------------------------------------ stops

    def stop_requested(self, auto_rollback: bool) -> None:
        self._halt(messages.error(messages.MANUAL_STOP))
        if auto_rollback:
            self._maybe_roll_back(DEPLOYMENT_STOP_ON_REQUEST)

    def alarm_tripped(self, alarm_names: tuple[str, ...]) -> None:
        options = self.state.options
        if not options.alarms_enabled:
            return
        watched = [n for n in alarm_names if not options.alarm_names or n in options.alarm_names]
        if not watched:
            return
        self._halt(messages.alarm_error(watched))
        self._maybe_roll_back(DEPLOYMENT_STOP_ON_ALARM)

    def alarm_poll_failed(self, reason: str) -> None:
        options = self.state.options
        if not options.alarms_enabled or options.ignore_poll_alarm_failure:
            return
        self._halt(messages.alarm_poll_error(reason))
        self._maybe_roll_back(DEPLOYMENT_STOP_ON_ALARM)

    def _halt(self, error: ErrorInfo) -> None:
        """Stop the deployment where it stands."""
        for instance in self.state.instances:
            if instance.status == IN_PROGRESS:
                self.effects.append(CancelCommands(instance.instance_id))
                index = instance.current_index
                if index is not None:
                    event = instance.events[index]
                    ended = event.ended(FAILED, self.now, messages.STOPPED_WHILE_RUNNING)
                    self._put_event(instance.instance_id, index, ended)
                self._fail_instance(instance.instance_id, CAUSE_STOPPED)
            elif instance.status == PENDING:
                self._skip_instance(instance.instance_id)
        self._finish(STOPPED, error)

    # ------------------------------------------------------------ small state edits

    def _instance(self, instance_id: str) -> InstanceState:
        instance = self.state.instance(instance_id)
        assert instance is not None, instance_id
        return instance

    def _replace_instance(self, updated: InstanceState) -> None:
        instances = tuple(
            updated if instance.instance_id == updated.instance_id else instance
            for instance in self.state.instances
        )
        self.state = replace(self.state, instances=instances)

    def _put_event(self, instance_id: str, index: int, event: LifecycleEventState) -> None:
        self._replace_instance(self._instance(instance_id).with_event(index, event, self.now))

    def _set_instance_status(self, instance_id: str, status: str, cause: str | None = None) -> None:
        instance = self._instance(instance_id)
        updated = replace(instance, status=status, last_updated_at=self.now, failure_cause=cause)
        self._replace_instance(updated)
        self.effects.append(InstanceChanged(instance_id, status))

    def _fail_instance(self, instance_id: str, cause: str) -> None:
        """Fail the instance: the events it did not reach are Skipped."""
        instance = self._instance(instance_id)
        events = tuple(
            replace(event, status=SKIPPED) if event.open else event for event in instance.events
        )
        self._replace_instance(replace(instance, events=events))
        self._clear_timer(instance_id)
        self._set_instance_status(instance_id, FAILED, cause)

    def _skip_instance(self, instance_id: str) -> None:
        instance = self._instance(instance_id)
        events = tuple(replace(event, status=SKIPPED) for event in instance.events)
        self._replace_instance(replace(instance, events=events))
        self._set_instance_status(instance_id, SKIPPED)

    def _set_timer(self, instance_id: str, seconds: int) -> None:
        self._set_named_timer(_AGENT_TIMER + instance_id, timedelta(seconds=seconds))

    def _clear_timer(self, instance_id: str) -> None:
        self._clear_named_timer(_AGENT_TIMER + instance_id)

    def _set_named_timer(self, name: str, after: timedelta) -> None:
        timer = Timer(name, self.now + after)
        others = tuple(t for t in self.state.timers if t.name != name)
        self.state = replace(self.state, timers=(*others, timer))
        self.effects.append(SetTimer(timer.name, timer.at))

    def _clear_named_timer(self, name: str) -> None:
        self.state = replace(
            self.state, timers=tuple(t for t in self.state.timers if t.name != name)
        )


def ordered_once(specs: tuple[InstanceSpec, ...]) -> list[InstanceSpec]:
    """The instances in deployment order (by health class), each once: an instance named
    twice runs once."""
    unique: dict[str, InstanceSpec] = {}
    for spec in specs:
        unique.setdefault(spec.instance_id, spec)
    return deployment_order(unique.values(), lambda spec: spec.health)


def new_instance(spec: InstanceSpec, steps: tuple[LifecycleStep, ...]) -> InstanceState:
    return InstanceState(
        instance_id=spec.instance_id,
        health=spec.health,
        has_previous_revision=spec.has_previous_revision,
        label=spec.label,
        events=tuple(LifecycleEventState(step.name) for step in steps),
    )
