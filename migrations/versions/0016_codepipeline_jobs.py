"""codepipeline custom action types and jobs

Revision ID: 0016
Revises: 0015
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_custom_action_types",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=35), nullable=False),
        sa.Column("version", sa.String(length=9), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_custom_action_types")),
        sa.UniqueConstraint(
            "account_id",
            "region",
            "category",
            "provider",
            "version",
            name=op.f("uq_pipeline_custom_action_types_account_id"),
        ),
    )
    op.create_table(
        "pipeline_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("type_key", sa.String(length=100), nullable=False),
        sa.Column("action_execution_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.String(length=50), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_jobs")),
    )
    op.create_index(
        "ix_pipeline_jobs_type_status",
        "pipeline_jobs",
        ["account_id", "region", "type_key", "status"],
    )
    op.create_index(
        op.f("ix_pipeline_jobs_action_execution_id"), "pipeline_jobs", ["action_execution_id"]
    )


def downgrade() -> None:
    op.drop_table("pipeline_jobs")
    op.drop_table("pipeline_custom_action_types")
