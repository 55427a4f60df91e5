"""build batches, build project webhooks

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_batches",
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("project_name", sa.String(length=255), nullable=False),
        sa.Column("arn", sa.Text(), nullable=False),
        sa.Column("batch_number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("current_phase", sa.String(length=32), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("fast_fail", sa.Boolean(), nullable=False),
        sa.Column("stop_requested", sa.Boolean(), nullable=False),
        sa.Column("phases", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("initiator", sa.Text(), nullable=True),
        sa.Column("resolved_source_version", sa.String(length=255), nullable=True),
        sa.Column("start_time", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_time", forgeline.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_batches")),
    )
    op.create_index(
        "ix_build_batches_scope_start", "build_batches", ["account_id", "region", "start_time"]
    )
    op.create_index(
        "ix_build_batches_scope_project",
        "build_batches",
        ["account_id", "region", "project_name"],
    )
    op.create_table(
        "build_webhooks",
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("payload_url", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column(
            "secret_modified_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_at", forgeline.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_build_webhooks")),
    )
    op.create_index("ix_build_webhooks_scope", "build_webhooks", ["account_id", "region"])


def downgrade() -> None:
    op.drop_index("ix_build_webhooks_scope", table_name="build_webhooks")
    op.drop_table("build_webhooks")
    op.drop_index("ix_build_batches_scope_project", table_name="build_batches")
    op.drop_index("ix_build_batches_scope_start", table_name="build_batches")
    op.drop_table("build_batches")
