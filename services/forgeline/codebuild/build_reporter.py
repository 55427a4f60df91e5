"""Where a build's progress goes: the engine hands each transition to a reporter.

A reporter records the phase list, the results so far and, once the build completes, its
final status, and publishes the matching events. `DatabaseReporter` writes the build row
("Build Phase Change" per finished phase, "Build State Change" at the end, the finished
listeners in the same transaction); unit tests give the engine an in-memory one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from forgeline.codebuild import builds
from forgeline.codebuild import events as build_events
from forgeline.codebuild.phases import BuildState, PhaseRecord, phase_to_json
from forgeline.codebuild.tables.builds import Build

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transition:
    """One step of the phase machine, as the reporter records it."""

    state: BuildState  # after the step
    finished: PhaseRecord | None  # the phase the step ended (None before the first)
    results: Mapping[str, Any]  # what the build produced so far (artifacts, logs, ...)
    final_status: str | None  # the build's status when this step completed it
    at: dt.datetime


class BuildReporter(Protocol):
    def record(self, transition: Transition) -> None:
        """Record the transition and publish its events (one transaction, in this order)."""
        ...

    def stop_requested(self) -> bool:
        """Whether StopBuild asked for this build to stop."""
        ...


class DatabaseReporter:
    """Reports to the build's row and the event stream (servers and `build-local`)."""

    def __init__(self, sessions: sessionmaker[Session], build_id: str) -> None:
        self.sessions = sessions
        self.build_id = build_id

    def record(self, transition: Transition) -> None:
        with self.sessions.begin() as session:
            build = session.get(Build, self.build_id)
            assert build is not None
            build.phases = [phase_to_json(record) for record in transition.state.phases]
            build.current_phase = transition.state.current_phase
            build.results = dict(transition.results)
            if transition.finished is not None:
                build_events.publish_phase_change(session, build, transition.finished)
            if transition.final_status is not None:
                builds.finish(session, build, transition.final_status, transition.at)

    def stop_requested(self) -> bool:
        try:
            with self.sessions() as session:
                build = session.get(Build, self.build_id)
                return bool(build is not None and build.stop_requested)
        except Exception:
            logger.warning("could not read the stop flag of %s", self.build_id, exc_info=True)
            return False
