"""Build runners: execute a build's compiled plan in a Docker container or as host processes.

`choose_runner(settings)` picks one (FORGELINE_BUILD_RUNNER); see base.py for the contract.
"""

from forgeline.codebuild.runners.base import (
    BUILD_ID_LABEL,
    BUILD_MARKER_VARIABLE,
    CLIENT_ERROR,
    ENGINE_UNAVAILABLE,
    UNABLE_TO_PULL_IMAGE,
    OutputSink,
    RunInterrupted,
    Runner,
    RunnerError,
    RunnerSession,
    RunSpec,
)
from forgeline.codebuild.runners.select import choose_runner, describe_runner_choice

__all__ = [
    "BUILD_ID_LABEL",
    "BUILD_MARKER_VARIABLE",
    "CLIENT_ERROR",
    "ENGINE_UNAVAILABLE",
    "UNABLE_TO_PULL_IMAGE",
    "OutputSink",
    "RunInterrupted",
    "RunSpec",
    "Runner",
    "RunnerError",
    "RunnerSession",
    "choose_runner",
    "describe_runner_choice",
]
