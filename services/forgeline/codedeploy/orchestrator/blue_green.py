"""The blue/green Server deployment: the in-place machine's rules, in four phases.

The original instances are Blue, the replacement ones (discovered by tags) Green.

1. INSTALL: the revision goes to Green in batches that keep the deployment configuration's
   minimum healthy (over Green), each instance running ApplicationStop through
   ValidateService and stopping there, Ready. A failure that breaks the minimum fails the
   deployment; traffic never left Blue.
2. READY: with deploymentReadyOption STOP_DEPLOYMENT the deployment waits, Ready, for
   ContinueDeployment (READY_WAIT) and fails when waitTimeInMinutes run out; with
   CONTINUE_DEPLOYMENT it goes straight on.
3. REROUTE, then BLOCK: every Green instance runs BeforeAllowTraffic, AllowTraffic and
   AfterAllowTraffic; once all have, every Blue one runs BeforeBlockTraffic, BlockTraffic
   (with its drain) and AfterBlockTraffic. A failure here fails the deployment, and (as the
   options say) asks for a rollback, which lets traffic back to Blue and blocks it from Green.
4. TERMINATING: TERMINATE retires Blue after terminationWaitTimeInMinutes, or at once on
   ContinueDeployment (TERMINATION_WAIT) / SkipWaitTimeForInstanceTermination; then the
   deployment Succeeds. KEEP_ALIVE Succeeds once Blue is blocked and keeps it.

A rollback deployment of a blue/green one (`is_rollback`) runs the way back: AllowTraffic
on Blue, then BlockTraffic on Green.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from forgeline.codedeploy.orchestrator import messages
from forgeline.codedeploy.orchestrator.effects import RetireInstances
from forgeline.codedeploy.orchestrator.events import InstanceSpec
from forgeline.codedeploy.orchestrator.lifecycle import (
    BEFORE_ALLOW_TRAFFIC,
    BLUE,
    GREEN,
    READY_WAIT,
    TERMINATION_WAIT,
    TargetLabel,
    blue_green_steps,
)
from forgeline.codedeploy.orchestrator.machine import Run, new_instance, ordered_once
from forgeline.codedeploy.orchestrator.options import (
    DEPLOYMENT_FAILURE,
    STOP_DEPLOYMENT,
    TERMINATE,
)
from forgeline.codedeploy.orchestrator.rollout import (
    Outcome,
    Progress,
    RolloutPlan,
)
from forgeline.codedeploy.orchestrator.state import (
    CREATED,
    FAILED,
    IN_PROGRESS,
    PENDING,
    QUEUED,
    READY,
    SKIPPED,
    SUCCEEDED,
    ErrorInfo,
    InstanceState,
    ShiftTarget,
)

# DeploymentState.phase values.
INSTALL = "install"
WAITING_READY = "ready"
REROUTE = "reroute"
BLOCK = "block"
TERMINATING = "terminating"
# A rollback's two phases.
RESTORE_ALLOW = "restore-allow"
RESTORE_BLOCK = "restore-block"
# Phases in which traffic has (begun to) move to Green: a failure then is worth a rollback.
_TRAFFIC_MOVED = frozenset({REROUTE, BLOCK, TERMINATING})

READY_TIMER = "ready-wait"
TERMINATION_TIMER = "termination-wait"


class BlueGreenRun(Run):
    """One transition of a blue/green deployment."""

    # ------------------------------------------------------------ start

    def start(self, specs: tuple[InstanceSpec, ...], shift: ShiftTarget | None = None) -> None:
        if self.state.status not in (CREATED, QUEUED):
            return
        rollback = self.state.is_rollback
        ordered = ordered_once(specs)
        instances = tuple(
            replace(
                new_instance(spec, blue_green_steps(_label(spec), rollback=rollback)),
                label=_label(spec),
            )
            for spec in ordered
        )
        green = [i for i in instances if i.label == GREEN]
        plan = RolloutPlan.for_fleet(self.state.minimum_healthy_hosts, len(green))
        self.state = replace(self.state, plan=plan, start_time=self.now, instances=instances)
        if not green:
            self._fail_before_start(messages.error(messages.NO_INSTANCES))
            return
        if rollback:
            self._set_status(IN_PROGRESS)
            self._enter(RESTORE_ALLOW)
            return
        problem = plan.start_problem()
        if problem is not None:
            self._fail_before_start(messages.error(problem))
            return
        self._set_status(IN_PROGRESS)
        self._enter(INSTALL)

    # ------------------------------------------------------------ phases

    def _enter(self, phase: str) -> None:
        self.state = replace(self.state, phase=phase)
        if phase in (REROUTE, RESTORE_BLOCK):
            self._set_status(IN_PROGRESS)
            self._run_all(GREEN)
        elif phase in (BLOCK, RESTORE_ALLOW):
            self._run_all(BLUE)
        self._schedule()

    def _run_all(self, label: str) -> None:
        for instance in self._labelled(label):
            if instance.status in (PENDING, READY):
                self._set_instance_status(instance.instance_id, IN_PROGRESS)
                self._drive(instance.instance_id)

    def _labelled(self, label: str) -> list[InstanceState]:
        return [i for i in self.state.instances if i.label == label]

    def _schedule(self) -> None:
        phase = self.state.phase
        if self.state.finished:
            return
        if phase == INSTALL:
            self._schedule_install()
        elif phase in (REROUTE, BLOCK, RESTORE_ALLOW, RESTORE_BLOCK):
            self._settle(phase)

    def _schedule_install(self) -> None:
        plan = self.state.plan
        assert plan is not None
        while True:
            green = self._labelled(GREEN)
            statuses = [i.status for i in green]
            progress = Progress(
                pending=statuses.count(PENDING),
                in_flight=statuses.count(IN_PROGRESS),
                succeeded=statuses.count(READY),
                failed=statuses.count(FAILED),
            )
            verdict = plan.judge(progress)
            if verdict.outcome is Outcome.SUCCEEDED:
                self._installed()
                return
            if verdict.outcome is Outcome.FAILED:
                self._fail(messages.error(messages.HEALTH_CONSTRAINTS), DEPLOYMENT_FAILURE)
                return
            if verdict.startable == 0:
                return
            next_id = next(i.instance_id for i in green if i.status == PENDING)
            self._set_instance_status(next_id, IN_PROGRESS)
            self._drive(next_id)

    def _installed(self) -> None:
        """Every Green instance is Ready (or failed within the minimum)."""
        for instance in self._labelled(GREEN):
            if instance.status == PENDING:
                self._skip_rest(instance.instance_id)
        options = self.state.options.blue_green
        if options.ready_action == STOP_DEPLOYMENT:
            self.state = replace(self.state, phase=WAITING_READY)
            self._set_status(READY)
            self._set_named_timer(READY_TIMER, timedelta(minutes=options.ready_wait_minutes))
            return
        self._enter(REROUTE)

    def _settle(self, phase: str) -> None:
        """Move on once every instance of the phase's side ended; fail if one failed."""
        label = GREEN if phase in (REROUTE, RESTORE_BLOCK) else BLUE
        side = [i for i in self._labelled(label) if _took_part(i, phase)]
        if any(i.status in (IN_PROGRESS, PENDING) for i in side):
            return
        if any(i.status == FAILED for i in side):
            self._fail(messages.error(messages.HEALTH_CONSTRAINTS), DEPLOYMENT_FAILURE)
            return
        if phase == REROUTE:
            self._enter(BLOCK)
        elif phase == RESTORE_ALLOW:
            self._enter(RESTORE_BLOCK)
        elif phase == BLOCK:
            self._terminate_or_keep()
        else:
            self._finish(SUCCEEDED, None)

    def _terminate_or_keep(self) -> None:
        options = self.state.options.blue_green
        if options.terminate_action != TERMINATE:
            self._finish(SUCCEEDED, None)
            return
        self.state = replace(self.state, phase=TERMINATING)
        wait = timedelta(minutes=options.termination_wait_minutes)
        if wait <= timedelta(0):
            self._retire()
            return
        self._set_named_timer(TERMINATION_TIMER, wait)

    def _retire(self) -> None:
        blue = tuple(i.instance_id for i in self._labelled(BLUE) if i.status == SUCCEEDED)
        if blue:
            self.effects.append(RetireInstances(blue))
        self._finish(SUCCEEDED, None)

    # ------------------------------------------------------------ the gate before traffic

    def _drive(self, instance_id: str) -> None:
        instance = self._instance(instance_id)
        current = instance.current_event
        waiting = self.state.phase in (INSTALL, WAITING_READY)
        if instance.label == GREEN and waiting and current is not None:
            if current.name == BEFORE_ALLOW_TRAFFIC and current.status == PENDING:
                # Installed and validated: Ready for traffic, which waits for every Green.
                self._set_instance_status(instance_id, READY)
                return
        super()._drive(instance_id)

    # ------------------------------------------------------------ waits

    def continue_requested(self, wait_type: str) -> None:
        if wait_type == READY_WAIT and self.state.phase == WAITING_READY:
            self._clear_named_timer(READY_TIMER)
            self._enter(REROUTE)
        elif wait_type == TERMINATION_WAIT and self.state.phase == TERMINATING:
            self._clear_named_timer(TERMINATION_TIMER)
            self._retire()

    def tick(self) -> None:
        due = {timer.name for timer in self.state.timers if timer.at <= self.now}
        super().tick()
        if self.state.finished:
            return
        if READY_TIMER in due and self.state.phase == WAITING_READY:
            self._fail(messages.ready_wait_expired(), DEPLOYMENT_FAILURE)
        elif TERMINATION_TIMER in due and self.state.phase == TERMINATING:
            self._retire()

    # ------------------------------------------------------------ failure

    def _fail(self, error: ErrorInfo, reason: str) -> None:
        for instance in self.state.instances:
            if instance.status in (PENDING, READY):
                self._skip_rest(instance.instance_id)
        self._finish(FAILED, error)
        self._maybe_roll_back(reason)

    def _halt(self, error: ErrorInfo) -> None:
        for instance in self.state.instances:
            if instance.status == READY:
                self._skip_rest(instance.instance_id)
        super()._halt(error)

    def _maybe_roll_back(self, reason: str) -> None:
        # Only traffic that moved has anywhere to go back to.
        if self.state.phase in _TRAFFIC_MOVED:
            super()._maybe_roll_back(reason)

    def _skip_rest(self, instance_id: str) -> None:
        """The instance's events not reached are Skipped, and so is the instance."""
        instance = self._instance(instance_id)
        events = tuple(replace(e, status=SKIPPED) if e.open else e for e in instance.events)
        self._replace_instance(replace(instance, events=events))
        self._set_instance_status(instance_id, SKIPPED)


def _took_part(instance: InstanceState, phase: str) -> bool:
    """Whether the instance ran in PHASE: a Green one that failed its install (its traffic
    events Skipped, within the minimum healthy) is left out of the reroute."""
    if phase != REROUTE:
        return instance.status != SKIPPED
    return any(e.name == BEFORE_ALLOW_TRAFFIC and e.status != SKIPPED for e in instance.events)


def _label(spec: InstanceSpec) -> TargetLabel:
    return GREEN if spec.label == GREEN else BLUE
