"""codedeploy deployments, instances, host commands, agent heartbeats

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, forgeline.core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "deploy_deployments",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("application_name", sa.String(length=100), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=False),
        sa.Column("deployment_group_name", sa.String(length=100), nullable=False),
        sa.Column("deployment_group_id", sa.String(length=36), nullable=False),
        sa.Column("deployment_config_name", sa.String(length=100), nullable=False),
        sa.Column("deployment_status", sa.String(length=32), nullable=False),
        sa.Column("creator", sa.String(length=32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("revision", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("error_info", sa.JSON(), nullable=True),
        sa.Column("rollback_info", sa.JSON(), nullable=True),
        _time("create_time"),
        _time("start_time", nullable=True),
        _time("complete_time", nullable=True),
        _time("wake_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_deployments")),
    )
    op.create_index(
        "ix_deploy_deployments_scope_group",
        "deploy_deployments",
        ["account_id", "region", "application_name", "deployment_group_name", "create_time"],
    )
    op.create_index(
        "ix_deploy_deployments_scope_time", "deploy_deployments", ["account_id", "region", "create_time"]
    )
    op.create_index("ix_deploy_deployments_wake_at", "deploy_deployments", ["wake_at"])

    op.create_table(
        "deploy_deployment_instances",
        sa.Column("deployment_id", sa.String(length=16), nullable=False),
        sa.Column("instance_name", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("instance_arn", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("lifecycle_events", sa.JSON(), nullable=False),
        sa.Column("instance_label", sa.String(length=16), nullable=True),
        _time("last_updated_at"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deploy_deployments.id"],
            name=op.f("fk_deploy_deployment_instances_deployment_id_deploy_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "deployment_id", "instance_name", name=op.f("pk_deploy_deployment_instances")
        ),
    )

    op.create_table(
        "deploy_host_commands",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("deployment_id", sa.String(length=16), nullable=False),
        sa.Column("instance_name", sa.String(length=255), nullable=False),
        sa.Column("host_identifier", sa.String(length=2048), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("command_name", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        _time("created_at"),
        _time("handed_out_at", nullable=True),
        _time("acknowledged_at", nullable=True),
        _time("last_update_at", nullable=True),
        _time("completed_at", nullable=True),
        _time("cancelled_at", nullable=True),
        sa.Column("diagnostics", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deploy_deployments.id"],
            name=op.f("fk_deploy_host_commands_deployment_id_deploy_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_host_commands")),
    )
    op.create_index(
        "ix_deploy_host_commands_host",
        "deploy_host_commands",
        ["account_id", "region", "host_identifier", "status", "created_at"],
    )
    op.create_index(
        "ix_deploy_host_commands_instance", "deploy_host_commands", ["deployment_id", "instance_name"]
    )

    op.create_table(
        "deploy_agent_heartbeats",
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("host_identifier", sa.String(length=2048), nullable=False),
        _time("last_poll_at"),
        _time("last_report_at", nullable=True),
        sa.PrimaryKeyConstraint(
            "account_id", "region", "host_identifier", name=op.f("pk_deploy_agent_heartbeats")
        ),
    )


def downgrade() -> None:
    op.drop_table("deploy_agent_heartbeats")
    op.drop_table("deploy_host_commands")
    op.drop_table("deploy_deployment_instances")
    op.drop_table("deploy_deployments")
