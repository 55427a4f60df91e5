"""What a command reports back: AWS's error codes, its message and the tail of its log."""

from __future__ import annotations

import enum
import json
from typing import NamedTuple

# AWS's agent sends at most this much of the scripts' output back with a result.
LOG_TAIL_CHARS = 2048


class ErrorCode(enum.IntEnum):
    SUCCEEDED = 0
    SCRIPT_MISSING = 1
    SCRIPT_NOT_EXECUTABLE = 2
    SCRIPT_TIMED_OUT = 3
    SCRIPT_FAILED = 4
    UNKNOWN_ERROR = 5
    OUTPUTS_LEFT_OPEN = 6
    FAILED_AFTER_RESTART = 7


class CommandResult(NamedTuple):
    error_code: ErrorCode
    script_name: str
    message: str
    log: str

    @property
    def succeeded(self) -> bool:
        return self.error_code == ErrorCode.SUCCEEDED

    @property
    def command_status(self) -> str:
        """PutHostCommandComplete's CommandStatus."""
        return "Succeeded" if self.succeeded else "Failed"

    def payload(self) -> str:
        """The Diagnostics payload, in the member names AWS's agent uses."""
        return json.dumps(
            {
                "error_code": int(self.error_code),
                "script_name": self.script_name,
                "message": self.message,
                "log": self.log,
            }
        )


def succeeded(note: str = "") -> CommandResult:
    return CommandResult(ErrorCode.SUCCEEDED, "", f"Succeeded: {note}".rstrip(), "")


def unknown_error(message: str) -> CommandResult:
    return CommandResult(ErrorCode.UNKNOWN_ERROR, "", message, "")


class CommandFailed(Exception):
    """A command ended with an error code; carries the result to report."""

    def __init__(self, result: CommandResult) -> None:
        super().__init__(result.message)
        self.result = result


class LogTail:
    """The most recent lines of a command's scripts, at most LOG_TAIL_CHARS in all.

    Whole lines are kept, oldest dropped first, as AWS's agent does; a single line longer
    than the limit keeps its end."""

    def __init__(self, limit: int = LOG_TAIL_CHARS) -> None:
        self.limit = limit
        self._lines: list[str] = []
        self._size = 0

    def append(self, line: str) -> None:
        if len(line) > self.limit:
            line = line[-self.limit :]
        self._lines.append(line)
        self._size += len(line)
        while self._size > self.limit:
            self._size -= len(self._lines.pop(0))

    def text(self) -> str:
        return "".join(self._lines)
