"""CodeBuild's events in EventBridge's shape: "Build State Change" and "Build Phase Change".

The detail fields follow the samples in AWS's CodeBuild user guide ("Build notifications
input format reference"); times in `additional-information` use its "Sep 1, 2017 4:12:29 PM"
style.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from forgeline.core.events import publish

if TYPE_CHECKING:
    from forgeline.codebuild.phases import PhaseRecord
    from forgeline.codebuild.tables.builds import Build

SOURCE = "aws.codebuild"
STATE_CHANGE = "CodeBuild Build State Change"
PHASE_CHANGE = "CodeBuild Build Phase Change"


def _clock(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    hour = value.hour % 12 or 12
    return f"{value:%b} {value.day}, {value.year} {hour}:{value:%M:%S} {value:%p}"


def _additional_information(build: Build) -> dict[str, Any]:
    document = build.document
    results = build.results
    info: dict[str, Any] = {
        "build-complete": build.build_complete,
        "initiator": build.initiator,
        "build-start-time": _clock(build.start_time),
        "source": document.get("source", {}),
        "environment": document.get("environment", {}),
        "timeout-in-minutes": document.get("timeoutInMinutes", 60),
        "queued-timeout-in-minutes": document.get("queuedTimeoutInMinutes", 480),
        "build-number": build.build_number,
    }
    if document.get("sourceVersion"):
        info["source-version"] = document["sourceVersion"]
    if results.get("artifacts"):
        info["artifact"] = results["artifacts"]
    logs = results.get("logs")
    if logs and logs.get("groupName"):
        info["logs"] = {"group-name": logs["groupName"], "stream-name": logs["streamName"]}
    return info


def publish_state_change(session: Session, build: Build) -> None:
    phases = build.phases
    context = phases[-1].get("contexts", []) if phases else []
    publish(
        session,
        account_id=build.account_id,
        region=build.region,
        source=SOURCE,
        detail_type=STATE_CHANGE,
        resources=[build.arn],
        detail={
            "build-status": build.build_status,
            "project-name": build.project_name,
            "build-id": build.arn,
            "current-phase": build.current_phase,
            "current-phase-context": json.dumps(
                [{"statusCode": code, "message": message} for code, message in context]
            ),
            "additional-information": _additional_information(build),
            "version": "1",
        },
    )


def publish_phase_change(session: Session, build: Build, completed: PhaseRecord) -> None:
    publish(
        session,
        account_id=build.account_id,
        region=build.region,
        source=SOURCE,
        detail_type=PHASE_CHANGE,
        resources=[build.arn],
        detail={
            "completed-phase": completed.phase_type,
            "completed-phase-status": completed.phase_status,
            "completed-phase-duration-seconds": completed.duration_in_seconds,
            "completed-phase-start": _clock(completed.start_time),
            "completed-phase-end": _clock(completed.end_time),
            "completed-phase-context": json.dumps(
                [context.to_botocore() for context in completed.contexts]
            ),
            "project-name": build.project_name,
            "build-id": build.arn,
            "additional-information": _additional_information(build),
            "version": "1",
        },
    )
