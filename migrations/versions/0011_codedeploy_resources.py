"""codedeploy applications, revisions, deployment groups, deployment configs, on-premises instances

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, forgeline.core.db.UTCDateTime(timezone=True), nullable=nullable)


def _scope() -> list[sa.Column]:
    return [
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "deploy_applications",
        sa.Column("id", sa.String(length=36), nullable=False),
        *_scope(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("compute_platform", sa.String(length=16), nullable=False),
        _time("created_at"),
        sa.Column("github_account_name", sa.String(length=100), nullable=True),
        sa.Column("linked_to_github", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_applications")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_deploy_applications_account_id")
        ),
    )
    op.create_table(
        "deploy_revisions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=False),
        *_scope(),
        sa.Column("revision_key", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        _time("registered_at"),
        _time("first_used_at", nullable=True),
        _time("last_used_at", nullable=True),
        sa.Column("deployment_groups", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["deploy_applications.id"],
            name=op.f("fk_deploy_revisions_application_id_deploy_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_revisions")),
        sa.UniqueConstraint(
            "application_id", "revision_key", name=op.f("uq_deploy_revisions_application_id")
        ),
    )
    op.create_index(
        op.f("ix_deploy_revisions_application_id"), "deploy_revisions", ["application_id"]
    )
    op.create_table(
        "deploy_groups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=False),
        *_scope(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("deployment_config_name", sa.String(length=100), nullable=False),
        sa.Column("service_role_arn", sa.Text(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("target_revision", sa.JSON(), nullable=True),
        sa.Column("last_successful_deployment", sa.JSON(), nullable=True),
        sa.Column("last_attempted_deployment", sa.JSON(), nullable=True),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["deploy_applications.id"],
            name=op.f("fk_deploy_groups_application_id_deploy_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_groups")),
        sa.UniqueConstraint("application_id", "name", name=op.f("uq_deploy_groups_application_id")),
    )
    op.create_index(op.f("ix_deploy_groups_application_id"), "deploy_groups", ["application_id"])
    op.create_index(
        "ix_deploy_groups_scope_config",
        "deploy_groups",
        ["account_id", "region", "deployment_config_name"],
    )
    op.create_table(
        "deploy_configs",
        sa.Column("id", sa.String(length=36), nullable=False),
        *_scope(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("compute_platform", sa.String(length=16), nullable=False),
        sa.Column("minimum_healthy_hosts", sa.JSON(), nullable=True),
        sa.Column("traffic_routing_config", sa.JSON(), nullable=True),
        sa.Column("zonal_config", sa.JSON(), nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_configs")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_deploy_configs_account_id")
        ),
    )
    op.create_table(
        "deploy_onprem_instances",
        sa.Column("id", sa.String(length=36), nullable=False),
        *_scope(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("iam_user_arn", sa.String(length=1011), nullable=True),
        sa.Column("iam_session_arn", sa.String(length=1011), nullable=True),
        sa.Column("instance_arn", sa.Text(), nullable=False),
        _time("registered_at"),
        _time("deregistered_at", nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deploy_onprem_instances")),
        sa.UniqueConstraint(
            "account_id", "region", "name", name=op.f("uq_deploy_onprem_instances_account_id")
        ),
    )
    op.create_index(
        op.f("ix_deploy_onprem_instances_iam_user_arn"),
        "deploy_onprem_instances",
        ["iam_user_arn"],
    )
    op.create_index(
        op.f("ix_deploy_onprem_instances_iam_session_arn"),
        "deploy_onprem_instances",
        ["iam_session_arn"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_deploy_onprem_instances_iam_session_arn"), table_name="deploy_onprem_instances"
    )
    op.drop_index(
        op.f("ix_deploy_onprem_instances_iam_user_arn"), table_name="deploy_onprem_instances"
    )
    op.drop_table("deploy_onprem_instances")
    op.drop_table("deploy_configs")
    op.drop_index("ix_deploy_groups_scope_config", table_name="deploy_groups")
    op.drop_index(op.f("ix_deploy_groups_application_id"), table_name="deploy_groups")
    op.drop_table("deploy_groups")
    op.drop_index(op.f("ix_deploy_revisions_application_id"), table_name="deploy_revisions")
    op.drop_table("deploy_revisions")
    op.drop_table("deploy_applications")
