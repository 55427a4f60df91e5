"""Which execution may enter which stage: the pipeline's execution mode, across executions.

The driver keeps one `StageOccupancy` per pipeline (which execution holds each stage, which
wait for it, which inbound transitions are disabled), stores its JSON document, and asks
`grant(mode, occupancy, request)` on every WantStage (Arrive), ReleaseStage (Leave),
Finished (Withdraw) and Disable/EnableStageTransition. The `Decision` says which executions
now enter which stage (feed them StageGranted) and which are overtaken (feed them
Superseded).

AWS's "How pipeline executions work" is the spec:
- PARALLEL: executions run independently: every arrival enters at once.
- QUEUED: a stage holds one execution at a time; the others wait in arrival order and enter
  one by one as the stage is released.
- SUPERSEDED: a stage holds one execution; one more may wait in front of it. A newer
  execution arriving overtakes the waiting one, which is superseded and does not go on
  (only the newest waits). Executions are superseded only between stages: one inside a
  stage is never interrupted.
- A disabled inbound transition lets no one into its stage; executions wait in front of
  it under the same rules (in SUPERSEDED mode the newest waiting one is the one that enters
  when the transition is enabled again).
A failed or stopped execution releases its stage (a failure releases the lock); a retry
arrives again like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from forgeline.codepipeline.engine.plan import MODE_PARALLEL, MODE_SUPERSEDED


@dataclass(frozen=True)
class Waiter:
    execution_id: str
    # The execution's place in the pipeline's start order (higher: newer), e.g. a per-pipeline
    # sequence number: SUPERSEDED keeps the newest waiting execution.
    order: int


@dataclass(frozen=True)
class StageOccupancy:
    holders: Mapping[str, str] = field(default_factory=dict)  # stage -> execution in it
    waiting: Mapping[str, tuple[Waiter, ...]] = field(default_factory=dict)  # arrival order
    disabled: frozenset[str] = frozenset()  # stages whose inbound transition is disabled

    def holder(self, stage: str) -> str | None:
        return self.holders.get(stage)

    def waiters(self, stage: str) -> tuple[str, ...]:
        """The executions waiting to enter ``stage`` (its inbound executions), first first."""
        return tuple(waiter.execution_id for waiter in self.waiting.get(stage, ()))

    def to_document(self) -> dict[str, Any]:
        return {
            "holders": dict(self.holders),
            "waiting": {
                stage: [{"executionId": w.execution_id, "order": w.order} for w in waiters]
                for stage, waiters in self.waiting.items()
            },
            "disabled": sorted(self.disabled),
        }

    @classmethod
    def from_document(cls, data: Mapping[str, Any]) -> StageOccupancy:
        return cls(
            holders={str(stage): str(execution) for stage, execution in data["holders"].items()},
            waiting={
                str(stage): tuple(Waiter(str(w["executionId"]), int(w["order"])) for w in waiters)
                for stage, waiters in data["waiting"].items()
            },
            disabled=frozenset(str(stage) for stage in data["disabled"]),
        )


@dataclass(frozen=True)
class Arrive:
    """The execution asks to enter the stage (the machine's WantStage)."""

    stage: str
    execution_id: str
    order: int


@dataclass(frozen=True)
class Leave:
    """The execution is done with the stage (the machine's ReleaseStage)."""

    stage: str
    execution_id: str


@dataclass(frozen=True)
class Withdraw:
    """The execution ended (the machine's Finished): it holds and waits for nothing."""

    execution_id: str


@dataclass(frozen=True)
class DisableTransition:
    stage: str


@dataclass(frozen=True)
class EnableTransition:
    stage: str


StageRequest = Arrive | Leave | Withdraw | DisableTransition | EnableTransition


@dataclass(frozen=True)
class Grant:
    stage: str
    execution_id: str


@dataclass(frozen=True)
class Decision:
    occupancy: StageOccupancy
    granted: tuple[Grant, ...] = ()
    superseded: tuple[str, ...] = ()  # executions overtaken while they waited


def grant(mode: str, occupancy: StageOccupancy, request: StageRequest) -> Decision:
    """The lanes after ``request``: who enters which stage now, and who is superseded."""
    lanes = _Lanes(mode, occupancy)
    if isinstance(request, Arrive):
        lanes.arrive(request.stage, Waiter(request.execution_id, request.order))
    elif isinstance(request, Leave):
        lanes.leave(request.stage, request.execution_id)
    elif isinstance(request, Withdraw):
        lanes.withdraw(request.execution_id)
    elif isinstance(request, DisableTransition):
        lanes.disabled.add(request.stage)
    elif isinstance(request, EnableTransition):
        lanes.disabled.discard(request.stage)
        lanes.admit(request.stage)
    return lanes.decision()


class _Lanes:
    """One decision in the making: the occupancy as mutable tables."""

    def __init__(self, mode: str, occupancy: StageOccupancy) -> None:
        self.mode = mode
        self.holders = dict(occupancy.holders)
        self.waiting = {stage: list(waiters) for stage, waiters in occupancy.waiting.items()}
        self.disabled = set(occupancy.disabled)
        self.granted: list[Grant] = []
        self.superseded: list[str] = []

    def arrive(self, stage: str, arriving: Waiter) -> None:
        if self.holders.get(stage) == arriving.execution_id:
            self.granted.append(Grant(stage, arriving.execution_id))  # a repeated ask
            return
        queue = self.waiting.setdefault(stage, [])
        if any(w.execution_id == arriving.execution_id for w in queue):
            return  # already waiting
        if self.mode == MODE_SUPERSEDED:
            # Only the newest execution waits in front of a stage.
            if any(w.order > arriving.order for w in queue):
                self.superseded.append(arriving.execution_id)
                return
            self.superseded.extend(w.execution_id for w in queue)
            queue.clear()
        queue.append(arriving)
        self.admit(stage)

    def leave(self, stage: str, execution_id: str) -> None:
        self._drop_waiter(stage, execution_id)
        if self.holders.get(stage) == execution_id:
            del self.holders[stage]
            self.admit(stage)

    def withdraw(self, execution_id: str) -> None:
        for stage in list(self.waiting):
            self._drop_waiter(stage, execution_id)
        for stage in [s for s, holder in self.holders.items() if holder == execution_id]:
            del self.holders[stage]
            self.admit(stage)

    def admit(self, stage: str) -> None:
        """Let in whoever the mode allows, if the transition is open."""
        queue = self.waiting.get(stage, [])
        if stage in self.disabled or not queue:
            return
        if self.mode == MODE_PARALLEL:
            entering = list(queue)
            queue.clear()
        elif stage in self.holders:
            return
        else:
            entering = [queue.pop(0)]
            self.holders[stage] = entering[0].execution_id
        self.granted.extend(Grant(stage, waiter.execution_id) for waiter in entering)

    def _drop_waiter(self, stage: str, execution_id: str) -> None:
        queue = self.waiting.get(stage)
        if queue:
            queue[:] = [w for w in queue if w.execution_id != execution_id]

    def decision(self) -> Decision:
        occupancy = StageOccupancy(
            holders=self.holders,
            waiting={stage: tuple(queue) for stage, queue in self.waiting.items() if queue},
            disabled=frozenset(self.disabled),
        )
        return Decision(occupancy, tuple(self.granted), tuple(self.superseded))
