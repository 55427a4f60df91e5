"""What moves a running deployment from outside: agents' reports, alarms, StopDeployment.

Each reaction locks the deployment's row and applies one event through the driver in the
transaction that recorded its cause (a command's outcome, an alarm's new state), so the
cause and its consequence commit together.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from forgeline.cloudwatch import interface as alarms
from forgeline.codedeploy.commands.diagnostics import read_report
from forgeline.codedeploy.deploying import driver
from forgeline.codedeploy.orchestrator.events import (
    AlarmPollFailed,
    AlarmTripped,
    CommandAcknowledged,
    CommandFailed,
    CommandSucceeded,
    StopRequested,
)
from forgeline.codedeploy.orchestrator.state import (
    FINAL_STATUSES,
    DeploymentState,
    Diagnostics,
)
from forgeline.codedeploy.tables.deployments import SUCCEEDED, Deployment, HostCommand


def on_host_command_finished(session: Session, command: HostCommand) -> None:
    deployment = driver.lock(session, command.deployment_id)
    if deployment is None:
        return
    if command.status == SUCCEEDED:
        driver.apply(
            session, deployment, CommandSucceeded(command.instance_name, command.command_name)
        )
        return
    report = read_report(command.diagnostics, succeeded=False)
    diagnostics = Diagnostics(
        error_code=report.error_code,
        script_name=report.script_name,
        message=report.message,
        log_tail=report.log_tail,
    )
    driver.apply(
        session,
        deployment,
        CommandFailed(command.instance_name, command.command_name, diagnostics),
    )


def on_host_command_acknowledged(session: Session, command: HostCommand) -> None:
    deployment = driver.lock(session, command.deployment_id)
    if deployment is not None:
        driver.apply(
            session, deployment, CommandAcknowledged(command.instance_name, command.command_name)
        )


def stop(session: Session, deployment: Deployment, auto_rollback: bool) -> DeploymentState:
    return driver.apply(session, deployment, StopRequested(auto_rollback=auto_rollback))


def on_alarm_state_changed(
    session: Session, alarm: alarms.MetricAlarm, old_state: str, new_state: str
) -> None:
    """An alarm went to ALARM: stop every running deployment watching it."""
    if new_state != alarms.ALARM:
        return
    running = session.scalars(
        select(Deployment.id).where(
            Deployment.account_id == alarm.account_id,
            Deployment.region == alarm.region,
            Deployment.deployment_status.not_in(FINAL_STATUSES),
        )
    ).all()
    for deployment_id in running:
        deployment = driver.lock(session, deployment_id)
        if deployment is None:
            continue
        options = driver.state_of(deployment).options
        if options.alarms_enabled and alarm.name in options.alarm_names:
            driver.apply(session, deployment, AlarmTripped((alarm.name,)))


def check_alarms_now(session: Session, deployment: Deployment, state: DeploymentState) -> None:
    """At start: a watched alarm already in ALARM stops the deployment, and one that does
    not exist is an alarm poll failure (which ignorePollAlarmFailure lets pass)."""
    options = state.options
    if state.finished or not options.alarms_enabled or not options.alarm_names:
        return
    states = alarms.alarm_states(
        session, deployment.account_id, deployment.region, options.alarm_names
    )
    tripped = tuple(name for name in options.alarm_names if states.get(name) == alarms.ALARM)
    missing = [name for name in options.alarm_names if name not in states]
    if tripped:
        driver.apply(session, deployment, AlarmTripped(tripped))
    elif missing:
        driver.apply(
            session,
            deployment,
            AlarmPollFailed(f"The alarm(s) {', '.join(missing)} could not be found."),
        )
