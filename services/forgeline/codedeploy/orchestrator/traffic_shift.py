"""The Lambda and ECS deployment: validation hooks around a timed traffic shift (pure).

A Lambda or ECS deployment has one target (the function's alias, the ECS service) and runs
its platform's events strictly in order (lifecycle.py):

- the server's own steps (Start, Install, AllowTestTraffic, End) go out as RunServerStep
  and end with ServerStepDone / ServerStepFailed;
- a hook event whose AppSpec names a function goes out as InvokeHook with an execution id
  and waits for the function's verdict (HookReported, from
  PutLifecycleEventHookExecutionStatus) for the hook timeout; a hook the AppSpec does not
  name is Skipped;
- AllowTraffic follows the deployment configuration's schedule (traffic_shifting.py): each
  step goes out as ShiftTraffic; once the shift is applied (TrafficShifted) a timer waits
  for the next step, and the event Succeeds when the replacement has all the traffic.

Any failure (a hook reporting Failed, timing out or unreachable; a server step or a shift
that failed) fails the deployment, and a rollback is asked for as the options say. A stop
or an alarm stops it where it stands. The traffic stays where it was: moving it back is
the rollback deployment's work (AWS leaves a stopped deployment without rollback on a
split alias too). A rollback deployment runs Start, AllowTraffic (all traffic back to the
original at once) and End.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from forgeline.codedeploy import traffic_shifting
from forgeline.codedeploy.configs import TrafficRouting
from forgeline.codedeploy.orchestrator.effects import InvokeHook, RunServerStep, ShiftTraffic
from forgeline.codedeploy.orchestrator.events import InstanceSpec
from forgeline.codedeploy.orchestrator.lifecycle import (
    ALLOW_TRAFFIC,
    Performer,
    platform_step,
    platform_steps,
)
from forgeline.codedeploy.orchestrator.machine import Run, new_instance
from forgeline.codedeploy.orchestrator.options import DEPLOYMENT_FAILURE, ShiftOptions
from forgeline.codedeploy.orchestrator.state import (
    CAUSE_COMMAND,
    CAUSE_SERVER_STEP,
    CREATED,
    FAILED,
    IN_PROGRESS,
    QUEUED,
    SKIPPED,
    SUCCEEDED,
    DeploymentState,
    Diagnostics,
    ErrorInfo,
    InstanceState,
    LifecycleEventState,
    ShiftTarget,
)

HOOK_TIMER = "hook"
SHIFT_TIMER = "shift"

# ErrorCode values and the LifecycleErrorCode values a hook ends with.
HOOK_EXECUTION_FAILURE = "HOOK_EXECUTION_FAILURE"
_SHIFT_FAILURE_CODES = {"Lambda": "INVALID_LAMBDA_FUNCTION", "ECS": "ECS_UPDATE_ERROR"}
SCRIPT_FAILED = "ScriptFailed"
SCRIPT_TIMED_OUT = "ScriptTimedOut"
UNKNOWN_ERROR = "UnknownError"

_HOOK_IDS = uuid.UUID("6f1d3a52-0c7e-4b8e-9d51-2a4f7e0b9c13")


def hook_execution_id(deployment_id: str, nonce: str, lifecycle_event: str) -> str:
    """The LifecycleEventHookExecutionId of a deployment's hook: fixed by its deployment,
    nonce and event, so the machine stays pure; the nonce keeps it unguessable."""
    return str(uuid.uuid5(_HOOK_IDS, f"{deployment_id}:{nonce}:{lifecycle_event}"))


def hook_event(state: DeploymentState, execution_id: str) -> LifecycleEventState | None:
    """The hook event of a started Lambda or ECS deployment with this execution id."""
    if state.shift is None or not state.instances:
        return None
    for event in state.instances[0].events:
        step = platform_step(event.name)
        if step.performer is Performer.HOOK_FUNCTION and execution_id == hook_execution_id(
            state.deployment_id, state.shift.nonce, event.name
        ):
            return event
    return None


def schedule_of(options: ShiftOptions, *, rollback: bool) -> traffic_shifting.ShiftSchedule:
    """The shares the replacement gets, and when; a rollback gives it none, at once."""
    if rollback:
        return traffic_shifting.ShiftSchedule((traffic_shifting.ShiftStep(timedelta(0), 0),))
    routing = TrafficRouting(
        options.routing_type,  # type: ignore[arg-type]
        options.percentage,
        options.interval_minutes,
    )
    return traffic_shifting.build_schedule(routing, timedelta(seconds=options.minute_seconds))


class ShiftRun(Run):
    """One transition of a Lambda or ECS deployment."""

    @property
    def _options(self) -> ShiftOptions:
        shift = self.state.options.shift
        assert shift is not None
        return shift

    @property
    def _target(self) -> ShiftTarget:
        assert self.state.shift is not None
        return self.state.shift

    def _the_instance(self) -> InstanceState:
        return self.state.instances[0]

    # ------------------------------------------------------------ start

    def start(self, specs: tuple[InstanceSpec, ...], shift: ShiftTarget | None = None) -> None:
        if self.state.status not in (CREATED, QUEUED):
            return
        if shift is None or len(specs) != 1:
            self._fail_before_start(
                ErrorInfo("INTERNAL_ERROR", "A Lambda or ECS deployment needs one target.")
            )
            return
        steps = platform_steps(shift.platform, rollback=self.state.is_rollback)
        instance = new_instance(specs[0], steps)
        self.state = replace(self.state, start_time=self.now, instances=(instance,), shift=shift)
        self._set_status(IN_PROGRESS)
        self._set_instance_status(instance.instance_id, IN_PROGRESS)
        self._drive(instance.instance_id)

    # ------------------------------------------------------------ the target's events

    def _drive(self, instance_id: str) -> None:
        while True:
            instance = self._instance(instance_id)
            index = instance.current_index
            if index is None:
                self._set_instance_status(instance_id, SUCCEEDED)
                self._finish(SUCCEEDED, None)
                return
            event = instance.events[index]
            step = platform_step(event.name)
            started = replace(event, status=IN_PROGRESS, start_time=self.now)
            if step.performer is Performer.HOOK_FUNCTION:
                function = self._target.hook_function(event.name)
                if function is None or not self.state.options.run_hooks:
                    self._put_event(instance_id, index, replace(event, status=SKIPPED))
                    continue
                self._put_event(instance_id, index, started)
                self.effects.append(InvokeHook(event.name, function, self._hook_id(event.name)))
                self._set_named_timer(
                    HOOK_TIMER, timedelta(seconds=self._options.hook_timeout_seconds)
                )
                return
            self._put_event(instance_id, index, started)
            if event.name == ALLOW_TRAFFIC:
                self._begin_shift()
            else:
                self.effects.append(RunServerStep(instance_id, event.name))
            return

    def _hook_id(self, lifecycle_event: str) -> str:
        return hook_execution_id(self.state.deployment_id, self._target.nonce, lifecycle_event)

    def _current(self, performer: Performer, name: str | None = None) -> int | None:
        """The index of the event the target runs now, if it is `performer`'s (and named
        `name`); None when the event that would answer no longer applies."""
        if self.state.finished or not self.state.instances:
            return None
        instance = self._the_instance()
        index = instance.current_index
        if instance.status != IN_PROGRESS or index is None:
            return None
        event = instance.events[index]
        if event.status != IN_PROGRESS or platform_step(event.name).performer is not performer:
            return None
        if name is not None and event.name != name:
            return None
        return index

    # ------------------------------------------------------------ hooks

    def hook_reported(self, hook_execution_id: str, succeeded: bool) -> None:
        index = self._current(Performer.HOOK_FUNCTION)
        if index is None:
            return
        event = self._the_instance().events[index]
        if self._hook_id(event.name) != hook_execution_id:
            return
        self._clear_named_timer(HOOK_TIMER)
        if succeeded:
            self._event_succeeded(index)
            return
        function = self._target.hook_function(event.name)
        self._fail(
            index,
            Diagnostics(
                SCRIPT_FAILED,
                script_name=function or "",
                message=f"The {event.name} hook function {function} reported Failed.",
            ),
            ErrorInfo(
                HOOK_EXECUTION_FAILURE,
                f"The deployment failed because the {event.name} lifecycle event hook "
                f"function {function} reported Failed.",
            ),
        )

    def hook_invocation_failed(self, lifecycle_event: str, message: str) -> None:
        index = self._current(Performer.HOOK_FUNCTION, lifecycle_event)
        if index is None:
            return
        self._clear_named_timer(HOOK_TIMER)
        self._fail(
            index,
            Diagnostics(UNKNOWN_ERROR, message=message),
            ErrorInfo(
                HOOK_EXECUTION_FAILURE,
                f"The deployment failed because its {lifecycle_event} lifecycle event hook "
                f"function could not be invoked: {message}",
            ),
        )

    def _hook_timed_out(self) -> None:
        index = self._current(Performer.HOOK_FUNCTION)
        if index is None:
            return
        event = self._the_instance().events[index]
        function = self._target.hook_function(event.name)
        seconds = round(self._options.hook_timeout_seconds)
        self._fail(
            index,
            Diagnostics(
                SCRIPT_TIMED_OUT,
                script_name=function or "",
                message=f"The {event.name} hook function {function} reported no status "
                f"within {seconds} seconds.",
            ),
            ErrorInfo(
                HOOK_EXECUTION_FAILURE,
                f"The deployment failed because the {event.name} lifecycle event hook "
                f"function {function} did not report a status within {seconds} seconds.",
            ),
        )

    # ------------------------------------------------------------ server steps

    def server_step_ended(
        self, instance_id: str, lifecycle_event: str, failure: Diagnostics | None
    ) -> None:
        index = self._current(Performer.SERVER, lifecycle_event)
        if index is None or instance_id != self._the_instance().instance_id:
            return
        if failure is None:
            if lifecycle_event != ALLOW_TRAFFIC:  # AllowTraffic ends with its last shift
                self._event_succeeded(index)
            return
        self._clear_named_timer(SHIFT_TIMER)
        code = _SHIFT_FAILURE_CODES.get(self._target.platform, "INTERNAL_ERROR")
        self._fail(
            index,
            failure,
            ErrorInfo(code, f"The deployment failed during {lifecycle_event}: {failure.message}"),
            CAUSE_SERVER_STEP,
        )

    # ------------------------------------------------------------ the traffic shift

    def _schedule_steps(self) -> tuple[traffic_shifting.ShiftStep, ...]:
        return schedule_of(self._options, rollback=self.state.is_rollback).steps

    def _begin_shift(self) -> None:
        self.state = replace(self.state, shift=replace(self._target, shift_started=self.now))
        self.effects.append(ShiftTraffic(self._schedule_steps()[0].weight))

    def traffic_shifted(self, weight: int) -> None:
        index = self._current(Performer.SERVER, ALLOW_TRAFFIC)
        if index is None:
            return
        self.state = replace(self.state, shift=replace(self._target, weight=weight))
        upcoming = self._step_after(weight)
        if upcoming is None:
            self._event_succeeded(index)
            return
        started = self._target.shift_started
        assert started is not None
        # Timers count from the shift's start, so a late step does not delay the rest.
        self._set_named_timer(SHIFT_TIMER, max(started + upcoming.offset - self.now, timedelta(0)))

    def _step_after(self, weight: int) -> traffic_shifting.ShiftStep | None:
        steps = self._schedule_steps()
        for position, step in enumerate(steps):
            if step.weight == weight:
                return steps[position + 1] if position + 1 < len(steps) else None
        return None  # a weight the schedule does not have: the shift is over

    # ------------------------------------------------------------ timers and waits

    def tick(self) -> None:
        due = {timer.name for timer in self.state.timers if timer.at <= self.now}
        self.state = replace(
            self.state, timers=tuple(t for t in self.state.timers if t.name not in due)
        )
        if HOOK_TIMER in due:
            self._hook_timed_out()
        if SHIFT_TIMER in due and self._current(Performer.SERVER, ALLOW_TRAFFIC) is not None:
            upcoming = self._step_after(self._target.weight)
            if upcoming is not None:
                self.effects.append(ShiftTraffic(upcoming.weight))

    # ------------------------------------------------------------ outcomes

    def _event_succeeded(self, index: int) -> None:
        instance = self._the_instance()
        event = instance.events[index]
        self._put_event(instance.instance_id, index, event.ended(SUCCEEDED, self.now))
        self._drive(instance.instance_id)

    def _fail(
        self,
        index: int,
        diagnostics: Diagnostics,
        error: ErrorInfo,
        cause: str = CAUSE_COMMAND,  # a hook function is the deployment's own "script"
    ) -> None:
        instance = self._the_instance()
        event = instance.events[index]
        self._put_event(instance.instance_id, index, event.ended(FAILED, self.now, diagnostics))
        self._fail_instance(instance.instance_id, cause)
        self._finish(FAILED, error)
        self._maybe_roll_back(DEPLOYMENT_FAILURE)
