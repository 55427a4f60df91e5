"""builds

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa

import forgeline.core.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, forgeline.core.db.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "builds",
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("project_name", sa.String(length=255), nullable=False),
        sa.Column("arn", sa.Text(), nullable=False),
        sa.Column("build_number", sa.Integer(), nullable=False),
        sa.Column("build_status", sa.String(length=16), nullable=False),
        sa.Column("current_phase", sa.String(length=32), nullable=False),
        sa.Column("build_complete", sa.Boolean(), nullable=False),
        sa.Column("phases", sa.JSON(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("stop_requested", sa.Boolean(), nullable=False),
        sa.Column("initiator", sa.Text(), nullable=True),
        sa.Column("batch_id", sa.String(length=300), nullable=True),
        _time("queued_at"),
        _time("start_time"),
        _time("end_time", nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        _time("lease_expires_at", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_builds")),
        sa.UniqueConstraint("uuid", name=op.f("uq_builds_uuid")),
    )
    op.create_index(
        "ix_builds_scope_project",
        "builds",
        ["account_id", "region", "project_name", "build_number"],
    )
    op.create_index("ix_builds_queue", "builds", ["status", "queued_at"])
    op.create_index(op.f("ix_builds_batch_id"), "builds", ["batch_id"])
    op.create_index(op.f("ix_builds_status"), "builds", ["status"])


def downgrade() -> None:
    op.drop_table("builds")
