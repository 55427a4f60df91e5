"""Deployments, their instances, the commands agents run for them, and when agents last
called.

A deployment is started by a leased job (codedeploy/deploying/starting.py) and from then
on moved by events, each one transition committed with its cause; `deployment_status` is
what CodeDeploy's API shows (Created, Queued, InProgress, ...), `wake_at` when the
deployment's earliest timer is due.

A host command is one lifecycle event for one instance, queued by the driver and handed to
the instance's agent (PollHostCommand) one at a time: it goes Pending -> InProgress (handed
out) -> Succeeded | Failed (reported, or cancelled by the driver).
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from forgeline.core.db import Base, UTCDateTime, utcnow

_DEPLOYMENT_ID_ALPHABET = string.ascii_uppercase + string.digits

# Host command statuses: the command service model's DeploymentCommandStatus.
PENDING = "Pending"
IN_PROGRESS = "InProgress"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
FINAL_COMMAND_STATUSES = frozenset({SUCCEEDED, FAILED})


def new_deployment_id() -> str:
    """A deployment id as AWS makes them: "d-" and nine upper-case letters or digits."""
    return "d-" + "".join(secrets.choice(_DEPLOYMENT_ID_ALPHABET) for _ in range(9))


class Deployment(Base):
    __tablename__ = "deploy_deployments"
    __table_args__ = (
        Index(
            "ix_deploy_deployments_scope_group",
            "account_id",
            "region",
            "application_name",
            "deployment_group_name",
            "create_time",
        ),
        Index("ix_deploy_deployments_scope_time", "account_id", "region", "create_time"),
        Index("ix_deploy_deployments_wake_at", "wake_at"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # d-XXXXXXXXX
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    application_name: Mapped[str] = mapped_column(String(100))
    application_id: Mapped[str] = mapped_column(String(36))
    deployment_group_name: Mapped[str] = mapped_column(String(100))
    deployment_group_id: Mapped[str] = mapped_column(String(36))
    deployment_config_name: Mapped[str] = mapped_column(String(100))
    # The model's DeploymentStatus.
    deployment_status: Mapped[str] = mapped_column(String(32), default="Created")
    # The model's DeploymentCreator: user, autoscaling, codeDeployRollback, ...
    creator: Mapped[str] = mapped_column(String(32), default="user")
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # The RevisionLocation deployed, as the model names its members.
    revision: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The CreateDeployment input as sent (overrides, targets, fileExistsBehavior, ...).
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The orchestrator's serialized state.
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    rollback_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    start_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    complete_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The earliest timer of the orchestrator's state (a wait, a timeout): when the driver
    # must look at the deployment again though nothing else happened.
    wake_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)


class DeploymentInstance(Base):
    """One target instance of a deployment and its lifecycle events as the API shows them."""

    __tablename__ = "deploy_deployment_instances"

    deployment_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("deploy_deployments.id", ondelete="CASCADE"), primary_key=True
    )
    instance_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    instance_arn: Mapped[str] = mapped_column(Text)
    # The model's TargetStatus: Pending, InProgress, Succeeded, Failed, Skipped, ...
    status: Mapped[str] = mapped_column(String(32), default="Pending")
    # [{lifecycleEventName, status, startTime?, endTime?, diagnostics?}], in AWS's order.
    lifecycle_events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    instance_label: Mapped[str | None] = mapped_column(String(16), default=None)  # Blue|Green
    last_updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow
    )


class HostCommand(Base):
    """One lifecycle command for one instance's agent (id = HostCommandIdentifier)."""

    __tablename__ = "deploy_host_commands"
    __table_args__ = (
        # PollHostCommand's question: the oldest command of this host in a given status.
        Index(
            "ix_deploy_host_commands_host",
            "account_id",
            "region",
            "host_identifier",
            "status",
            "created_at",
        ),
        Index("ix_deploy_host_commands_instance", "deployment_id", "instance_name"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("deploy_deployments.id", ondelete="CASCADE")
    )
    instance_name: Mapped[str] = mapped_column(String(255))
    # The IAM user or session ARN the instance was registered with: its agent's identity.
    host_identifier: Mapped[str] = mapped_column(String(2048))
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    command_name: Mapped[str] = mapped_column(String(64))  # the lifecycle event
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    nonce: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    handed_out_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The agent's last PostHostCommandUpdate for this command.
    last_update_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Set when the driver cancelled the command rather than the agent finishing it.
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The completion's diagnostics envelope as the agent sent it: {Format, Payload}.
    diagnostics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class AgentHeartbeat(Base):
    """When a host's agent last called: the driver fails instances whose agent went silent."""

    __tablename__ = "deploy_agent_heartbeats"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    host_identifier: Mapped[str] = mapped_column(String(2048), primary_key=True)
    last_poll_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The last acknowledgement, progress update or completion, whichever came last.
    last_report_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=None)
