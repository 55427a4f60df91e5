"""What an agent's completion diagnostics say, in CodeDeploy's terms (pure).

AWS's agent reports `{"Format": "JSON", "Payload": "{\"error_code\": N, \"script_name\":
…, \"message\": …, \"log\": …}"}`; the API shows a lifecycle event's diagnostics as
errorCode (the model's LifecycleErrorCode), scriptName, message and logTail.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

# The agent's numeric codes, as LifecycleErrorCode names them. The model has no name for
# OutputsLeftOpen (a script's output stayed open) or FailedAfterRestart (the agent was
# restarted while the command ran): they count as a failed script and an unknown error.
_ERROR_CODES = {
    0: "Success",
    1: "ScriptMissing",
    2: "ScriptNotExecutable",
    3: "ScriptTimedOut",
    4: "ScriptFailed",
    5: "UnknownError",
    6: "ScriptFailed",
    7: "UnknownError",
}
# The model's limits on what the API shows (LifecycleMessage, LogTail, ScriptName).
MESSAGE_LIMIT = 8192
LOG_TAIL_LIMIT = 2048


@dataclasses.dataclass(frozen=True)
class AgentReport:
    error_code: str  # LifecycleErrorCode
    script_name: str = ""
    message: str = ""
    log_tail: str = ""

    def to_botocore(self) -> dict[str, str]:
        """As the API's Diagnostics shape names the members."""
        return {
            "errorCode": self.error_code,
            "scriptName": self.script_name,
            "message": self.message,
            "logTail": self.log_tail,
        }


def read_report(envelope: Mapping[str, Any] | None, *, succeeded: bool) -> AgentReport:
    """The report inside a completion's diagnostics envelope. A missing or unreadable one
    still yields a report: Success for a command that succeeded, else UnknownError."""
    fallback = "Success" if succeeded else "UnknownError"
    payload = _payload(envelope)
    if payload is None:
        message = "" if succeeded else "The agent reported no diagnostics."
        return AgentReport(fallback, message=message)
    code = payload.get("error_code")
    error_code = _ERROR_CODES.get(code, fallback) if isinstance(code, int) else fallback
    return AgentReport(
        error_code=error_code,
        script_name=_text(payload.get("script_name"), 512),
        message=_text(payload.get("message"), MESSAGE_LIMIT),
        log_tail=_tail(_text(payload.get("log"), None), LOG_TAIL_LIMIT),
    )


def _payload(envelope: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not envelope or str(envelope.get("Format", "")).upper() != "JSON":
        return None
    try:
        payload = json.loads(envelope.get("Payload") or "")
    except (TypeError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def _text(value: object, limit: int | None) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text if limit is None else text[:limit]


def _tail(text: str, limit: int) -> str:
    return text[-limit:] if len(text) > limit else text
