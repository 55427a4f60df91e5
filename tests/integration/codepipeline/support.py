"""What the pipeline tests share: waiting for a condition, a zip in memory, and the
declaration of an AWS-owned action."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any


def wait_for(check: Any, timeout: float = 30, what: str = "") -> Any:
    """Call `check` until it answers something true; return that answer."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.1)


def zip_of(text: str, name: str = "index.html") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, text)
    return buffer.getvalue()


def kind(category: str, provider: str) -> dict[str, str]:
    """An AWS-owned action type's id."""
    return {"category": category, "owner": "AWS", "provider": provider, "version": "1"}


def aws_action(category: str, provider: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "actionTypeId": kind(category, provider), **extra}


def newest_when_ended(pipelines: Any, name: str, timeout: float = 30) -> dict[str, Any]:
    """The pipeline's newest execution summary, once it is no longer InProgress."""

    def ended() -> dict[str, Any] | None:
        newest = pipelines.list_pipeline_executions(pipelineName=name)[
            "pipelineExecutionSummaries"
        ][0]
        return newest if newest["status"] != "InProgress" else None

    return wait_for(ended, timeout, what=f"the newest execution of {name} to end")
