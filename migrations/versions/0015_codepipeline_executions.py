"""codepipeline executions and action executions

Revision ID: 0015
Revises: 0014
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_executions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("pipeline_name", sa.String(length=100), nullable=False),
        sa.Column("pipeline_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("client_request_token", sa.String(length=128), nullable=True),
        sa.Column("started_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("wake_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipeline_pipelines.id"],
            name=op.f("fk_pipeline_executions_pipeline_id_pipeline_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_executions")),
    )
    op.create_index(
        "ix_pipeline_executions_pipeline_started",
        "pipeline_executions",
        ["pipeline_id", "started_at"],
    )
    op.create_index(
        op.f("ix_pipeline_executions_wake_at"), "pipeline_executions", ["wake_at"]
    )
    op.create_table(
        "pipeline_action_executions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("execution_id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("stage", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("started_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["pipeline_executions.id"],
            name=op.f("fk_pipeline_action_executions_execution_id_pipeline_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_action_executions")),
    )
    op.create_index(
        op.f("ix_pipeline_action_executions_execution_id"),
        "pipeline_action_executions",
        ["execution_id"],
    )
    op.create_index(
        op.f("ix_pipeline_action_executions_pipeline_id"),
        "pipeline_action_executions",
        ["pipeline_id"],
    )
    op.create_index(
        op.f("ix_pipeline_action_executions_external_id"),
        "pipeline_action_executions",
        ["external_id"],
    )


def downgrade() -> None:
    op.drop_table("pipeline_action_executions")
    op.drop_table("pipeline_executions")
