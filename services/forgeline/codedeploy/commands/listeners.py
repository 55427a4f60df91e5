"""Who hears what agents report: the manifest's `host_command_acknowledged` and
`host_command_finished` hooks.

Each listener is called as `listener(session, command)` inside the transaction that records
the report, once per command (a repeated acknowledgement or completion is not news), so
what it writes commits together with the report or not at all.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from forgeline.codedeploy.tables.deployments import HostCommand

HostCommandListener = Callable[[Session, HostCommand], None]

# Filled from the manifests' subscriptions when a process starts (never at import).
# The agent took the command up and is about to run it (its first acknowledgement).
HOST_COMMAND_ACKNOWLEDGED_LISTENERS: list[HostCommandListener] = []
# The command's outcome: Succeeded or Failed, with the agent's diagnostics.
HOST_COMMAND_FINISHED_LISTENERS: list[HostCommandListener] = []


def host_command_acknowledged(session: Session, command: HostCommand) -> None:
    for listener in list(HOST_COMMAND_ACKNOWLEDGED_LISTENERS):
        listener(session, command)


def host_command_finished(session: Session, command: HostCommand) -> None:
    for listener in list(HOST_COMMAND_FINISHED_LISTENERS):
        listener(session, command)
